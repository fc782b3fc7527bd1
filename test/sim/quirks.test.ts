/**
 * The simulator plays real providers' quirks per served model name (infra/sim/quirks.ts): the
 * request parameters they refuse, with the errors they answer, and the schema-in-prompt
 * convention for endpoints without json_schema. Over real HTTP through the openai client the
 * platform uses; the models and the refusals are simulations.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { BadRequestError } from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ModelQuirks, QuirksByModel, SimServer } from '../../infra/sim/server';
import { requestHash, startSimServer } from '../../infra/sim/server';
import { hasLoneSurrogate } from '../../core/db/storable-text';

const PENDING = {
  question: 'My pod stays in Pending state forever after I apply the deployment. What should I check?',
  reference:
    'A pod stays Pending when the scheduler cannot place it on any node. Run kubectl describe pod and read the Events: insufficient CPU or memory, unsatisfied node selectors or affinity, untolerated taints, or an unbound PersistentVolumeClaim are the usual causes. Fix the constraint (lower requests, add nodes, add a toleration, or provision the volume) and the scheduler will place the pod.',
};
const WEAK = 'Check the events of the pod with kubectl describe pod; maybe the cluster is out of CPU.';

type ChatParams = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
/** Fields the openai client's types do not have (vLLM's), or values it would not let through. */
type ExtraParams = Omit<ChatParams, 'reasoning_effort'> & {
  guided_json?: Record<string, unknown>;
  reasoning_effort?: string;
};

const JUDGMENT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['winner', 'explanation'],
  properties: {
    winner: { type: 'string', enum: ['A', 'B', 'tie'] },
    explanation: { type: 'string' },
  },
};
const SHORT_ANSWER_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['answer'],
  properties: { answer: { type: 'string' } },
};

/** The platform's schema-in-prompt convention (core/llm/request-shape.ts `schemaInPrompt`). */
const marker = (name: string, schema: Record<string, unknown>) =>
  `\n\nReply with only a JSON object conforming to the JSON Schema "${name}":\n${JSON.stringify(schema)}`;

// The answer under judgment comes last, so a marker left in the prompt would be read as part of
// answer B and change the judgment: equal replies show the marker is cut before the task is read.
const JUDGE_PROMPT = `Question:\n${PENDING.question}\n\nAnswer A:\n${PENDING.reference}\n\nAnswer B:\n${WEAK}`;
const SHORT_PROMPT = `Question:\n${PENDING.question}`;

const dir = mkdtempSync(join(tmpdir(), 'meteor-sim-quirks-'));
const knowledgeFile = join(dir, 'knowledge.jsonl');
writeFileSync(knowledgeFile, JSON.stringify(PENDING) + '\n');

/** sim-strong plays an OpenAI reasoning model, sim-judge a server without json_schema. */
const START_QUIRKS: QuirksByModel = {
  'sim-strong': { refuseTemperature: true, requireMaxCompletionTokens: true },
  'sim-judge': { noJsonSchema: true },
};

let sim: SimServer;
let client: OpenAI;

beforeAll(async () => {
  sim = await startSimServer({ knowledgeFiles: [knowledgeFile], quirks: START_QUIRKS });
  client = new OpenAI({ baseURL: sim.url, apiKey: 'unused', maxRetries: 0, timeout: 5000 });
});
afterAll(async () => {
  await sim?.close();
});
beforeEach(() => {
  sim.reset();
});

const create = (body: ExtraParams) => client.chat.completions.create(body as ChatParams);
const content = (r: OpenAI.Chat.ChatCompletion) => r.choices[0]?.message.content ?? '';
const user = (text: string): ChatParams['messages'] => [{ role: 'user', content: text }];

/** The error the openai client surfaces for a request the simulator refuses. */
async function refusal(body: ExtraParams): Promise<BadRequestError> {
  const err: unknown = await create(body).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BadRequestError);
  return err as BadRequestError;
}

/** The reply to the same prompt as a json_schema request, from a model without quirks. */
async function jsonSchemaReply(prompt: string, name: string, schema: Record<string, unknown>) {
  return content(
    await create({
      model: 'sim-weak-8b',
      messages: user(prompt),
      temperature: 0,
      response_format: { type: 'json_schema', json_schema: { name, strict: true, schema } },
    }),
  );
}

describe('simulated provider quirks', () => {
  it('refuses a temperature other than 1, as OpenAI reasoning models do', async () => {
    for (const temperature of [0, 0.7]) {
      const err = await refusal({ model: 'sim-strong', messages: user(PENDING.question), temperature });
      expect(err.status).toBe(400);
      expect(err.param).toBe('temperature');
      expect(err.code).toBe('unsupported_value');
      expect(err.type).toBe('invalid_request_error');
      expect(err.message).toContain(
        `Unsupported value: 'temperature' does not support ${temperature} with this model. ` +
          'Only the default (1) value is supported.',
      );
      expect(err.message).toContain('(simulated rejection)');
    }
    // Without temperature, or with the default, it answers.
    const plain = await create({ model: 'sim-strong', messages: user(PENDING.question) });
    expect(content(plain)).toContain('scheduler cannot place');
    await create({ model: 'sim-strong', messages: user(PENDING.question), temperature: 1 });
    // A model without quirks takes any temperature, as before.
    await create({ model: 'sim-weak-8b', messages: user(PENDING.question), temperature: 0 });
    const recent = sim.stats().recent.map((r) => [r.model, r.status]);
    expect(recent).toEqual([
      ['sim-strong', 400],
      ['sim-strong', 400],
      ['sim-strong', 200],
      ['sim-strong', 200],
      ['sim-weak-8b', 200],
    ]);
  });

  it('refuses max_tokens where max_completion_tokens is required, and takes max_completion_tokens', async () => {
    const err = await refusal({ model: 'sim-strong', messages: user(PENDING.question), max_tokens: 5 });
    expect(err.status).toBe(400);
    expect(err.param).toBe('max_tokens');
    expect(err.code).toBe('unsupported_parameter');
    expect(err.message).toContain(
      "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
    );
    // max_completion_tokens cuts the text as max_tokens does on a model without the quirk.
    const cut = await create({
      model: 'sim-strong',
      messages: user(PENDING.question),
      max_completion_tokens: 5,
      reasoning_effort: 'low',
    });
    const same = await create({ model: 'sim-judge', messages: user(PENDING.question), max_tokens: 5 });
    expect(cut.choices[0]?.finish_reason).toBe('length');
    expect(content(cut)).toBe(content(same));
    expect(content(cut).length).toBe(20);
    expect(sim.stats().recent.at(-2)).toMatchObject({
      max_completion_tokens: 5,
      reasoning_effort: 'low',
      status: 200,
    });
  });

  it('takes reasoning_effort on every model, and refuses an unknown effort naming the parameter', async () => {
    for (const effort of ['minimal', 'low', 'medium', 'high'])
      await create({ model: 'sim-weak-8b', messages: user(PENDING.question), reasoning_effort: effort });
    const err = await refusal({
      model: 'sim-weak-8b',
      messages: user(PENDING.question),
      reasoning_effort: 'extreme',
    });
    expect(err.status).toBe(400);
    expect(err.param).toBe('reasoning_effort');
  });

  it('refuses json_schema where it is not supported; json_object, guided_json and the prompt carry the schema', async () => {
    const expected = await jsonSchemaReply(JUDGE_PROMPT, 'pairwise_judgment', JUDGMENT_SCHEMA);
    const judgment = JSON.parse(expected) as { winner: string };
    expect(judgment.winner).toBe('A');

    const err = await refusal({
      model: 'sim-judge',
      messages: user(JUDGE_PROMPT),
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'pairwise_judgment', strict: true, schema: JUDGMENT_SCHEMA },
      },
    });
    expect(err.status).toBe(400);
    expect(err.param).toBe('response_format');
    expect(err.code).toBeNull();
    expect(err.message).toContain(
      "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
    );

    const messages = user(JUDGE_PROMPT + marker('pairwise_judgment', JUDGMENT_SCHEMA));
    const replies = [
      await create({ model: 'sim-judge', messages, response_format: { type: 'json_object' } }),
      await create({ model: 'sim-judge', messages, guided_json: JUDGMENT_SCHEMA }),
      await create({ model: 'sim-judge', messages }),
    ].map(content);
    for (const reply of replies) {
      expect(reply).toBe(expected);
      expect(JSON.parse(reply)).toEqual(judgment);
    }
    expect(sim.stats().recent.map((r) => [r.responseFormat, r.task, r.status])).toEqual([
      ['json_schema:pairwise_judgment', 'judge', 200],
      ['json_schema:pairwise_judgment', 'invalid', 400],
      ['json_object:pairwise_judgment', 'judge', 200],
      ['guided_json:pairwise_judgment', 'judge', 200],
      ['prompt:pairwise_judgment', 'judge', 200],
    ]);
  });

  it('reads the question without the marker, whatever the schema is named', async () => {
    const expected = await jsonSchemaReply(SHORT_PROMPT, 'short_answer', SHORT_ANSWER_SCHEMA);
    const withMarker = await create({
      model: 'sim-weak-8b',
      messages: user(SHORT_PROMPT + marker('short_answer', SHORT_ANSWER_SCHEMA)),
      temperature: 0,
      response_format: { type: 'json_object' },
    });
    expect(content(withMarker)).toBe(expected);
    expect(Object.keys(JSON.parse(content(withMarker)) as object)).toEqual(['answer']);
    // No user message to append the marker to: the platform sends it as the user message.
    const alone = await create({
      model: 'sim-weak-8b',
      messages: [
        { role: 'system', content: 'You are an expert in Kubernetes operations.' },
        { role: 'user', content: marker('short_answer', SHORT_ANSWER_SCHEMA).trimStart() },
      ],
    });
    expect(Object.keys(JSON.parse(content(alone)) as object)).toEqual(['answer']);
    expect(sim.stats().recent.at(-1)?.responseFormat).toBe('prompt:short_answer');
  });

  it('malforms replies to a schema in the prompt by its name, as json_schema ones', async () => {
    sim.setBehaviour({ malformedRate: { pairwise_judgment: 1 } });
    try {
      const messages = user(JUDGE_PROMPT + marker('pairwise_judgment', JUDGMENT_SCHEMA));
      const bad = content(
        await create({ model: 'sim-judge', messages, response_format: { type: 'json_object' } }),
      );
      expect(() => JSON.parse(bad) as unknown).toThrow();
      expect(sim.stats().malformed).toEqual({ pairwise_judgment: 1 });
    } finally {
      sim.setBehaviour({ malformedRate: { pairwise_judgment: 0 } });
    }
  });

  it('refuses guided_json on a server without guided decoding', async () => {
    sim.setQuirks('sim-weak-8b', { noGuidedJson: true });
    const messages = user(JUDGE_PROMPT + marker('pairwise_judgment', JUDGMENT_SCHEMA));
    const err = await refusal({ model: 'sim-weak-8b', messages, guided_json: JUDGMENT_SCHEMA });
    expect(err.status).toBe(400);
    expect(err.param).toBe('guided_json');
    // json_schema and json_object are still taken.
    await create({ model: 'sim-weak-8b', messages, response_format: { type: 'json_object' } });
  });

  it('writes a U+0000 after the first word of plain-text replies only, with nulInReply', async () => {
    sim.setQuirks('sim-weak-8b', { nulInReply: true });
    try {
      const plain = await create({ model: 'sim-weak-8b', messages: user(PENDING.question), temperature: 0 });
      const content = plain.choices[0]?.message.content ?? '';
      const firstSpace = content.indexOf(' ');
      expect(firstSpace).toBeGreaterThan(1);
      expect(content.indexOf('\u0000')).toBe(firstSpace - 1);
      // A structured reply stays valid JSON.
      const messages = user(JUDGE_PROMPT + marker('pairwise_judgment', JUDGMENT_SCHEMA));
      const judged = await create({
        model: 'sim-weak-8b',
        messages,
        response_format: { type: 'json_object' },
      });
      const text = judged.choices[0]?.message.content ?? '';
      expect(text).not.toContain('\u0000');
      expect(() => JSON.parse(text) as unknown).not.toThrow();
    } finally {
      sim.setQuirks('sim-weak-8b', null);
    }
  });

  it('writes half a surrogate pair after the first word of plain-text replies, with loneSurrogateInReply', async () => {
    sim.setQuirks('sim-weak-8b', { loneSurrogateInReply: true });
    try {
      const plain = await create({ model: 'sim-weak-8b', messages: user(PENDING.question), temperature: 0 });
      const content = plain.choices[0]?.message.content ?? '';
      const firstSpace = content.indexOf(' ');
      expect(firstSpace).toBeGreaterThan(1);
      // Sent as the JSON escape \ud800 (JSON.stringify's), read back as a lone surrogate.
      expect(content.charCodeAt(firstSpace - 1)).toBe(0xd800);
      expect(hasLoneSurrogate(content)).toBe(true);
    } finally {
      sim.setQuirks('sim-weak-8b', null);
    }
  });

  it('changes quirks at run time (setQuirks, POST /sim/quirks); reset() goes back to those at start', async () => {
    const body = { model: 'sim-weak-8b', messages: user(PENDING.question), temperature: 0 };
    const quirks: ModelQuirks = { refuseTemperature: true };
    expect(sim.setQuirks('sim-weak-8b', quirks)).toEqual({ ...START_QUIRKS, 'sim-weak-8b': quirks });
    await refusal(body);
    sim.setQuirks('sim-weak-8b', null);
    await create(body);

    // The same over HTTP.
    const control = sim.url.replace(/\/v1$/, '/sim/quirks');
    const post = (b: unknown) =>
      fetch(control, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(b),
      });
    const res = await post({ model: 'sim-weak-8b', quirks: { requireMaxCompletionTokens: true } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      ...START_QUIRKS,
      'sim-weak-8b': { requireMaxCompletionTokens: true },
    });
    expect((await refusal({ ...body, max_tokens: 3 })).param).toBe('max_tokens');
    expect((await post({ model: 'sim-weak-8b', quirks: { noSuchQuirk: true } })).status).toBe(400);
    expect(await (await fetch(control)).json()).toEqual({
      ...START_QUIRKS,
      'sim-weak-8b': { requireMaxCompletionTokens: true },
    });

    // reset() drops what was set at run time and restores what the server was started with.
    sim.setQuirks('sim-strong', null);
    await create({ ...body, model: 'sim-strong' });
    sim.reset();
    await create({ ...body, max_tokens: 3 });
    await refusal({ ...body, model: 'sim-strong' });
    expect(await (await fetch(control)).json()).toEqual(START_QUIRKS);
  });

  it('tells requests apart by the new fields in their hashes', async () => {
    const base = { model: 'sim-weak-8b', messages: user(PENDING.question) };
    const bodies: ExtraParams[] = [
      base,
      { ...base, max_tokens: 50 },
      { ...base, max_completion_tokens: 50 },
      { ...base, reasoning_effort: 'low' },
      { ...base, guided_json: SHORT_ANSWER_SCHEMA },
    ];
    for (const b of bodies) await create(b);
    await create({ ...base, max_completion_tokens: 50 });
    const hashes = bodies.map(requestHash);
    expect(new Set(hashes).size).toBe(bodies.length);
    const counts = sim.stats().requestCounts;
    expect(Object.keys(counts).sort()).toEqual([...hashes].sort());
    expect(sim.paidTwice()).toEqual([
      { hash: requestHash({ ...base, max_completion_tokens: 50 }), served: 2 },
    ]);
  });
});
