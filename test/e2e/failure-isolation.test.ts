/**
 * Failure isolation (issue 8): one question the model server rejects with 400
 * (`context_length_exceeded`) is recorded as failed and the stage goes on; the stage fails only
 * past `maxFailedFraction`; `campaign retry-failed` makes the record once the cause is gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  exampleQuestions,
  launch,
  meteorctl,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type CampaignStatusView,
  type Harness,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';

const N = 12;

describe('failure isolation', () => {
  let h: Harness;
  let rejectedId: string;
  let tolerant: { campaignId: string; final: CampaignStatusView };
  let strict: { campaignId: string; final: CampaignStatusView };

  beforeAll(async () => {
    h = await startHarness();
    const questions = await exampleQuestions(N);
    const rejected = questions[4];
    if (!rejected) throw new Error('the example has too few questions');
    rejectedId = rejected.id;
    h.sim.setBehaviour({ rejectQuestions: [rejected.question] });
    const train = await writeQuestions(h.tmp, 'train.jsonl', questions);
    const run = async (maxFailedFraction: number) => {
      const spec = await writeSpec(h, {
        questions: { train },
        stages: { distill: { batchSize: 4, maxFailedFraction } },
      });
      const { campaignId } = await launch(h, spec);
      return { campaignId, final: await waitDone(h, campaignId, 120_000) };
    };
    [tolerant, strict] = await Promise.all([run(0.1), run(0)]);
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  it('completes without the rejected question, the others all answered', async () => {
    expect(tolerant.final.error).toBeNull();
    expect(tolerant.final.state).toBe('completed');
    const records = await h.clients.db
      .selectFrom('distill_records')
      .select('question_id')
      .where('campaign_id', '=', tolerant.campaignId)
      .execute();
    expect(records).toHaveLength(N - 1);
    expect(records.map((r) => r.question_id)).not.toContain(rejectedId);
    // The sim answered the other questions (two calls each, both campaigns), it rejected only one.
    const rejections = h.sim.stats().recent.filter((r) => r.status === 400);
    expect(rejections.length).toBeGreaterThan(0);
    expect(h.sim.stats().served).toBeGreaterThanOrEqual(2 * (N - 1));
    // Going on past a failed question paid for nothing twice, by the server's own count by content
    // (the two campaigns ask the same questions: each body may be served once per campaign).
    expect(await paidTwice(h, [tolerant.campaignId, strict.campaignId])).toEqual([]);
  });

  it('records the failed question with its reason, HTTP status and calls', async () => {
    const rows = await h.clients.db
      .selectFrom('failed_questions')
      .selectAll()
      .where('campaign_id', '=', tolerant.campaignId)
      .execute();
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row).toMatchObject({ stage: 'distill', iteration: 1, question_id: rejectedId, http_status: 400 });
    expect(row?.reason).toMatch(/context length|400/);
    expect(row?.call_ids.length).toBeGreaterThan(0);
    expect(row?.resolved_at).toBeNull();
  });

  it('reports failedQuestions in status --json and lists the failure in the audit', async () => {
    const status = await meteorctl(h, ['campaign', 'status', tolerant.campaignId, '--json']);
    expect(status.code).toBe(0);
    const doc = JSON.parse(status.stdout) as CampaignStatusView;
    expect(doc.failedQuestions).toBe(1);
    expect(doc.stages.find((s) => s.stage === 'distill')).toMatchObject({ failed: 1, retrying: null });
    const audit = await meteorctl(h, ['audit', 'export', tolerant.campaignId, '--stage', 'distill']);
    expect(audit.code).toBe(0);
    const lines = audit.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const failed = lines.filter((l) => l.failed);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ questionId: rejectedId, failed: { httpStatus: 400 } });
  });

  it('fails the stage past maxFailedFraction, naming the fraction', () => {
    expect(strict.final.state).toBe('failed');
    expect(strict.final.error).toMatch(/maxFailedFraction 0/);
    expect(strict.final.error).toMatch(/1 of 12 questions failed/);
  });

  it('retry-failed makes the record once the rejection is gone', async () => {
    h.sim.setBehaviour({ rejectQuestions: [] });
    const retried = await meteorctl(h, ['campaign', 'retry-failed', tolerant.campaignId, '--json']);
    expect(retried.stderr).toMatch(/not in datasets the campaign already exported/);
    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.stdout)).toMatchObject({
      stages: [{ stage: 'distill', iteration: 1, retried: 1, resolved: 1, stillFailed: 0 }],
    });
    const record = await h.clients.db
      .selectFrom('distill_records')
      .select('question_id')
      .where('campaign_id', '=', tolerant.campaignId)
      .where('question_id', '=', rejectedId)
      .execute();
    expect(record).toHaveLength(1);
    const status = await meteorctl(h, ['campaign', 'status', tolerant.campaignId, '--json']);
    expect((JSON.parse(status.stdout) as CampaignStatusView).failedQuestions).toBe(0);
  }, 60_000);
});
