/**
 * Records one version's workflow histories for test/e2e/history-fixtures.test.ts: a small campaign
 * through every stage the version has (paused at a step and mid-stage, continuing as new), a
 * fine-tune waiting for `model register` (deploy: manual), and an evolution line's iterations
 * (trained, trained on a new question, skipped). Each run's history is written with historyToJSON
 * to `$METEOR_HISTORIES_OUT/<workflowType>-<n>.json`, with an index.json naming its workflow id
 * (replay needs it: child ids derive from it) and what it covers.
 *
 * scripts/record-histories.sh copies this file into a checkout of the version and runs it there
 * with vitest (scripts/record-histories.vitest.mts), so the version's own global setup starts
 * PostgreSQL and Temporal and its own harness, clients and workflows run. It therefore uses only
 * what v0.1.0 already had (test/support/harness and lines, client/status, lines and models,
 * workflows/messages); a newer API must be looked up on disk first, as the stage registry is.
 */
import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { afterAll, describe, expect, it } from 'vitest';
import { createLine, deleteLine, triggerLine } from '../client/lines';
import { registerServedModel } from '../client/models';
import { campaignStatus } from '../client/status';
import { pauseSignal, resumeSignal } from '../workflows/messages';
import {
  EXAMPLE_EVAL,
  exampleQuestions,
  launch,
  REPO_ROOT,
  startHarness,
  waitDone,
  waitFor,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../test/support/harness';
import { closeWithLines, lineIterations, writeLineSpec } from '../test/support/lines';

type History = temporal.api.history.v1.IHistory;

/** One recorded run, as index.json lists it. */
interface FixtureEntry {
  file: string;
  workflowType: string;
  workflowId: string;
  runId: string;
  /** The scenario that made it (see `scenarios` below). */
  scenario: string;
  events: number;
  /** What the run exercised, read from its history: signals, continue-as-new, children, stage. */
  covers: string[];
}

const OUT =
  process.env.METEOR_HISTORIES_OUT ?? path.join(REPO_ROOT, 'test', 'fixtures', 'histories', 'local');
const VERSION = process.env.METEOR_HISTORIES_VERSION ?? 'local';
const COMMIT = process.env.METEOR_HISTORIES_COMMIT ?? 'working tree';

/** METEOR's four stages; a version with the stage registry (stages/registry.ts) may have more. */
const METHOD_STAGES = ['distill', 'assess', 'contrast', 'evaluate'];

/** Settings that keep each stage small (a few calls a question); a stage not listed gets `enabled: true`. */
const SMALL_STAGE: Record<string, Record<string, unknown>> = {
  // Single-question batches: the stage continues as new and can be paused between batches.
  distill: { batchSize: 1, parallelBatches: 1 },
  assess: { enabled: true, iterations: 1, maxRounds: 2, batchSize: 2 },
  contrast: { enabled: true, iterations: 1, batchSize: 2 },
  evaluate: { enabled: true, batchSize: 2, bootstrapResamples: 100 },
  evolve: { enabled: true, seeds: 2 },
  mcts: { enabled: true, batchSize: 2, iterationLimit: 1 },
};

async function versionStages(): Promise<string[]> {
  // Looked up on disk, and imported by a computed path: a version before the registry has none.
  const file = path.join(REPO_ROOT, 'stages', 'registry.ts');
  if (!existsSync(file)) return METHOD_STAGES;
  const registry = (await import(file)) as { stageNames(): string[] };
  return registry.stageNames();
}

function lastEvent(history: History): temporal.api.history.v1.IHistoryEvent | undefined {
  return history.events?.at(-1);
}

/** The first argument a run was started with, decoded (workflows take one input object). */
function runInput(history: History): Record<string, unknown> {
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return payload ? (defaultPayloadConverter.fromPayload<Record<string, unknown>>(payload) ?? {}) : {};
}

function runResult(history: History): Record<string, unknown> | null {
  const payload = lastEvent(history)?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload<Record<string, unknown>>(payload) : null;
}

/** What a run exercised, for the index and for the fixture test's coverage check. */
function covers(type: string, history: History): string[] {
  const events = history.events ?? [];
  const out = new Set<string>();
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  if (started?.continuedExecutionRunId) out.add('from-continue-as-new');
  const input = runInput(history);
  if (type === 'stageWorkflow' || type === 'fineTuneWorkflow') {
    out.add(`stage:${String(input.stage)}-${String(input.iteration)}`);
  }
  for (const e of events) {
    const signal = e.workflowExecutionSignaledEventAttributes?.signalName;
    if (signal) out.add(`signal:${signal}`);
    const child = e.childWorkflowExecutionStartedEventAttributes?.workflowType?.name;
    if (child) out.add(`child:${child}`);
    if (e.timerStartedEventAttributes) out.add('timer');
  }
  const last = lastEvent(history);
  if (last?.workflowExecutionContinuedAsNewEventAttributes) out.add('continued-as-new');
  if (last?.workflowExecutionCompletedEventAttributes) out.add('completed');
  const result = runResult(history);
  if (type === 'lineIterationWorkflow' && typeof result?.state === 'string') out.add(`line:${result.state}`);
  return [...out].sort();
}

interface Run {
  workflowId: string;
  runId: string;
  type: string;
  history: History;
}

/** Every run of a workflow id, first to last: from the latest, back along continue-as-new. */
async function runsOf(h: Harness, workflowId: string): Promise<Run[]> {
  const runs: Run[] = [];
  let runId: string | undefined = (await h.clients.temporal.workflow.getHandle(workflowId).describe()).runId;
  while (runId) {
    const history: History = await h.clients.temporal.workflow.getHandle(workflowId, runId).fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    runs.unshift({ workflowId, runId, type: started?.workflowType?.name ?? 'unknown', history });
    runId = started?.continuedExecutionRunId ?? undefined;
    if (runs.length > 100) throw new Error(`${workflowId}: more than 100 runs`);
  }
  return runs;
}

/** The runs of `rootId` and, when `descend`, of every child it started, depth first. */
async function collect(h: Harness, rootId: string, descend: boolean): Promise<Run[]> {
  const out: Run[] = [];
  const seen = new Set<string>();
  const visit = async (workflowId: string) => {
    if (seen.has(workflowId)) return;
    seen.add(workflowId);
    for (const run of await runsOf(h, workflowId)) {
      out.push(run);
      if (!descend) continue;
      for (const e of run.history.events ?? []) {
        const child = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution?.workflowId;
        if (child) await visit(child);
      }
    }
  };
  await visit(rootId);
  return out;
}

const entries: FixtureEntry[] = [];
const perType = new Map<string, number>();

async function record(scenario: string, runs: Run[], keep: (type: string) => boolean): Promise<void> {
  await mkdir(OUT, { recursive: true });
  for (const run of runs.filter((r) => keep(r.type))) {
    // Only runs that ended well: a history still growing would be cut at an arbitrary point.
    const last = lastEvent(run.history);
    expect(
      last?.workflowExecutionCompletedEventAttributes ?? last?.workflowExecutionContinuedAsNewEventAttributes,
      `${run.workflowId} ${run.runId} completed or continued as new`,
    ).toBeTruthy();
    const n = (perType.get(run.type) ?? 0) + 1;
    perType.set(run.type, n);
    const file = `${run.type}-${n}.json`;
    await writeFile(path.join(OUT, file), `${historyToJSON(run.history)}\n`);
    entries.push({
      file,
      workflowType: run.type,
      workflowId: run.workflowId,
      runId: run.runId,
      scenario,
      events: run.history.events?.length ?? 0,
      covers: covers(run.type, run.history),
    });
  }
}

const harnesses: Harness[] = [];
afterAll(async () => {
  for (const h of harnesses) await closeWithLines(h);
  await writeFile(
    path.join(OUT, 'index.json'),
    `${JSON.stringify(
      {
        version: VERSION,
        commit: COMMIT,
        recordedAt: new Date().toISOString(),
        recorder: 'scripts/record-histories.ts',
        histories: entries,
      },
      null,
      2,
    )}\n`,
  );
});

async function evalQuestions(n: number): Promise<unknown[]> {
  const lines = (await readFile(EXAMPLE_EVAL, 'utf8')).split('\n').filter((l) => l.trim() !== '');
  return lines.slice(0, n).map((l) => JSON.parse(l) as unknown);
}

describe(`recording the histories of ${VERSION}`, () => {
  it('campaign: every stage, paused at a step and mid-stage, continuing as new', async () => {
    // Some latency, so a pause lands while distill's batches run.
    const h = await startHarness({ latencyMs: 150 });
    harnesses.push(h);
    const stages: Record<string, unknown> = {};
    for (const name of await versionStages()) stages[name] = SMALL_STAGE[name] ?? { enabled: true };
    const spec = await writeSpec(h, {
      questions: {
        train: await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(4)),
        eval: await writeQuestions(h.tmp, 'eval.jsonl', await evalQuestions(2)),
      },
      stages,
    });
    // A low threshold: the campaign continues as new between steps, distill between batches.
    const { campaignId, workflowId } = await launch(h, spec, { workflowInput: { maxHistoryEvents: 30 } });
    const handle = h.clients.temporal.workflow.getHandle(workflowId);
    const status = () => campaignStatus(h.clients, campaignId);

    // Paused at once: held at the campaign's safe point before the first step.
    await handle.signal(pauseSignal);
    await waitFor(
      'paused before the first step',
      async () => (await status()).state === 'paused',
      60_000,
      100,
    );
    await handle.signal(resumeSignal);
    // Paused again once distill has done a batch: the stage holds between its batches.
    await waitFor(
      'a distill batch done',
      async () => ((await status()).stages.find((s) => s.stage === 'distill')?.done ?? 0) >= 1,
      60_000,
      100,
    );
    await handle.signal(pauseSignal);
    await waitFor('paused mid-stage', async () => (await status()).state === 'paused', 60_000, 100);
    await handle.signal(resumeSignal);

    const final = await waitDone(h, campaignId, 600_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    await handle.result();
    await record('campaign', await collect(h, workflowId, true), () => true);
  });

  it('fine-tune with deploy: manual, waiting for model register', async () => {
    const h = await startHarness();
    harnesses.push(h);
    const spec = await writeSpec(h, {
      questions: { train: await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(2)) },
      stages: { distill: { batchSize: 2 } },
      deploy: { type: 'manual' },
    });
    const { campaignId, workflowId } = await launch(h, spec);
    const waiting = await waitFor(
      'the campaign to wait for M1',
      async () => (await campaignStatus(h.clients, campaignId)).awaitingRegistration,
      120_000,
    );
    await registerServedModel(h.clients, campaignId, waiting.label, 'recorded-m1', {
      check: false,
      timeoutMs: 60_000,
      env: process.env,
    });
    expect((await waitDone(h, campaignId, 120_000)).state).toBe('completed');
    await h.clients.temporal.workflow.getHandle(workflowId).result();
    await record('manual-deploy', await collect(h, workflowId, true), (t) => t === 'fineTuneWorkflow');
  });

  it('evolution line: an iteration, one on a new question, one with nothing new', async () => {
    const h = await startHarness();
    harnesses.push(h);
    const name = `rec-${h.taskQueue.slice(-8)}`;
    const train = await writeQuestions(h.tmp, 'line-train.jsonl', await exampleQuestions(2));
    const campaign = await writeSpec(h, {
      questions: { train, eval: await writeQuestions(h.tmp, 'line-eval.jsonl', await evalQuestions(2)) },
      stages: {
        distill: { batchSize: 2 },
        evaluate: { enabled: true, batchSize: 2, bootstrapResamples: 100 },
      },
    });
    // A day apart: iterations start only when triggered here. Each is triggered once the one
    // before has closed; allow-all, so the schedule never skips a trigger it has not yet seen close.
    await createLine(
      h.clients,
      await writeLineSpec(h, name, campaign, {
        schedule: { every: '24h' },
        overlap: 'allow-all',
        promotion: { dimensions: ['accuracy'], threshold: 0.5, minHeldOut: 2 },
      }),
    );
    const iterate = async (iteration: number) => {
      await triggerLine(h.clients, name);
      const row = await waitFor(
        `line iteration ${iteration}`,
        async () =>
          (await lineIterations(h, name)).find((r) => r.iteration === iteration && r.state !== 'running'),
        300_000,
        500,
      );
      await h.clients.temporal.workflow.getHandle(row.workflow_id).result();
      return row.state;
    };
    expect(await iterate(1)).toBe('completed');
    const third = (await exampleQuestions(3))[2];
    await appendFile(train, `${JSON.stringify(third)}\n`);
    expect(await iterate(2)).toBe('completed');
    expect(await iterate(3)).toBe('skipped');
    await deleteLine(h.clients, name);

    for (const iteration of await lineIterations(h, name)) {
      await record(
        'line',
        await collect(h, iteration.workflow_id, false),
        (t) => t === 'lineIterationWorkflow',
      );
    }
  });
});
