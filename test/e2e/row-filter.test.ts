/**
 * The training-row filter (`stages.<stage>.filter`) end to end on the simulator: Stage 1's rows
 * scored by the judge after each batch, the dataset keeping exactly the rows scored at least
 * `minScore`, the scores in the audit and the report's figures, and a retried batch paying for no
 * score again.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { LlmGateway } from '../../core/llm/gateway';
import { auditRecords } from '../../core/records';
import type { BatchResult } from '../../workflows/types';
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

const TRAIN = 16;
// The simulator scores by how much of the reference an answer covers. Its strong model covers it
// all, so here the teacher is the weak model itself: its answers spread, and this threshold keeps
// some rows and drops others.
const MIN_SCORE = 3;

describe('the training-row filter', () => {
  let h: Harness;
  let campaignId: string;
  let final: CampaignStatusView;

  beforeAll(async () => {
    h = await startHarness();
    const train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(TRAIN));
    const spec = await writeSpec(h, {
      questions: { train },
      models: { strong: { model: 'sim-weak-8b' } },
      stages: { distill: { batchSize: 5, filter: { by: 'judge', minScore: MIN_SCORE } } },
    });
    ({ campaignId } = await launch(h, spec));
    final = await waitDone(h, campaignId, 120_000);
  }, 150_000);

  afterAll(async () => {
    await h?.close();
  });

  const scores = () =>
    h.clients.db
      .selectFrom('row_scores as s')
      .innerJoin('llm_calls as c', 'c.id', 's.call_id')
      .select(['s.question_id', 's.row', 's.score', 's.scorer', 'c.purpose', 'c.role', 'c.stage'])
      .where('s.campaign_id', '=', campaignId)
      .orderBy('s.question_id')
      .execute();

  it('scores every Stage-1 row once, by a logged judge call', async () => {
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    const rows = await scores();
    expect(rows).toHaveLength(TRAIN);
    for (const r of rows) {
      expect(r).toMatchObject({
        row: 0,
        scorer: 'judge',
        purpose: 'row-score',
        role: 'judge',
        stage: 'distill',
      });
      expect(r.score).not.toBeNull();
    }
  });

  it('trains only on the rows scored at least minScore', async () => {
    const { db } = h.clients;
    const rows = await scores();
    const passing = new Set(rows.filter((r) => (r.score ?? 0) >= MIN_SCORE).map((r) => r.question_id));
    // Both sides are present, or the test would not show the filter doing anything.
    expect(passing.size).toBeGreaterThan(0);
    expect(passing.size).toBeLessThan(TRAIN);
    const records = await db
      .selectFrom('distill_records')
      .select(['question_id', 'answer'])
      .where('campaign_id', '=', campaignId)
      .execute();
    const ds = await db
      .selectFrom('datasets')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .where('format', '=', 'openai')
      .executeTakeFirstOrThrow();
    expect(ds.rows).toBe(passing.size);
    const lines = (await readFile(fileURLToPath(ds.uri), 'utf8')).split('\n').filter((l) => l !== '');
    const answers = lines.map(
      (l) => (JSON.parse(l) as { messages: Array<{ content: string }> }).messages[2]?.content,
    );
    expect(answers.sort()).toEqual(
      records
        .filter((r) => passing.has(r.question_id))
        .map((r) => r.answer)
        .sort(),
    );
  });

  it('shows every score in the audit and the counts in the report', async () => {
    const rows = await scores();
    const byQuestion = new Map(rows.map((r) => [r.question_id, r.score]));
    let lines = 0;
    for await (const line of auditRecords(h.clients.db, campaignId, 'distill')) {
      const scored = line.rowScores as Array<{ row: number; score: number | null; callId: string }>;
      expect(scored.map((s) => s.score)).toEqual([byQuestion.get(line.questionId as string)]);
      lines++;
    }
    expect(lines).toBe(TRAIN);
    const report = await meteorctl(h, ['campaign', 'report', campaignId, '--json']);
    expect(report.code, report.stderr).toBe(0);
    const distill = (
      JSON.parse(report.stdout) as { stages: Array<{ stage: string; figures: Record<string, number> }> }
    ).stages.find((s) => s.stage === 'distill');
    expect(distill?.figures).toMatchObject({
      rowsScored: TRAIN,
      rowsBelowMinScore: rows.filter((r) => r.score !== null && r.score < MIN_SCORE).length,
      rowsUnscoreable: 0,
    });
  });

  it('pays for no score again when a batch is retried', async () => {
    const { db } = h.clients;
    const acts = createActivities({
      db,
      llm: new LlmGateway(db),
      artifactsDir: h.artifactsDir,
      env: {},
      hostId: 'test',
    });
    const modelIn = final.lineage[0]!.servedModel;
    const before = h.sim.stats().requests;
    const again: BatchResult = await new MockActivityEnvironment().run(acts.distillBatch, {
      campaignId,
      iteration: 1,
      modelIn,
      offset: 0,
      limit: TRAIN,
    });
    expect(again).toMatchObject({ processed: TRAIN, created: 0, halted: null });
    expect(h.sim.stats().requests).toBe(before);
    // A lost score is made again from the logged call, not paid for again.
    const lost = (await scores())[0]!;
    await db
      .deleteFrom('row_scores')
      .where('campaign_id', '=', campaignId)
      .where('question_id', '=', lost.question_id)
      .execute();
    const redone: BatchResult = await new MockActivityEnvironment().run(acts.distillBatch, {
      campaignId,
      iteration: 1,
      modelIn,
      offset: 0,
      limit: TRAIN,
    });
    expect(redone).toMatchObject({ processed: TRAIN, halted: null });
    expect((await scores()).find((r) => r.question_id === lost.question_id)?.score).toBe(lost.score);
    expect(h.sim.stats().requests).toBe(before);
    expect(await paidTwice(h, [campaignId])).toEqual([]);
  });
});
