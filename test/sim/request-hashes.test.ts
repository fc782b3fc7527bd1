/**
 * The simulator counts chat requests by content (infra/sim/request-hashes.ts), so tests can ask
 * the server itself which identical requests it answered more than once. Over real HTTP through
 * the openai client the platform uses; the models are simulations.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimServer, SimStats } from '../../infra/sim/server';
import { requestHash, startSimServer } from '../../infra/sim/server';

let sim: SimServer;
let client: OpenAI;

beforeAll(async () => {
  sim = await startSimServer({ seed: 7 });
  client = new OpenAI({ baseURL: sim.url, apiKey: 'none', maxRetries: 0 });
});
afterAll(async () => {
  await sim?.close();
});

const ask = (question: string, extra: Record<string, unknown> = {}) =>
  client.chat.completions.create({
    model: 'sim-weak-8b',
    messages: [{ role: 'user', content: question }],
    temperature: 0,
    ...extra,
  });

describe('request hashes', () => {
  it('counts identical requests answered 200, told apart by every field of the body', async () => {
    sim.reset();
    await ask('How do I drain a node?');
    await ask('How do I drain a node?');
    await ask('How do I drain a node?', { n: 2 });
    await ask('How do I drain a node?', { use_beam_search: true, n: 2 } as Record<string, unknown>);
    await ask('How do I cordon a node?');

    const body = {
      model: 'sim-weak-8b',
      messages: [{ role: 'user', content: 'How do I drain a node?' }],
      temperature: 0,
    };
    // Key order does not matter (canonical JSON): what a test rebuilds from llm_calls.request matches.
    const same = requestHash({ temperature: 0, messages: body.messages, model: body.model });
    expect(requestHash(body)).toBe(same);
    const counts = sim.stats().requestCounts;
    expect(Object.keys(counts)).toHaveLength(4);
    expect(counts[same]).toEqual({ requests: 2, served: 2 });
    expect(sim.paidTwice()).toEqual([{ hash: same, served: 2 }]);
    expect(sim.paidTwice(new Set([requestHash({ ...body, n: 2 })]))).toEqual([]);

    // The same figures over HTTP, at the stats endpoint.
    const res = await fetch(sim.url.replace(/\/v1$/, '/sim/stats'));
    const stats = (await res.json()) as SimStats;
    expect(stats.requestCounts).toEqual(counts);
    expect(stats.recent.filter((r) => r.hash === same)).toHaveLength(2);

    sim.reset();
    expect(sim.stats().requestCounts).toEqual({});
  });

  it('does not count a request answered with a fault as paid', async () => {
    sim.reset();
    sim.setFaults({ failRate: 1, faultKinds: ['500'] });
    await expect(ask('Why is my pod Pending?')).rejects.toThrow();
    sim.setFaults({ failRate: 0 });
    await ask('Why is my pod Pending?');
    const hash = requestHash({
      model: 'sim-weak-8b',
      messages: [{ role: 'user', content: 'Why is my pod Pending?' }],
      temperature: 0,
    });
    expect(sim.stats().requestCounts[hash]).toEqual({ requests: 2, served: 1 });
    expect(sim.paidTwice()).toEqual([]);
  });
});
