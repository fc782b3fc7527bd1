/**
 * The whole METEOR loop: distill → assess × 3 → contrast × 3 → evaluate, with a pause in
 * contrast iteration 2 and the campaign continuing as new between steps. Every stage leaves its
 * records, datasets and model version; the lineage is a chain; every workflow run stays small
 * and replays against the current code.
 */
import { readFile } from 'node:fs/promises';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignStatus } from '../../client/status';
import { pauseSignal, resumeSignal } from '../../workflows/messages';
import { workflowBundle } from '../../workers/worker';
import {
  EXAMPLE_EVAL,
  exampleQuestions,
  launch,
  sleep,
  startHarness,
  waitDone,
  waitFor,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';

const TRAIN = 8;
const EVAL = 4;
const ITERATIONS = 3;

async function count(
  h: Harness,
  sqlTable: 'assess_rounds' | 'preference_pairs',
  campaignId: string,
  iteration: number,
) {
  const rows = await h.clients.db
    .selectFrom(sqlTable)
    .select('question_id')
    .distinct()
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', iteration)
    .execute();
  return rows.length;
}

describe('the full METEOR loop', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ latencyMs: 120 });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('runs every stage, pauses and resumes inside contrast iteration 2, and keeps every run small', async () => {
    const train = await writeQuestions(h.tmp, 'loop-train.jsonl', await exampleQuestions(TRAIN));
    const evalLines = (await readFile(EXAMPLE_EVAL, 'utf8')).split('\n').filter((l) => l.trim() !== '');
    const evalFile = await writeQuestions(h.tmp, 'loop-eval.jsonl', evalLines.slice(0, EVAL));
    const spec = await writeSpec(h, {
      questions: { train, eval: evalFile },
      stages: {
        distill: { batchSize: 4 },
        assess: { enabled: true, iterations: ITERATIONS, maxRounds: 2, batchSize: 4 },
        contrast: {
          enabled: true,
          iterations: ITERATIONS,
          beamWidth: 3,
          batchSize: 2,
          parallelBatches: 1,
          maxSimilarity: 0.98,
        },
        evaluate: { enabled: true, batchSize: 2 },
      },
    });
    // A low threshold makes the campaign continue as new between steps.
    const { campaignId, workflowId } = await launch(h, spec, { workflowInput: { maxHistoryEvents: 40 } });

    // Pause once contrast iteration 2 has made some pairs, but not all.
    await waitFor(
      'contrast iteration 2 under way',
      async () => (await count(h, 'preference_pairs', campaignId, 2)) >= 2,
      120_000,
      100,
    );
    const handle = h.clients.temporal.workflow.getHandle(workflowId);
    await handle.signal(pauseSignal);
    const paused = await waitFor(
      'the campaign to report paused',
      async () => {
        const s = await campaignStatus(h.clients, campaignId);
        return s.state === 'paused' ? s : undefined;
      },
      30_000,
    );
    expect(paused.stage).toBe('contrast');
    expect(paused.iteration).toBe(2);
    const pairsAtPause = await count(h, 'preference_pairs', campaignId, 2);
    expect(pairsAtPause).toBeLessThan(TRAIN);
    const callsAtPause = (
      await h.clients.db.selectFrom('llm_calls').select('id').where('campaign_id', '=', campaignId).execute()
    ).length;
    await sleep(3_000);
    const callsLater = (
      await h.clients.db.selectFrom('llm_calls').select('id').where('campaign_id', '=', campaignId).execute()
    ).length;
    expect(callsLater).toBe(callsAtPause);
    await handle.signal(resumeSignal);

    const final = await waitDone(h, campaignId, 240_000);
    expect(final.state).toBe('completed');
    const { db } = h.clients;

    // Records of every stage and iteration.
    const distilled = await db
      .selectFrom('distill_records')
      .select('question_id')
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(distilled).toHaveLength(TRAIN);
    for (let i = 1; i <= ITERATIONS; i++) {
      expect(await count(h, 'assess_rounds', campaignId, i)).toBe(TRAIN);
      expect(await count(h, 'preference_pairs', campaignId, i)).toBe(TRAIN);
    }
    // Resuming inside contrast 2 redid nothing, and no call of any stage was paid twice: by the
    // server's own count of the requests it answered, by content.
    const paid = await paidTwice(h, [campaignId]);
    process.stderr.write(`[full-loop] calls paid twice (server's count by content): ${paid.length}\n`);
    expect(paid).toEqual([]);

    // Lineage M0 → M1 → …: one model per training step that had data, each the parent of the next.
    const models = await db
      .selectFrom('model_versions')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .orderBy('created_at')
      .execute();
    // Each training step with a non-empty dataset made the next model version; a step whose
    // dataset came out empty (the simulated model converged: beam == greedy) kept the model.
    const runs = await db
      .selectFrom('stage_runs')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .orderBy('started_at')
      .execute();
    expect(runs.every((r) => r.status === 'completed')).toBe(true);
    const training = runs.filter((r) => r.stage !== 'evaluate');
    expect(training.map((r) => `${r.stage}-${r.iteration}`)).toEqual([
      'distill-1',
      ...[1, 2, 3].map((i) => `assess-${i}`),
      ...[1, 2, 3].map((i) => `contrast-${i}`),
    ]);
    const datasets = await db
      .selectFrom('datasets')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(datasets).toHaveLength(training.length * 3); // openai, trl, llamafactory
    expect(new Set(datasets.filter((d) => d.stage === 'contrast').map((d) => d.kind))).toEqual(
      new Set(['preference']),
    );
    const rowsOf = (stage: string, iteration: number) =>
      datasets.find((d) => d.stage === stage && d.iteration === iteration && d.format === 'openai')?.rows ??
      0;
    const trained = training.filter((r) => rowsOf(r.stage, r.iteration) > 0);
    expect(trained.length).toBeGreaterThanOrEqual(5); // distill, assess × 3, at least contrast 1
    let label = 0;
    for (const r of training) {
      expect(r.model_in, `${r.stage}-${r.iteration}`).toBe(`M${label}`);
      if (rowsOf(r.stage, r.iteration) > 0) {
        label++;
        expect(r.model_out).toBe(`M${label}`);
      } else {
        expect(r.model_out).toBeNull();
      }
    }
    expect(models.map((m) => m.label)).toEqual(Array.from({ length: trained.length + 1 }, (_, i) => `M${i}`));
    expect(models.slice(1).map((m) => `${m.stage}-${m.iteration}`)).toEqual(
      trained.map((r) => `${r.stage}-${r.iteration}`),
    );
    models.slice(1).forEach((m, i) => expect(m.parent_label).toBe(models[i]?.label));
    expect(final.lineage.map((m) => m.label)).toEqual(models.map((m) => m.label));
    const jobs = await db
      .selectFrom('finetune_jobs')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(jobs).toHaveLength(trained.length);
    expect(jobs.every((j) => j.status === 'succeeded')).toBe(true);

    // Evaluation: the final model of each training stage against the base, twice per question.
    const answers = await db
      .selectFrom('eval_answers')
      .select(['model_label'])
      .where('campaign_id', '=', campaignId)
      .execute();
    const finals = ['distill', 'assess', 'contrast'].map(
      (stage) => models.filter((m) => m.stage === stage).at(-1)?.label,
    );
    expect(answers).toHaveLength(EVAL * 4);
    expect(new Set(answers.map((a) => a.model_label))).toEqual(new Set(['M0', ...finals]));
    const judgments = await db
      .selectFrom('judgments')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(judgments).toHaveLength(EVAL * 3 * 2);
    expect(judgments.every((j) => j.raw_text.length > 0 && j.judge_model === 'sim-judge')).toBe(true);

    // Every run of every workflow of the campaign stays small, and replays.
    const ids = [
      workflowId,
      `${workflowId}-evaluate-1`,
      ...training.map((r) => `${workflowId}-${r.stage}-${r.iteration}`),
      ...trained.map((r) => `${workflowId}-finetune-${r.stage}-${r.iteration}`),
    ];
    const campaignRuns: string[] = [];
    for (const id of ids) {
      const runIds: string[] = [];
      for await (const w of h.clients.temporal.workflow.list({ query: `WorkflowId = "${id}"` }))
        runIds.push(w.runId);
      expect(runIds.length, id).toBeGreaterThan(0);
      if (id === workflowId) campaignRuns.push(...runIds);
      for (const runId of runIds) {
        const history = await h.clients.temporal.workflow.getHandle(id, runId).fetchHistory();
        expect(history.events?.length ?? 0).toBeLessThan(10_000);
        await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, id);
      }
    }
    expect(campaignRuns.length).toBeGreaterThan(1); // the campaign continued as new
  });
});
