/**
 * The simulator's prompt caching (infra/sim/prompt-cache.ts), over real HTTP through the openai
 * client the platform uses: `usage.prompt_tokens_details.cached_tokens` as OpenAI reports it — the
 * longest beginning already sent for the same model, from 1024 tokens in steps of 128. Simulated.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimServer } from '../../infra/sim/server';
import { startSimServer } from '../../infra/sim/server';

let sim: SimServer;
let client: OpenAI;

beforeAll(async () => {
  sim = await startSimServer({ latencyMs: 50 });
  client = new OpenAI({ baseURL: sim.url, apiKey: 'none', maxRetries: 0 });
});
afterAll(async () => {
  await sim?.close();
});

/** 4,800 characters: 1,200 simulated tokens (characters / 4). */
const RUNBOOK = 'Cluster runbook: check the events first. '.repeat(120).slice(0, 4800);

const ask = (model: string, system: string, question: string) =>
  client.chat.completions.create({
    model,
    messages: [
      { role: 'system', content: system },
      { role: 'user', content: question },
    ],
    temperature: 0,
  });

const cached = (r: OpenAI.Chat.ChatCompletion) => r.usage?.prompt_tokens_details?.cached_tokens;

describe('simulated prompt caching', () => {
  it('reports 0 cached tokens under 1024 prompt tokens, however often the prompt is sent', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await ask('sim-weak-8b', 'You are an expert.', 'How do I drain a node?');
      expect(cached(r)).toBe(0);
    }
  });

  it('serves a long shared beginning from the cache after its first request, in 128-token steps, per model', async () => {
    const first = await ask('sim-strong', RUNBOOK, 'Why is my pod Pending?');
    expect(first.usage?.prompt_tokens).toBe(4 + 1200 + 4 + Math.ceil('Why is my pod Pending?'.length / 4));
    expect(cached(first)).toBe(0);
    // Shared: the system message (4 + 1200 tokens) and the user message's header (4): 1208 tokens,
    // so the longest cached step is 1152.
    const second = await ask('sim-strong', RUNBOOK, 'How do I roll back a deployment?');
    expect(cached(second)).toBe(1152);
    // The very same prompt again: every whole step of it.
    const again = await ask('sim-strong', RUNBOOK, 'Why is my pod Pending?');
    expect(cached(again)).toBe(Math.floor((again.usage?.prompt_tokens ?? 0) / 128) * 128);
    // Another model has a cache of its own.
    expect(cached(await ask('sim-judge', RUNBOOK, 'Why is my pod Pending?'))).toBe(0);
  });

  it('misses exactly once among requests in flight together: the first to arrive', async () => {
    const system = `${RUNBOOK.slice(0, 4400)} Concurrent variant.`.padEnd(4800, '.');
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => ask('sim-weak-8b', system, `Question ${i}: why?`)),
    );
    expect(answers.map(cached).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([
      0, 1152, 1152, 1152, 1152, 1152,
    ]);
  });
});
