/**
 * Stage 1 end to end on the example campaign (48 training questions): records, dataset,
 * lineage M0 → M1, the fine-tune job, the LLM calls behind every record, status and audit.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRecords } from '../../core/records';
import { CampaignSpecSchema } from '../../core/spec';
import {
  REPO_ROOT,
  exampleQuestions,
  launch,
  startHarness,
  waitDone,
  writeSpec,
  type CampaignStatusView,
  type Harness,
} from '../support/harness';

const TRAIN_QUESTIONS = 48;

describe('stage 1 on the example campaign', () => {
  let h: Harness;
  let campaignId: string;
  let final: CampaignStatusView;

  beforeAll(async () => {
    h = await startHarness();
    const spec = await writeSpec(h);
    ({ campaignId } = await launch(h, spec));
    final = await waitDone(h, campaignId, 150_000);
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  it('completes, with the lineage M0 → M1 in its status', () => {
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => m.label)).toEqual(['M0', 'M1']);
    expect(final.lineage[1]?.parent).toBe('M0');
    const distill = final.stages.find((s) => s.stage === 'distill');
    expect(distill).toMatchObject({ status: 'completed', total: TRAIN_QUESTIONS, records: TRAIN_QUESTIONS });
  });

  it('keeps exactly one distill record per training question', async () => {
    const { db } = h.clients;
    const records = await db
      .selectFrom('distill_records')
      .select(['question_id', 'iteration', 'guideline', 'answer'])
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(records).toHaveLength(TRAIN_QUESTIONS);
    const expectedIds = (await exampleQuestions()).map((q) => q.id).sort();
    expect(records.map((r) => r.question_id).sort()).toEqual(expectedIds);
    expect(new Set(records.map((r) => r.question_id)).size).toBe(TRAIN_QUESTIONS);
    for (const r of records) {
      expect(r.iteration).toBe(1);
      expect(r.guideline.length).toBeGreaterThan(0);
      expect(r.answer.length).toBeGreaterThan(0);
    }
    // Only train questions were distilled: the eval split is untouched.
    const evalIds = await db
      .selectFrom('questions')
      .select('id')
      .where('campaign_id', '=', campaignId)
      .where('split', '=', 'eval')
      .execute();
    expect(evalIds.length).toBeGreaterThan(0);
    const recordIds = new Set(records.map((r) => r.question_id));
    expect(evalIds.filter((q) => recordIds.has(q.id))).toEqual([]);
  });

  it('exports an OpenAI-format dataset whose file matches its row count and checksum', async () => {
    const datasets = await h.clients.db
      .selectFrom('datasets')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .where('format', '=', 'openai')
      .execute();
    expect(datasets).toHaveLength(1);
    const ds = datasets[0]!;
    expect(ds).toMatchObject({ stage: 'distill', iteration: 1, kind: 'sft', rows: TRAIN_QUESTIONS });
    expect(ds.uri.startsWith('file://')).toBe(true);
    const file = fileURLToPath(ds.uri);
    expect(file.startsWith(h.artifactsDir + path.sep)).toBe(true);
    const bytes = await readFile(file);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(ds.sha256);
    expect(Number(ds.bytes)).toBe(bytes.length);
    const lines = bytes
      .toString('utf8')
      .split('\n')
      .filter((l) => l !== '');
    expect(lines).toHaveLength(TRAIN_QUESTIONS);
    for (const line of lines) {
      const parsed = JSON.parse(line) as { messages: Array<{ role: string; content: string }> };
      expect(parsed.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
    }
  });

  it('registers M1 from the dataset and exactly one succeeded fine-tune job', async () => {
    const { db } = h.clients;
    const models = await db
      .selectFrom('model_versions')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .orderBy('created_at')
      .execute();
    expect(models.map((m) => m.label)).toEqual(['M0', 'M1']);
    const [m0, m1] = models as [(typeof models)[0], (typeof models)[0]];
    expect(m0.parent_label).toBeNull();
    expect(m1.parent_label).toBe('M0');
    expect(m1.stage).toBe('distill');
    expect(m1.iteration).toBe(1);
    expect(m1.dataset_id).not.toBeNull();
    expect(m1.finetune_job_id).not.toBeNull();
    expect(m1.checkpoint_uri).toBeTruthy();
    expect(m1.deployed_at).not.toBeNull();

    const openai = await db
      .selectFrom('datasets')
      .select('id')
      .where('campaign_id', '=', campaignId)
      .where('format', '=', 'openai')
      .executeTakeFirstOrThrow();
    expect(String(m1.dataset_id)).toBe(String(openai.id));

    const jobs = await db
      .selectFrom('finetune_jobs')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'distill')
      .where('iteration', '=', 1)
      .execute();
    expect(jobs).toHaveLength(1);
    const job = jobs[0]!;
    expect(job.status).toBe('succeeded');
    expect(String(job.id)).toBe(String(m1.finetune_job_id));
    expect(String(job.dataset_id)).toBe(String(openai.id));
    const sameKey = await db
      .selectFrom('finetune_jobs')
      .select('id')
      .where('idempotency_key', '=', job.idempotency_key)
      .execute();
    expect(sameKey).toHaveLength(1);

    // The next stage would call M1 by the name it was deployed under on the weak endpoint.
    const models1 = await fetch(`${h.sim.url}/models`).then(
      (r) => r.json() as Promise<{ data: Array<{ id: string }> }>,
    );
    expect(models1.data.map((m) => m.id)).toContain(m1.served_model);
  });

  it("leads every record's guideline and answer to an 'ok' LLM call of this campaign", async () => {
    const { db } = h.clients;
    const rows = await db
      .selectFrom('distill_records as r')
      .leftJoin('llm_calls as g', 'g.id', 'r.guideline_call_id')
      .leftJoin('llm_calls as a', 'a.id', 'r.answer_call_id')
      .select([
        'r.question_id',
        'g.campaign_id as g_campaign',
        'g.status as g_status',
        'g.role as g_role',
        'g.stage as g_stage',
        'a.campaign_id as a_campaign',
        'a.status as a_status',
        'a.role as a_role',
        'a.stage as a_stage',
      ])
      .where('r.campaign_id', '=', campaignId)
      .execute();
    expect(rows).toHaveLength(TRAIN_QUESTIONS);
    for (const r of rows) {
      expect(r).toMatchObject({
        g_campaign: campaignId,
        g_status: 'ok',
        g_role: 'weak',
        g_stage: 'distill',
        a_campaign: campaignId,
        a_status: 'ok',
        a_role: 'strong',
        a_stage: 'distill',
      });
    }
  });

  it('leaves no request claim behind once its stage finished (claims.ts deletes them)', async () => {
    const claims = await h.clients.db
      .selectFrom('llm_call_claims')
      .select('request_hash')
      .where('campaign_id', '=', campaignId)
      .execute();
    // The campaign made calls, each claimed before it was sent.
    const calls = await h.clients.db
      .selectFrom('llm_calls')
      .select('id')
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'distill')
      .execute();
    expect(calls.length).toBeGreaterThanOrEqual(2 * TRAIN_QUESTIONS);
    expect(claims).toEqual([]);
  });

  it('keeps the spend the budget reads equal to the call log, per stage', async () => {
    const { db } = h.clients;
    const logged = await db
      .selectFrom('llm_calls')
      .select(['stage', sql<number>`sum(cost_usd)::float8`.as('cost')])
      .where('campaign_id', '=', campaignId)
      .where('cost_usd', '>', 0)
      .groupBy('stage')
      .orderBy('stage')
      .execute();
    const spend = await db
      .selectFrom('campaign_spend')
      .select(['stage', 'cost_usd as cost'])
      .where('campaign_id', '=', campaignId)
      .orderBy('stage')
      .execute();
    expect(logged.length).toBeGreaterThan(0);
    expect(spend.map((s) => s.stage)).toEqual(logged.map((l) => l.stage));
    spend.forEach((s, i) => expect(s.cost).toBeCloseTo(logged[i]?.cost ?? NaN, 9));
  });

  it('exports an audit trail of 48 records with their LLM call ids', async () => {
    const out: Array<Record<string, unknown>> = [];
    for await (const rec of auditRecords(h.clients.db, campaignId, 'distill')) out.push(rec);
    expect(out).toHaveLength(TRAIN_QUESTIONS);
    const callIds = new Set<string>();
    for (const rec of out) {
      expect(rec.campaignId).toBe(campaignId);
      const ids = rec.llmCallIds as { guideline: unknown; answer: unknown };
      expect(ids.guideline).toBeTruthy();
      expect(ids.answer).toBeTruthy();
      callIds.add(String(ids.guideline));
      callIds.add(String(ids.answer));
    }
    // Every record has calls of its own.
    expect(callIds.size).toBe(TRAIN_QUESTIONS * 2);
  });
});

describe('schemas/campaign.schema.json', () => {
  it('is what the zod spec generates (no drift)', async () => {
    const committed: unknown = JSON.parse(
      await readFile(path.join(REPO_ROOT, 'schemas', 'campaign.schema.json'), 'utf8'),
    );
    const generated = {
      title: 'meteor campaign spec',
      ...z.toJSONSchema(CampaignSpecSchema, { io: 'input', unrepresentable: 'any' }),
    };
    expect(committed).toEqual(JSON.parse(JSON.stringify(generated)));
  });
});
