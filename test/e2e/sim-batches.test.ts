/**
 * The simulator's Batch API (infra/sim/batches.ts), through the real openai client: files,
 * batches and their statuses, output and error files, partial failures, expiry, cancellation,
 * validation, listing by metadata, and the counts tests check "paid once" against. Every model
 * here is a simulation. Needs neither Temporal nor PostgreSQL: it starts its own sim servers.
 */
import { readFileSync } from 'node:fs';
import OpenAI, { toFile } from 'openai';
import type { Batch, BatchCreateParams } from 'openai/resources/batches';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SimServer, SimStats } from '../../infra/sim/server';
import { DEFAULT_BATCH_CONFIG, metadataKey, requestHash, startSimServer } from '../../infra/sim/server';

type ChatBody = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;

interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: Record<string, unknown> } | null;
  error: { code: string; message: string } | null;
}

const QUESTIONS = readFileSync('examples/kubernetes-ops/train.jsonl', 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => (JSON.parse(l) as { question: string; reference: string }).question);

const question = (i: number): string => {
  const q = QUESTIONS[i % QUESTIONS.length];
  if (q === undefined) throw new Error('no questions in the example');
  return q;
};

const answerBody = (i: number, extra: Partial<ChatBody> = {}): ChatBody => ({
  model: 'sim-strong',
  messages: [
    { role: 'system', content: 'You are an expert in Kubernetes operations.' },
    { role: 'user', content: question(i) },
  ],
  temperature: 0,
  ...extra,
});

const verdictBody = (i: number): ChatBody => ({
  model: 'sim-strong',
  temperature: 0,
  messages: [
    {
      role: 'user',
      content: `Question:\n${question(i)}\n\nAnswer:\nRestart the pod.\n\nReference answer:\nRead the events.`,
    },
  ],
  response_format: {
    type: 'json_schema',
    json_schema: {
      name: 'assessment_verdict',
      strict: true,
      schema: {
        type: 'object',
        additionalProperties: false,
        required: ['correct', 'feedback'],
        properties: { correct: { type: 'boolean' }, feedback: { type: 'string' } },
      },
    },
  },
});

const line = (customId: string, body: unknown, url = '/v1/chat/completions') =>
  JSON.stringify({ custom_id: customId, method: 'POST', url, body });

let sim: SimServer;
let client: OpenAI;
const base = () => sim.url.replace(/\/v1$/, '');

async function upload(lines: string[], filename = 'requests.jsonl') {
  return client.files.create({
    file: await toFile(Buffer.from(`${lines.join('\n')}\n`), filename),
    purpose: 'batch',
  });
}

async function submit(lines: string[], metadata?: Record<string, string>): Promise<Batch> {
  const file = await upload(lines);
  return client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    ...(metadata ? { metadata } : {}),
  });
}

/** Polls the batch until `until` holds (default: a final status); the statuses seen, in order. */
async function waitFor(
  id: string,
  until: (b: Batch) => boolean = (b) => ['completed', 'failed', 'expired', 'cancelled'].includes(b.status),
  timeoutMs = 8000,
): Promise<{ batch: Batch; seen: string[] }> {
  const seen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await client.batches.retrieve(id);
    if (seen[seen.length - 1] !== batch.status) seen.push(batch.status);
    if (until(batch)) return { batch, seen };
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${batch.status}; seen ${seen.join(' → ')}`);
    await new Promise((r) => setTimeout(r, 15));
  }
}

async function readLines(fileId: string | null | undefined): Promise<OutputLine[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as OutputLine);
}

const stats = async (): Promise<SimStats> => (await (await fetch(`${base()}/sim/stats`)).json()) as SimStats;

beforeAll(async () => {
  sim = await startSimServer({
    seed: 11,
    knowledgeFiles: ['examples/kubernetes-ops/train.jsonl', 'examples/kubernetes-ops/eval.jsonl'],
  });
  client = new OpenAI({ baseURL: sim.url, apiKey: 'none', maxRetries: 0, timeout: 5000 });
});
afterAll(async () => {
  await sim?.close();
});
beforeEach(() => {
  sim.setBatchConfig({ ...DEFAULT_BATCH_CONFIG, failNext: 0 });
  sim.reset();
});

describe('simulated Batch API', () => {
  it('answers a batch exactly as the online endpoint does, and bills it the same way', async () => {
    // Slow enough to see every status while polling, even on a busy machine.
    sim.setBatchConfig({ validatingMs: 250, inProgressMs: 400, finalizingMs: 250 });
    const bodies: Record<string, ChatBody> = {
      'q-0': answerBody(0),
      'q-1': answerBody(1, { max_tokens: 20 }),
      'q-2': answerBody(2, { temperature: 1, seed: 3, n: 2 }),
      'v-3': verdictBody(3),
    };
    const lines = Object.entries(bodies).map(([id, body]) => line(id, body));
    const input = await upload(lines);
    expect(input).toMatchObject({
      object: 'file',
      purpose: 'batch',
      filename: 'requests.jsonl',
      status: 'processed',
    });
    expect(input.bytes).toBe(Buffer.byteLength(`${lines.join('\n')}\n`));

    const created = await client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { campaign: 'c-1', stage: 'distill', chunk: '0' },
    });
    expect(created).toMatchObject({
      object: 'batch',
      status: 'validating',
      endpoint: '/v1/chat/completions',
      input_file_id: input.id,
      completion_window: '24h',
      output_file_id: null,
      error_file_id: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
    });
    expect(created.expires_at).toBe(created.created_at + 24 * 3600);

    const { batch, seen } = await waitFor(created.id);
    expect(seen).toEqual(['validating', 'in_progress', 'finalizing', 'completed']);
    expect(batch).toMatchObject({
      status: 'completed',
      model: 'sim-strong',
      request_counts: { total: 4, completed: 4, failed: 0 },
      error_file_id: null,
      errors: null,
    });
    for (const k of ['in_progress_at', 'finalizing_at', 'completed_at'] as const)
      expect(batch[k]).toBeTypeOf('number');
    expect(batch.usage?.input_tokens).toBeGreaterThan(0);

    const output = await readLines(batch.output_file_id);
    expect(output.map((o) => o.custom_id)).toEqual(Object.keys(bodies));
    const outputFile = await client.files.retrieve(batch.output_file_id ?? '');
    expect(outputFile).toMatchObject({ purpose: 'batch_output', filename: `${batch.id}_output.jsonl` });

    // Billed as online requests are: by content hash, once each so far.
    const afterBatch = sim.stats();
    expect(afterBatch.served).toBe(4);
    expect(afterBatch.byModel['sim-strong']?.served).toBe(4);
    for (const body of Object.values(bodies))
      expect(afterBatch.requestCounts[requestHash(body)]).toEqual({ requests: 1, served: 1 });
    expect(sim.paidTwice()).toEqual([]);

    // The same bodies online: the same choices and usage.
    let usageSum = 0;
    for (const o of output) {
      expect(o.response?.status_code).toBe(200);
      expect(o.error).toBeNull();
      const body = bodies[o.custom_id];
      if (!body) throw new Error(`unexpected custom_id ${o.custom_id}`);
      const online = await client.chat.completions.create(body);
      expect(o.response?.body['choices']).toEqual(online.choices);
      expect(o.response?.body['usage']).toEqual(online.usage);
      expect(o.response?.body['model']).toBe(online.model);
      usageSum += online.usage?.prompt_tokens ?? 0;
    }
    expect(batch.usage?.input_tokens).toBe(usageSum);
    expect(sim.stats().batches.usage.promptTokens).toBe(usageSum);
    // Each body now paid twice (batch + online): the counts do not tell the two apart.
    expect(sim.paidTwice()).toHaveLength(4);

    const s = await stats();
    expect(s.batches).toMatchObject({
      created: 1,
      createdByMetadata: { [metadataKey({ stage: 'distill', chunk: '0', campaign: 'c-1' })]: 1 },
      byStatus: { completed: 1 },
      requests: { completed: 4, failed: 0, expired: 0, cancelled: 0 },
      filesUploaded: 1,
    });
    expect(sim.batchesCreated({ stage: 'distill' })).toBe(1);
    expect(sim.batchesCreated({ stage: 'assess' })).toBe(0);

    // Files: listed by purpose, deleted; the batch keeps its record.
    const batchFiles = [];
    for await (const f of client.files.list({ purpose: 'batch' })) batchFiles.push(f.id);
    expect(batchFiles).toContain(input.id);
    expect(await client.files.delete(input.id)).toEqual({ id: input.id, object: 'file', deleted: true });
    await expect(client.files.retrieve(input.id)).rejects.toMatchObject({ status: 404 });
    expect((await client.batches.retrieve(batch.id)).status).toBe('completed');
  });

  it('puts requests failing inside a batch in the error file, reproducibly for a seed', async () => {
    sim.setBatchConfig({ failRate: 0.5 });
    const lines = Array.from({ length: 10 }, (_, i) => line(`r-${i}`, answerBody(i)));
    const run = async () => {
      const { batch } = await waitFor((await submit(lines)).id);
      return {
        batch,
        output: await readLines(batch.output_file_id),
        errors: await readLines(batch.error_file_id),
      };
    };
    const { batch, output, errors } = await run();
    expect(batch.status).toBe('completed');
    const counts = batch.request_counts;
    expect(counts?.total).toBe(10);
    expect(counts?.failed).toBeGreaterThan(0);
    expect(counts?.completed).toBeGreaterThan(0);
    expect(output).toHaveLength(counts?.completed ?? -1);
    expect(errors).toHaveLength(counts?.failed ?? -1);
    expect([...output, ...errors].map((o) => o.custom_id).sort()).toEqual(
      lines.map((_, i) => `r-${i}`).sort(),
    );
    for (const e of errors) {
      expect(e.error).toBeNull();
      expect(e.response?.status_code).toBe(500);
      expect(e.response?.body).toMatchObject({ error: { type: 'server_error', code: 'server_error' } });
    }
    // Counted as online faults are: received, not served (not paid), a 500 fault.
    const s = sim.stats();
    expect(s.faults['500']).toBe(errors.length);
    for (const e of errors) {
      const i = Number(e.custom_id.slice(2));
      expect(s.requestCounts[requestHash(answerBody(i))]).toEqual({ requests: 1, served: 0 });
    }
    expect(s.batches.requests).toMatchObject({ completed: output.length, failed: errors.length });

    // Drawn from the seed, the batch's order since the reset and the line: a reset replays it.
    sim.reset();
    const again = await run();
    expect(again.errors.map((e) => e.custom_id)).toEqual(errors.map((e) => e.custom_id));

    // failNext forces the next N; a body the endpoint rejects is its 400, in the error file.
    sim.reset();
    sim.setBatchConfig({ failRate: 0, failNext: 1 });
    const mixed = await submit([
      line('first', answerBody(0)),
      line('second', answerBody(1)),
      line('bad', { model: 'sim-strong', messages: [] }),
    ]);
    const done = (await waitFor(mixed.id)).batch;
    expect(done.request_counts).toEqual({ total: 3, completed: 1, failed: 2 });
    const failed = await readLines(done.error_file_id);
    expect(failed.map((e) => [e.custom_id, e.response?.status_code])).toEqual([
      ['first', 500],
      ['bad', 400],
    ]);
    expect((await readLines(done.output_file_id)).map((o) => o.custom_id)).toEqual(['second']);
  });

  it('expires a batch not done in its window: what is done in the output file, the rest batch_expired', async () => {
    // 6 requests over 3 s: about two answered when the batch expires at 1.3 s.
    sim.setBatchConfig({ inProgressMs: 3000, expireAfterMs: 1300 });
    const lines = Array.from({ length: 6 }, (_, i) => line(`e-${i}`, answerBody(i)));
    const created = await submit(lines);
    // Whole seconds of creation + 1.3 s.
    expect([1, 2]).toContain((created.expires_at ?? 0) - created.created_at);
    const { batch } = await waitFor(created.id);
    expect(batch.status).toBe('expired');
    expect(batch.expired_at).toBeTypeOf('number');
    expect(batch.completed_at).toBeNull();
    const done = batch.request_counts?.completed ?? 0;
    expect(done).toBeGreaterThanOrEqual(1);
    expect(done).toBeLessThan(6);
    expect(batch.request_counts).toEqual({ total: 6, completed: done, failed: 0 });
    const output = await readLines(batch.output_file_id);
    const errors = await readLines(batch.error_file_id);
    expect(output.map((o) => o.custom_id)).toEqual(lines.slice(0, done).map((_, i) => `e-${i}`));
    expect(errors).toHaveLength(6 - done);
    for (const e of errors) {
      expect(e.response).toBeNull();
      expect(e.error?.code).toBe('batch_expired');
    }
    expect(sim.stats().batches.requests.expired).toBe(6 - done);
    expect(sim.stats().served).toBe(done);

    // Expired on demand (POST /sim/batches/{id}/expire), before anything was answered.
    sim.setBatchConfig({ inProgressMs: 60_000, expireAfterMs: DEFAULT_BATCH_CONFIG.expireAfterMs });
    const slow = await submit(lines.slice(0, 3));
    await waitFor(slow.id, (b) => b.status === 'in_progress');
    const res = await fetch(`${base()}/sim/batches/${slow.id}/expire`, { method: 'POST' });
    expect(res.status).toBe(200);
    const expired = (await waitFor(slow.id)).batch;
    expect(expired).toMatchObject({ status: 'expired', output_file_id: null });
    expect((await readLines(expired.error_file_id)).map((e) => e.error?.code)).toEqual(
      Array(3).fill('batch_expired'),
    );
    expect(sim.expireBatch(slow.id)).toBe(false);
  });

  it('cancels a batch: cancelling, then cancelled with what was done', async () => {
    sim.setBatchConfig({ inProgressMs: 1600, finalizingMs: 100 });
    const lines = Array.from({ length: 4 }, (_, i) => line(`c-${i}`, answerBody(i)));
    const created = await submit(lines);
    await waitFor(created.id, (b) => (b.request_counts?.completed ?? 0) >= 1);
    const cancelling = await client.batches.cancel(created.id);
    expect(cancelling.status).toBe('cancelling');
    expect(cancelling.cancelling_at).toBeTypeOf('number');
    const { batch } = await waitFor(created.id);
    expect(batch.status).toBe('cancelled');
    expect(batch.cancelled_at).toBeTypeOf('number');
    const done = batch.request_counts?.completed ?? 0;
    expect(done).toBeGreaterThanOrEqual(1);
    expect(done).toBeLessThan(4);
    const output = await readLines(batch.output_file_id);
    const errors = await readLines(batch.error_file_id);
    expect(output).toHaveLength(done);
    expect(errors.map((e) => [e.response, e.error?.code])).toEqual(
      Array(4 - done).fill([null, 'batch_cancelled']),
    );
    expect(sim.stats().batches.requests.cancelled).toBe(4 - done);
    // Cancelling again answers the batch as it is; a finished batch cannot be cancelled.
    expect((await client.batches.cancel(created.id)).status).toBe('cancelled');
    sim.setBatchConfig(DEFAULT_BATCH_CONFIG);
    const quick = (await waitFor((await submit(lines.slice(0, 1))).id)).batch;
    await expect(client.batches.cancel(quick.id)).rejects.toMatchObject({ status: 409 });
  });

  it('fails validation naming each faulty line, and refuses what it cannot create', async () => {
    const created = await submit([
      line('a', answerBody(0)),
      '{"custom_id": "b", "method": "POST", ',
      line('c', { input: 'embed me', model: 'sim-strong' }, '/v1/embeddings'),
      line('a', answerBody(1)),
      line('d', { ...answerBody(2), model: 'sim-judge' }),
      JSON.stringify({ method: 'POST', url: '/v1/chat/completions', body: answerBody(3) }),
    ]);
    const { batch } = await waitFor(created.id);
    expect(batch).toMatchObject({
      status: 'failed',
      output_file_id: null,
      error_file_id: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
    });
    expect(batch.failed_at).toBeTypeOf('number');
    expect(batch.errors?.data?.map((e) => [e.line, e.code, e.param])).toEqual([
      [2, 'invalid_json_line', null],
      [3, 'url_mismatch', 'url'],
      [4, 'duplicate_custom_id', 'custom_id'],
      [5, 'model_mismatch', 'body.model'],
      [6, 'missing_required_parameter', 'custom_id'],
    ]);
    expect(sim.stats().requests).toBe(0); // nothing answered, nothing billed

    const empty = (await waitFor((await submit([])).id)).batch;
    expect(empty.errors?.data?.[0]?.code).toBe('empty_file');

    const file = await upload([line('a', answerBody(0))]);
    const create = (over: Record<string, unknown>) =>
      client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        ...over,
      } as BatchCreateParams);
    await expect(create({ input_file_id: 'file-missing' })).rejects.toMatchObject({ status: 400 });
    await expect(create({ endpoint: '/v1/embeddings' })).rejects.toMatchObject({ status: 400 });
    await expect(create({ completion_window: '1h' })).rejects.toMatchObject({ status: 400 });
    await expect(client.batches.retrieve('batch_nope')).rejects.toMatchObject({ status: 404 });
    await expect(upload([line('a', answerBody(0))], 'requests.txt')).rejects.toMatchObject({ status: 400 });
    expect(sim.stats().batches.created).toBe(1 + 1); // the failed one and the empty one
  });

  it('lists batches newest first, page by page, so a caller can look one up by metadata first', async () => {
    const ids: string[] = [];
    for (let chunk = 0; chunk < 5; chunk++)
      ids.push((await submit([line('x', answerBody(chunk))], { campaign: 'c-9', chunk: String(chunk) })).id);

    const first = await client.batches.list({ limit: 2 });
    expect(first.data.map((b) => b.id)).toEqual([ids[4], ids[3]]);
    expect(first.has_more).toBe(true);
    // Every batch of this server (earlier tests' too: a reset keeps them), newest first, once each.
    const all: string[] = [];
    for await (const b of client.batches.list({ limit: 2 })) all.push(b.id);
    expect(all.slice(0, 5)).toEqual([...ids].reverse());
    expect(all).toEqual([...new Set(all)].sort().reverse());
    const raw = (await (await fetch(`${sim.url}/batches?limit=1&after=${ids[1]}`)).json()) as {
      data: Batch[];
      first_id: string;
      last_id: string;
      has_more: boolean;
    };
    expect(raw).toMatchObject({ first_id: ids[0], last_id: ids[0], has_more: all.length > 5 });

    // Submit-once: look the chunk up by its metadata, create only when there is none.
    const findBatch = async (metadata: Record<string, string>) => {
      for await (const b of client.batches.list({ limit: 100 }))
        if (Object.entries(metadata).every(([k, v]) => b.metadata?.[k] === v)) return b;
      return undefined;
    };
    const submitOnce = async (metadata: Record<string, string>) =>
      (await findBatch(metadata)) ?? submit([line('x', answerBody(7))], metadata);
    const a = await submitOnce({ campaign: 'c-9', chunk: '5' });
    const b = await submitOnce({ campaign: 'c-9', chunk: '5' });
    expect(b.id).toBe(a.id);
    expect((await submitOnce({ campaign: 'c-9', chunk: '2' })).id).toBe(ids[2]);
    expect(sim.batchesCreated({ campaign: 'c-9' })).toBe(6);
    expect(sim.batchesCreated({ campaign: 'c-9', chunk: '5' })).toBe(1);
    for (const id of [...ids, a.id]) await waitFor(id);
    const s = sim.stats().batches;
    expect(s.byStatus).toEqual({ completed: 6 });
    expect(Object.keys(s.createdByMetadata)).toHaveLength(6);
    expect(s.batches.map((x) => x.id)).toEqual([...ids, a.id]);
  });

  it('is configured over HTTP like the other knobs, and stops its batches on close', async () => {
    const post = (path: string, body: unknown) =>
      fetch(`${base()}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('/sim/batches', { failRate: 2 })).status).toBe(400);
    const res = await post('/sim/batches', { inProgressMs: 5, failRate: 0.25 });
    expect(await res.json()).toEqual({ ...DEFAULT_BATCH_CONFIG, inProgressMs: 5, failRate: 0.25 });

    const other = await startSimServer({ batches: { inProgressMs: 60_000 } });
    const otherClient = new OpenAI({ baseURL: other.url, apiKey: 'none', maxRetries: 0 });
    const file = await otherClient.files.create({
      file: await toFile(Buffer.from(`${line('a', answerBody(0))}\n`), 'one.jsonl'),
      purpose: 'batch',
    });
    await otherClient.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
