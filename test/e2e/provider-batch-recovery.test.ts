/**
 * Batch mode when things go wrong (issue 12, part 2), against the simulator's Batch API (a
 * simulation of OpenAI's /v1/files and /v1/batches): a crash between creating a provider batch and
 * recording it; a worker killed (SIGKILL, a real `meteorctl worker` process) while a batch is in
 * progress; a batch that expires half answered; pause and cancel while a batch runs. Batches are
 * counted at the simulator, by the metadata the platform gives them.
 */
import type { ChildProcess } from 'node:child_process';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LlmGateway, type Endpoint } from '../../core/llm/gateway';
import { BatchDeferredError, ProviderBatches } from '../../core/llm/provider-batches';
import { pauseSignal, resumeSignal } from '../../workflows/messages';
import {
  campaignForCalls,
  countRows,
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
import {
  campaignResultWithin,
  exited,
  spawnHarnessWorker,
  stopProcesses,
  type WorkerProcess,
} from '../support/worker-process';

const QUESTIONS = 6;
const children: ChildProcess[] = [];
let h: Harness;
let worker: WorkerProcess;
let train: string;

async function startWorkerProcess(): Promise<WorkerProcess> {
  const w = await spawnHarnessWorker(h);
  children.push(w.child);
  return w;
}

/** The simulator's batches of one campaign (their metadata names it), oldest first. */
function simBatchesOf(campaignId: string) {
  return h.sim.stats().batches.batches.filter((b) => b.metadata?.meteor_batch?.startsWith(`${campaignId}/`));
}

/** Each metadata value of the campaign's batches, with how many batches the simulator created for it. */
function createdPerChunk(campaignId: string): number[] {
  return Object.entries(h.sim.stats().batches.createdByMetadata)
    .filter(([meta]) => meta.includes(`${campaignId}/`))
    .map(([, n]) => n);
}

async function batchSpec(name: string, batch: Record<string, unknown> = {}): Promise<string> {
  return writeSpec(h, {
    name,
    questions: { train },
    models: { strong: { mode: 'batch', batch: { pollInterval: '250ms', ...batch } } },
    stages: { distill: { batchSize: 3 } },
  });
}

beforeAll(async () => {
  h = await startHarness({ latencyMs: 5, worker: false });
  train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(QUESTIONS));
}, 60_000);

afterAll(async () => {
  await stopProcesses(children, 'SIGKILL');
  await h?.close();
});

describe('a provider batch is created once', () => {
  it('a crash after creating it and before recording it: the next attempt finds it by its metadata', async () => {
    const { campaignId, spec } = await campaignForCalls(h, {
      name: 'batch-lookup',
      models: { strong: { mode: 'batch', batch: { onFailure: 'online' } } },
    });
    const strong: Endpoint = { ...spec.models.strong, role: 'strong' };
    const gateway = new LlmGateway(h.clients.db);
    const scope = { campaignId, stage: 'distill', iteration: 1, deferToBatch: true };
    const ask = (i: number) =>
      gateway.chat(scope, strong, {
        purpose: 'guideline',
        promptVersion: 'test',
        messages: [{ role: 'user', content: `How do I drain node ${i}?` }],
      });
    for (let i = 0; i < 4; i++) await expect(ask(i)).rejects.toBeInstanceOf(BatchDeferredError);
    const batches = new ProviderBatches(h.clients.db, gateway.batchApi());
    const endpoints = new Map([['strong', strong]]);
    const key = { campaignId, stage: 'distill', iteration: 1, cycle: 0 };
    h.sim.setBatchConfig({ inProgressMs: 400 });
    const first = await batches.submit(key, endpoints);
    expect(first).toMatchObject({ batches: 1, inProgress: 1, requests: 4 });
    // The crash: the provider holds the batch, our row never got its id.
    await h.clients.db
      .updateTable('llm_batches')
      .set({ provider_batch_id: null, status: 'claimed' })
      .where('campaign_id', '=', campaignId)
      .execute();
    const again = await batches.submit(key, endpoints);
    expect(again.providerBatchIds).toEqual(first.providerBatchIds);
    expect(createdPerChunk(campaignId)).toEqual([1]);

    let state = again;
    while (state.inProgress > 0) {
      await sleep(100);
      state = await batches.poll(key, endpoints);
    }
    expect(state).toMatchObject({ answered: 4, inProgress: 0 });
    // Answered from the call log now, at the batch price, without a request to the server.
    const served = h.sim.stats().served;
    for (let i = 0; i < 4; i++) {
      const r = await ask(i);
      expect(r.reused).toBe(true);
      expect(r.content.length).toBeGreaterThan(0);
    }
    expect(h.sim.stats().served).toBe(served);
    const modes = await h.clients.db
      .selectFrom('llm_calls')
      .select('billing_mode')
      .where('campaign_id', '=', campaignId)
      .where('status', '=', 'ok')
      .execute();
    expect(modes.map((m) => m.billing_mode)).toEqual(['batch', 'batch', 'batch', 'batch']);
  });

  it('a crash after uploading the input file and before creating the batch: the next attempt creates it from that file', async () => {
    const { campaignId, spec } = await campaignForCalls(h, {
      name: 'batch-upload-crash',
      models: { strong: { mode: 'batch', batch: { onFailure: 'online' } } },
    });
    const strong: Endpoint = { ...spec.models.strong, role: 'strong' };
    const gateway = new LlmGateway(h.clients.db);
    const scope = { campaignId, stage: 'distill', iteration: 1, deferToBatch: true };
    for (let i = 0; i < 3; i++) {
      const asked = gateway.chat(scope, strong, {
        purpose: 'guideline',
        promptVersion: 'test',
        messages: [{ role: 'user', content: `How do I cordon node ${i}?` }],
      });
      await expect(asked).rejects.toBeInstanceOf(BatchDeferredError);
    }
    // The worker dies right after the upload: its create never reaches the provider.
    let createsDropped = 0;
    const dying = new OpenAI({
      baseURL: strong.baseURL,
      apiKey: 'none',
      maxRetries: 0,
      fetch: async (input: string | URL | Request, init?: RequestInit) => {
        if (String(input).endsWith('/batches') && init?.method === 'POST' && createsDropped === 0) {
          createsDropped++;
          throw new TypeError('fetch failed: the worker died');
        }
        return fetch(input, init);
      },
    });
    const api = gateway.batchApi();
    const endpoints = new Map([['strong', strong]]);
    const key = { campaignId, stage: 'distill', iteration: 1, cycle: 0 };
    await expect(
      new ProviderBatches(h.clients.db, { ...api, client: () => dying }).submit(key, endpoints),
    ).rejects.toThrow();
    expect(createsDropped).toBe(1);
    const inputFiles = async () => {
      const files = [];
      for await (const f of dying.files.list({ purpose: 'batch' }))
        if (f.filename.startsWith(`${campaignId}_`)) files.push(f);
      return files;
    };
    const uploaded = await inputFiles();
    expect(uploaded).toHaveLength(1);

    const state = await new ProviderBatches(h.clients.db, api).submit(key, endpoints);
    expect(state).toMatchObject({ batches: 1, requests: 3 });
    expect(createdPerChunk(campaignId)).toEqual([1]);
    // One upload in all, and the batch was made from it.
    expect((await inputFiles()).map((f) => f.id)).toEqual(uploaded.map((f) => f.id));
    const [batchId] = state.providerBatchIds;
    expect((await dying.batches.retrieve(batchId ?? '')).input_file_id).toBe(uploaded[0]?.id);
  });

  it('a worker killed while its batch is in progress: the next worker polls the same batch', async () => {
    worker = await startWorkerProcess();
    h.sim.setBatchConfig({ inProgressMs: 3000 });
    const { campaignId, workflowId } = await launch(h, await batchSpec('batch-kill'));
    await waitFor(
      'a provider batch in progress, recorded',
      async () => {
        const recorded = await h.clients.db
          .selectFrom('llm_batches')
          .select('provider_batch_id')
          .where('campaign_id', '=', campaignId)
          .where('provider_batch_id', 'is not', null)
          .executeTakeFirst();
        return recorded && simBatchesOf(campaignId).some((b) => b.status === 'in_progress')
          ? true
          : undefined;
      },
      60_000,
      25,
    );
    worker.child.kill('SIGKILL');
    await exited(worker.child);
    worker = await startWorkerProcess();
    const result = await campaignResultWithin(h, workflowId, worker, 90_000);
    expect(result.state).toBe('completed');
    expect(await countRows(h, 'distill_records', campaignId)).toBe(QUESTIONS);
    const created = createdPerChunk(campaignId);
    expect(created.length).toBeGreaterThan(0);
    expect(created.every((n) => n === 1)).toBe(true);
    expect(await paidTwice(h, [campaignId])).toEqual([]);
  });
});

describe('requests a batch did not answer', () => {
  it('onFailure online: requests of an expired batch go out online, once', async () => {
    const { campaignId, spec } = await campaignForCalls(h, {
      name: 'batch-online',
      models: { strong: { mode: 'batch', batch: { onFailure: 'online' } } },
    });
    const strong: Endpoint = { ...spec.models.strong, role: 'strong' };
    const gateway = new LlmGateway(h.clients.db);
    const scope = { campaignId, stage: 'assess', iteration: 1, deferToBatch: true };
    const ask = (i: number) =>
      gateway.chat(scope, strong, {
        purpose: 'verdict',
        promptVersion: 'test',
        messages: [{ role: 'user', content: `Is answer ${i} right?` }],
      });
    for (let i = 0; i < 3; i++) await expect(ask(i)).rejects.toBeInstanceOf(BatchDeferredError);
    const batches = new ProviderBatches(h.clients.db, gateway.batchApi());
    const endpoints = new Map([['strong', strong]]);
    const key = { campaignId, stage: 'assess', iteration: 1, cycle: 0 };
    h.sim.setBatchConfig({ inProgressMs: 60_000 });
    const [id] = (await batches.submit(key, endpoints)).providerBatchIds;
    await waitFor(
      'the batch in progress',
      async () => simBatchesOf(campaignId)[0]?.status === 'in_progress',
      10_000,
      25,
    );
    expect(h.sim.expireBatch(id ?? '')).toBe(true);
    const ended = await waitFor(
      'the expired batch ingested',
      async () => {
        const state = await batches.poll(key, endpoints);
        return state.inProgress === 0 ? state : undefined;
      },
      10_000,
      50,
    );
    expect(ended).toMatchObject({ answered: 0, errored: 3 });
    const served = h.sim.stats().served;
    for (let i = 0; i < 3; i++) expect((await ask(i)).reused).toBe(false);
    expect(h.sim.stats().served).toBe(served + 3);
    const calls = await h.clients.db
      .selectFrom('llm_calls')
      .select(['status', 'billing_mode'])
      .where('campaign_id', '=', campaignId)
      .orderBy('id')
      .execute();
    expect(calls.filter((c) => c.status === 'error').map((c) => c.billing_mode)).toEqual([
      'batch',
      'batch',
      'batch',
    ]);
    expect(calls.filter((c) => c.status === 'ok').map((c) => c.billing_mode)).toEqual([
      'online',
      'online',
      'online',
    ]);
    // Answered now: read back from the log, not deferred again.
    for (let i = 0; i < 3; i++) expect((await ask(i)).reused).toBe(true);
  });

  it('an expired batch: what it answered is kept, the rest goes into a new batch', async () => {
    // Slow enough that "some answered, not all" lasts seconds (a 2 s batch of 3 left 1.3 s, missed
    // once by a loaded CI); the new batch then runs fast.
    h.sim.setBatchConfig({ inProgressMs: 6000 });
    const { campaignId } = await launch(h, await batchSpec('batch-expire', { onFailure: 'batch' }));
    // Half way through, some requests are answered and the rest are not.
    const first = await waitFor(
      'the first batch half answered',
      async () => {
        const b = simBatchesOf(campaignId)[0];
        return b && b.status === 'in_progress' && b.request_counts.completed > 0 ? b : undefined;
      },
      60_000,
      25,
    );
    expect(h.sim.expireBatch(first.id)).toBe(true);
    h.sim.setBatchConfig({ inProgressMs: 500 });
    const final = await waitDone(h, campaignId, 90_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(await countRows(h, 'distill_records', campaignId)).toBe(QUESTIONS);
    const expired = await h.clients.db
      .selectFrom('llm_calls')
      .select(['request_hash', 'error', 'billing_mode'])
      .where('campaign_id', '=', campaignId)
      .where('status', '=', 'error')
      .execute();
    expect(expired.length).toBeGreaterThan(0);
    for (const e of expired) {
      expect(e.billing_mode).toBe('batch');
      expect(e.error).toContain('expired');
    }
    // Each expired request was answered later, by a batch of the next round; none online.
    const answered = await h.clients.db
      .selectFrom('llm_calls')
      .select(['request_hash', 'billing_mode'])
      .where('campaign_id', '=', campaignId)
      .where('status', '=', 'ok')
      .where('role', '=', 'strong')
      .execute();
    const modeOf = new Map(answered.map((a) => [a.request_hash, a.billing_mode]));
    for (const e of expired) expect(modeOf.get(e.request_hash)).toBe('batch');
    const batches = simBatchesOf(campaignId);
    expect(batches[0]?.status).toBe('expired');
    expect(batches.length).toBeGreaterThanOrEqual(2);
    expect(createdPerChunk(campaignId).every((n) => n === 1)).toBe(true);
    expect(await paidTwice(h, [campaignId])).toEqual([]);
  });
});

describe('pause and cancel while a batch runs', () => {
  it('pause holds the stage once the batch is in: nothing more is sent until resume', async () => {
    h.sim.setBatchConfig({ inProgressMs: 1500 });
    const { campaignId, workflowId } = await launch(h, await batchSpec('batch-pause'));
    await waitFor(
      'a provider batch in progress',
      async () => (simBatchesOf(campaignId).some((b) => b.status === 'in_progress') ? true : undefined),
      60_000,
      25,
    );
    const handle = h.clients.temporal.workflow.getHandle(workflowId);
    await handle.signal(pauseSignal);
    await waitFor(
      'the batch ended and the campaign paused',
      async () => {
        const ended = simBatchesOf(campaignId).every((b) => b.status === 'completed');
        const row = await h.clients.db
          .selectFrom('campaigns')
          .select('state')
          .where('id', '=', campaignId)
          .executeTakeFirstOrThrow();
        return ended && row.state === 'paused' ? true : undefined;
      },
      60_000,
      50,
    );
    const served = h.sim.stats().served;
    const records = await countRows(h, 'distill_records', campaignId);
    await sleep(1500);
    expect(h.sim.stats().served).toBe(served);
    expect(await countRows(h, 'distill_records', campaignId)).toBe(records);
    expect(records).toBeLessThan(QUESTIONS);
    await handle.signal(resumeSignal);
    const final = await waitDone(h, campaignId, 90_000);
    expect(final.state).toBe('completed');
    expect(await countRows(h, 'distill_records', campaignId)).toBe(QUESTIONS);
  });

  it('cancel cancels the provider batch, logs what it had answered and deletes its files', async () => {
    // One request answered every 5 s: cancelled after the first answer, long before the last.
    h.sim.setBatchConfig({ inProgressMs: 30_000 });
    const { campaignId, workflowId } = await launch(h, await batchSpec('batch-cancel'));
    await waitFor(
      'a provider batch with an answer',
      async () => (simBatchesOf(campaignId).some((b) => b.request_counts.completed > 0) ? true : undefined),
      60_000,
      25,
    );
    await h.clients.temporal.workflow.getHandle(workflowId).cancel();
    const final = await waitDone(h, campaignId, 60_000);
    expect(final.state).toBe('cancelled');
    // Cancelled at the provider, with the requests it had not answered yet (the only ones this file cancels).
    const [batch, ...more] = await waitFor(
      'the provider batch cancelled',
      async () => {
        const bs = simBatchesOf(campaignId);
        return bs.every((b) => b.status === 'cancelled') ? bs : undefined;
      },
      10_000,
      50,
    );
    expect(more).toEqual([]);
    const answered = batch?.request_counts.completed ?? 0;
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThan(batch?.request_counts.total ?? 0);
    expect(h.sim.stats().batches.requests.cancelled).toBeGreaterThan(0);
    // What the provider answered before it stopped was paid for: it is in the call log, billed as
    // batch, and the batch's files (prompts and answers) are gone from the provider.
    const client = new OpenAI({ baseURL: h.sim.url, apiKey: 'none' });
    const wire = await client.batches.retrieve(batch?.id ?? '');
    const ids = [wire.input_file_id, wire.output_file_id, wire.error_file_id].filter(
      (id): id is string => typeof id === 'string',
    );
    expect(ids.length).toBeGreaterThan(1);
    const left = await waitFor(
      'the cancelled batch settled',
      async () => {
        const logged = await h.clients.db
          .selectFrom('llm_calls')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('campaign_id', '=', campaignId)
          .where('status', '=', 'ok')
          .where('billing_mode', '=', 'batch')
          .executeTakeFirstOrThrow();
        const files: string[] = [];
        for await (const f of client.files.list()) if (ids.includes(f.id)) files.push(f.id);
        return Number(logged.n) === answered && files.length === 0 ? files : undefined;
      },
      20_000,
      100,
    );
    expect(left).toEqual([]);
  });
});
