/**
 * Fine-tune dispatch on the `local` backend with real Temporal, PostgreSQL and the simulator:
 * - a local job belongs to the host that started it: no other host polls (or could kill) it;
 * - a cancel that races the submit still stops the job;
 * - a weak endpoint that forgets its adapters (a vLLM restart) gets them loaded again, and the
 *   campaign goes on instead of failing on the 404.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listFineTunes } from '../../client/finetunes';
import { startSimServer } from '../../infra/sim/server';
import { createMeteorWorker, type MeteorWorker } from '../../workers/worker';
import {
  EXAMPLE_EVAL,
  EXAMPLE_TRAIN,
  fineTuneQueueOf,
  isAlive,
  launch,
  REPO_ROOT,
  services,
  sleep,
  startHarness,
  waitDone,
  waitFor,
  writeSpec,
  type Harness,
} from '../support/harness';

async function jobRow(h: Harness, campaignId: string) {
  return h.clients.db
    .selectFrom('finetune_jobs')
    .selectAll()
    .where('campaign_id', '=', campaignId)
    .executeTakeFirst();
}

describe('local fine-tunes belong to their host', () => {
  let h: Harness;
  const hosts = new Map<string, { worker: MeteorWorker; running: Promise<void> }>();
  const startHost = async (hostId: string) => {
    const svc = services();
    const worker = await createMeteorWorker({
      temporalAddress: svc.temporalAddress,
      namespace: svc.namespace,
      taskQueue: null,
      fineTuneQueues: [fineTuneQueueOf(h.taskQueue)],
      hostId,
      databaseUrl: svc.databaseUrl,
      artifactsDir: h.artifactsDir,
      shutdownGraceTime: '2s',
    });
    hosts.set(hostId, { worker, running: worker.run() });
  };
  const stopHost = async (hostId: string) => {
    const host = hosts.get(hostId);
    if (!host) return;
    host.worker.shutdown();
    await host.running;
    hosts.delete(hostId);
  };
  afterAll(async () => {
    for (const id of [...hosts.keys()]) await stopHost(id);
    await h?.close();
  });

  it('polls a local job only from the host that started it, and finishes once that host is back', async () => {
    // The campaign worker serves no fine-tune queue; two "machines" serve it.
    h = await startHarness({ fineTuneQueues: [] });
    await startHost('host-b');
    await startHost('host-c');
    const spec = await writeSpec(h, { fineTune: { env: { METEOR_SIM_TRAIN_SECONDS: '3' } } });
    const { campaignId } = await launch(h, spec);

    const job = await waitFor(
      'the job to be submitted',
      async () => {
        const row = await jobRow(h, campaignId);
        return row?.external_id ? row : undefined;
      },
      60_000,
    );
    const gpu = fineTuneQueueOf(h.taskQueue);
    const owner = job.queue === `${gpu}@host-b` ? 'host-b' : 'host-c';
    expect(job.queue).toBe(`${gpu}@${owner}`);
    const other = owner === 'host-b' ? 'host-c' : 'host-b';

    await stopHost(owner);
    // The trainer ends on its own; the other host must not pick the job up meanwhile.
    await waitFor(
      'the trainer to exit',
      async () => existsSync(path.join(job.job_dir ?? '', 'exit_code')),
      30_000,
    );
    await sleep(3_000);
    const unpolled = await jobRow(h, campaignId);
    expect(unpolled?.status).not.toBe('succeeded');
    expect(hosts.has(other)).toBe(true);

    await startHost(owner);
    const final = await waitDone(h, campaignId, 60_000);
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => m.label)).toEqual(['M0', 'M1']);
    const [ft] = await listFineTunes(h.clients.db, campaignId);
    expect(ft).toMatchObject({ stage: 'distill', iteration: 1, backend: 'local', state: 'succeeded' });

    // What an operator reads: `finetune list --json` and `finetune logs`.
    const env = {
      ...process.env,
      DATABASE_URL: services().databaseUrl,
      TEMPORAL_ADDRESS: services().temporalAddress,
      TEMPORAL_NAMESPACE: services().namespace,
    };
    const meteorctl = (...args: string[]) =>
      execFileSync(process.execPath, ['bin/meteorctl.cjs', ...args], {
        cwd: REPO_ROOT,
        env,
        encoding: 'utf8',
      });
    const listed = JSON.parse(meteorctl('finetune', 'list', campaignId, '--json')) as Array<
      Record<string, unknown>
    >;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      stage: 'distill',
      iteration: 1,
      backend: 'local',
      externalId: job.external_id,
      state: 'succeeded',
    });
    for (const key of ['startedAt', 'finishedAt', 'finalLoss']) expect(listed[0]).toHaveProperty(key);
    expect(typeof listed[0]?.finishedAt).toBe('string');
    // The trainer's last METEOR_METRICS line (the simulator's trainer prints them too).
    expect(typeof listed[0]?.finalLoss).toBe('number');
    const logs = meteorctl('finetune', 'logs', campaignId, '--stage', 'distill');
    expect(logs).toMatch(/submit\] submitted to local as local:\d+/);
    expect(logs).toContain('[simulated trainer]');
    expect(logs).toMatch(/status\] .*→ succeeded/);
  });
});

describe('cancel racing the submit', () => {
  let h: Harness;
  let cancelCampaign: (() => Promise<void>) | null = null;
  afterAll(async () => {
    await h?.close();
  });

  it('stops a job whose submit was in flight when the campaign was cancelled', async () => {
    h = await startHarness({
      crashPoint: async (point) => {
        // The backend has started the job but the row does not know it yet: cancel now.
        if (point !== 'before-record' || !cancelCampaign) return;
        const cancel = cancelCampaign;
        cancelCampaign = null;
        await cancel();
      },
    });
    const spec = await writeSpec(h, { fineTune: { env: { METEOR_SIM_TRAIN_SECONDS: '120' } } });
    const { campaignId, workflowId } = await launch(h, spec);
    cancelCampaign = async () => {
      await h.clients.temporal.workflow.getHandle(workflowId).cancel();
      // Hold the submit until the workflow's cancel has reached the job row.
      await waitFor(
        'the cancel flag',
        async () => (await jobRow(h, campaignId))?.cancel_requested === true,
        30_000,
      );
    };

    const final = await waitDone(h, campaignId, 90_000);
    expect(final.state).toBe('cancelled');
    const job = await waitFor('the job row to record the submit', async () => {
      const row = await jobRow(h, campaignId);
      return row?.external_id ? row : undefined;
    });
    const pid = Number(job.external_id?.replace(/^local:/, ''));
    await waitFor('the trainer process to be gone', async () => !isAlive(pid), 15_000);
    expect(job.status).toBe('cancelled');
    expect(final.lineage.map((m) => m.label)).toEqual(['M0']);
  });
});

describe('deploy heals itself', () => {
  let h: Harness;
  afterAll(async () => {
    await h?.close();
  });

  it('loads an adapter again when the weak endpoint restarted and forgot it, and the campaign completes', async () => {
    h = await startHarness({ latencyMs: 20 });
    const spec = await writeSpec(h, {
      stages: { assess: { enabled: true, iterations: 1, maxRounds: 2, batchSize: 4 } },
    });
    const { campaignId } = await launch(h, spec);
    // Restart the model server between M1's deploy and assess's first answer from M1, whatever
    // the machine's speed: once distill's fine-tune is submitted every chat call is held (deploy
    // does not chat), so nothing reaches M1 before the restart drops those calls.
    await waitFor(
      'the distill fine-tune to be submitted',
      async () => (await jobRow(h, campaignId)) !== undefined,
      60_000,
    );
    h.sim.setLatency(600_000);
    await waitFor(
      'M1 to be loaded on the weak endpoint',
      async () => {
        const models = (await (await fetch(`${h.sim.url}/models`)).json()) as { data: Array<{ id: string }> };
        return models.data.some((m) => m.id.endsWith('-m1'));
      },
      60_000,
    );
    const port = Number(new URL(h.sim.url).port);
    await h.sim.close();
    const restarted = await startSimServer({
      port,
      latencyMs: 20,
      knowledgeFiles: [EXAMPLE_TRAIN, EXAMPLE_EVAL],
    });
    h.sim = restarted;

    const final = await waitDone(h, campaignId, 120_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    const served = (await (await fetch(`${restarted.url}/models`)).json()) as { data: Array<{ id: string }> };
    const m1 = final.lineage.find((m) => m.label === 'M1');
    expect(served.data.map((m) => m.id)).toContain(m1?.servedModel);
    // The forgotten adapter answered 404 at least once before it was loaded again.
    const notFound = await h.clients.db
      .selectFrom('llm_calls')
      .select('id')
      .where('campaign_id', '=', campaignId)
      .where('http_status', '=', 404)
      .execute();
    expect(notFound.length).toBeGreaterThan(0);
  });
});

describe('a failing trainer', () => {
  let h: Harness;
  afterAll(async () => {
    await h?.close();
  });

  it('fails the campaign with its exit code and last output, even when the command calls exit itself', async () => {
    h = await startHarness();
    const spec = await writeSpec(h, { fineTune: { command: 'echo "CUDA out of memory" >&2; exit 3' } });
    const { campaignId } = await launch(h, spec);
    const final = await waitDone(h, campaignId, 60_000);
    expect(final.state).toBe('failed');
    expect(final.error).toMatch(/command exited with 3; last output: .*CUDA out of memory/);
    const [ft] = await listFineTunes(h.clients.db, campaignId);
    expect(ft).toMatchObject({ state: 'failed', backend: 'local' });
  });
});
