/**
 * The many-machines layout of docs/deployment.md, as processes: two `meteorctl worker`s with
 * their own METEOR_HOME and host id against one Temporal and one PostgreSQL — one serving only
 * the campaign queue (workflows and LLM batches), one only the fine-tune queue — sharing a
 * file:// artifact store (METEOR_ARTIFACTS_URI). A campaign with a fine-tune completes; the
 * workflow histories show which process ran what, and pg_stat_activity, sampled while it runs,
 * shows each worker's connections (by its application_name) within its --db-pool-max.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  exampleQuestions,
  fineTuneQueueOf,
  launch,
  sleep,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';
import {
  spawnWorkerProcess,
  stopProcesses,
  workerProcessEnv,
  type WorkerProcess,
} from '../support/worker-process';

const LLM_POOL_MAX = 3;
const GPU_POOL_MAX = 2;

interface HostWorker extends WorkerProcess {
  hostId: string;
  home: string;
}

const children: ChildProcess[] = [];
let h: Harness;

/** Starts `meteorctl worker` with its own METEOR_HOME; resolves once it polls its queues. */
async function startWorker(opts: {
  hostId: string;
  queues: string;
  poolMax: number;
  sharedStore: string;
}): Promise<HostWorker> {
  const home = path.join(h.tmp, `home-${opts.hostId}`);
  await mkdir(home, { recursive: true });
  const env = workerProcessEnv({
    // Its own home: the artifacts folder (scratch here) follows METEOR_HOME.
    METEOR_HOME: home,
    METEOR_HOST_ID: opts.hostId,
    METEOR_ARTIFACTS_URI: opts.sharedStore,
    METEOR_ARTIFACTS_DIR: undefined,
  });
  const worker = await spawnWorkerProcess(
    ['--task-queue', h.taskQueue, '--queues', opts.queues, '--db-pool-max', String(opts.poolMax)],
    env,
    { label: `worker ${opts.hostId}`, startTimeoutMs: 60_000 },
  );
  children.push(worker.child);
  return { ...worker, hostId: opts.hostId, home };
}

/** Activity type → the worker identities that ran it, from one workflow's history. */
async function activityRunners(workflowId: string): Promise<Map<string, Set<string>>> {
  const history = await h.clients.temporal.workflow.getHandle(workflowId).fetchHistory();
  const typeOf = new Map<string, string>();
  const runners = new Map<string, Set<string>>();
  for (const e of history.events ?? []) {
    const id = String(e.eventId);
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) typeOf.set(id, scheduled.activityType?.name ?? '?');
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const type = typeOf.get(String(started.scheduledEventId)) ?? '?';
      const set = runners.get(type) ?? new Set<string>();
      set.add(started.identity ?? '?');
      runners.set(type, set);
    }
  }
  return runners;
}

beforeAll(async () => {
  h = await startHarness({ latencyMs: 60, worker: false });
});

afterAll(async () => {
  await stopProcesses(children, 'SIGTERM');
  await h?.close();
});

describe('two workers with separate homes: LLM queue on one, fine-tune queue on the other', () => {
  it('runs a campaign with a fine-tune, each process on its own queues and within its connection pool', async () => {
    const shared = path.join(h.tmp, 'shared-artifacts');
    const sharedStore = `file://${shared}`;
    const gpuQueue = fineTuneQueueOf(h.taskQueue);
    const llm = await startWorker({
      hostId: 'llm-1',
      queues: h.taskQueue,
      poolMax: LLM_POOL_MAX,
      sharedStore,
    });
    const gpu = await startWorker({ hostId: 'gpu-1', queues: gpuQueue, poolMax: GPU_POOL_MAX, sharedStore });
    expect(gpu.output()).toContain(`"${gpuQueue}", "${gpuQueue}@gpu-1"`);
    expect(gpu.output()).not.toContain(`"${h.taskQueue}"`);

    const train = await writeQuestions(h.tmp, 'two-train.jsonl', await exampleQuestions(12));
    const spec = await writeSpec(h, {
      name: 'two-workers',
      questions: { train },
      models: { weak: { concurrency: 6 }, strong: { concurrency: 6 } },
      stages: { distill: { batchSize: 2 } },
    });
    const { campaignId, workflowId } = await launch(h, spec);

    // Each worker's connections, sampled until the campaign ends.
    const peak = new Map<string, number>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const rows = await h.clients.db
          .selectFrom(sql<{ application_name: string }>`pg_stat_activity`.as('a'))
          .select(['a.application_name', sql<number>`count(*)::int`.as('n')])
          .where('a.application_name', 'like', 'meteor-worker:%')
          .groupBy('a.application_name')
          .execute();
        for (const r of rows) peak.set(r.application_name, Math.max(peak.get(r.application_name) ?? 0, r.n));
        await sleep(50);
      }
    })();
    let status;
    try {
      status = await waitDone(h, campaignId, 120_000);
    } finally {
      sampling = false;
      await sampler;
    }
    expect(status.state, `LLM worker:\n${llm.output()}\nGPU worker:\n${gpu.output()}`).toBe('completed');

    // Who ran what: Temporal's worker identity is <pid>@<hostname>.
    const identity = (w: WorkerProcess) => `${w.child.pid}@${os.hostname()}`;
    const stage = await activityRunners(`${workflowId}-distill-1`);
    const fineTune = await activityRunners(`${workflowId}-finetune-distill-1`);
    const batchRunners = [...(stage.get('distillBatch') ?? [])];
    expect(batchRunners.length, `stage activities: ${JSON.stringify([...stage.keys()])}`).toBeGreaterThan(0);
    expect(new Set(batchRunners)).toEqual(new Set([identity(llm)]));
    for (const type of ['prepareFineTune', 'submitFineTune', 'pollFineTune']) {
      expect(fineTune.get(type), type).toEqual(new Set([identity(gpu)]));
    }
    const job = await h.clients.db
      .selectFrom('finetune_jobs')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow();
    expect(job.status).toBe('succeeded');
    expect(job.queue).toBe(`${gpuQueue}@gpu-1`);
    // Datasets and the checkpoint in the shared store; neither worker's own home holds them.
    const uris = [
      ...(
        await h.clients.db
          .selectFrom('datasets')
          .select('uri')
          .where('campaign_id', '=', campaignId)
          .execute()
      ).map((d) => d.uri),
      job.checkpoint_uri ?? '',
    ];
    for (const uri of uris) expect(uri.startsWith(`${sharedStore}/${campaignId}/`), uri).toBe(true);
    for (const w of [llm, gpu]) {
      const files = await readdir(w.home, { recursive: true }).catch(() => []);
      expect(
        files.filter((f) => String(f).endsWith('.jsonl')),
        w.hostId,
      ).toEqual([]);
    }

    const llmPeak = peak.get('meteor-worker:llm-1') ?? 0;
    const gpuPeak = peak.get('meteor-worker:gpu-1') ?? 0;
    process.stderr.write(
      `[two-workers] peak PostgreSQL connections: llm-1 ${llmPeak} (max ${LLM_POOL_MAX}), gpu-1 ${gpuPeak} (max ${GPU_POOL_MAX}); ` +
        `distillBatch on ${batchRunners.join(',')}, fine-tune on ${identity(gpu)}\n`,
    );
    expect(llmPeak).toBeGreaterThan(0);
    expect(gpuPeak).toBeGreaterThan(0);
    expect(llmPeak).toBeLessThanOrEqual(LLM_POOL_MAX);
    expect(gpuPeak).toBeLessThanOrEqual(GPU_POOL_MAX);
  });
});
