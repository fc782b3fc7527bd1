/**
 * The cost of a call (core/llm/pricing.ts): online and batch prices, cached prompt tokens at the
 * cached-input price, and defaults that leave every existing spec's costs exactly as they were.
 */
import { describe, expect, it } from 'vitest';
import { EndpointSchema } from '../../core/spec';
import { callCost, pricesFor, type Pricing } from '../../core/llm/pricing';

/** The formula every call was billed with before cached and batch prices existed. */
const before = (p: Pricing, promptTokens: number, completionTokens: number) =>
  (promptTokens * p.inputPerMTok + completionTokens * p.outputPerMTok) / 1_000_000;

const GPT4O: Pricing = { inputPerMTok: 2.5, outputPerMTok: 10 };

describe('callCost', () => {
  it('with only input and output prices, is bit for bit the formula of before, cached tokens or not', () => {
    const prices: Pricing[] = [
      GPT4O,
      { inputPerMTok: 0.15, outputPerMTok: 0.6 },
      { inputPerMTok: 0, outputPerMTok: 0 },
    ];
    for (const p of prices) {
      for (const [prompt, cached, completion] of [
        [0, 0, 0],
        [1, 0, 1],
        [1234, 0, 567],
        [4096, 2048, 333],
        [100_003, 99_968, 7],
        [3, null, 5],
      ] as const) {
        // Exactly: a spec that states no cached price must not move a single bill by a rounding.
        expect(
          callCost(p, 'online', { promptTokens: prompt, cachedTokens: cached, completionTokens: completion }),
        ).toBe(before(p, prompt, completion));
      }
    }
    // The default endpoint prices nothing.
    const { pricing } = EndpointSchema.parse({ baseURL: 'http://localhost:8000/v1', model: 'm' });
    expect(
      callCost(pricing, 'online', { promptTokens: 5000, cachedTokens: 4096, completionTokens: 900 }),
    ).toBe(0);
    expect(
      callCost(pricing, 'batch', { promptTokens: 5000, cachedTokens: 4096, completionTokens: 900 }),
    ).toBe(0);
  });

  it('bills cached prompt tokens at the cached price and the rest of the prompt at the input price', () => {
    const p: Pricing = { ...GPT4O, cachedInputPerMTok: 1.25 };
    // 1,000,000 prompt tokens of which 400,000 cached, 100,000 completion tokens.
    const usd = callCost(p, 'online', {
      promptTokens: 1_000_000,
      cachedTokens: 400_000,
      completionTokens: 100_000,
    });
    expect(usd).toBeCloseTo(0.6 * 2.5 + 0.4 * 1.25 + 0.1 * 10, 12);
    // No cached tokens reported (null, undefined, 0): the whole prompt at the input price.
    for (const cachedTokens of [null, undefined, 0]) {
      expect(callCost(p, 'online', { promptTokens: 1000, cachedTokens, completionTokens: 10 })).toBe(
        before(p, 1000, 10),
      );
    }
    // A provider reporting more cached than prompt tokens, or a negative count, is no refund.
    expect(
      callCost(p, 'online', { promptTokens: 1000, cachedTokens: 5000, completionTokens: 0 }),
    ).toBeCloseTo((1000 * 1.25) / 1e6, 15);
    expect(callCost(p, 'online', { promptTokens: 1000, cachedTokens: -7, completionTokens: 0 })).toBe(
      before(p, 1000, 0),
    );
  });

  it("bills a batch at half of every online price by default, or at the spec's batch prices", () => {
    const usage = { promptTokens: 2_000_000, cachedTokens: 1_000_000, completionTokens: 500_000 };
    const online: Pricing = { ...GPT4O, cachedInputPerMTok: 1.25 };
    expect(pricesFor(online, 'batch')).toEqual({
      inputPerMTok: 1.25,
      cachedInputPerMTok: 0.625,
      outputPerMTok: 5,
    });
    expect(callCost(online, 'batch', usage)).toBeCloseTo(callCost(online, 'online', usage) / 2, 12);
    // Without a cached price, the batch's cached tokens cost the batch input price.
    expect(pricesFor(GPT4O, 'batch')).toEqual({
      inputPerMTok: 1.25,
      cachedInputPerMTok: 1.25,
      outputPerMTok: 5,
    });

    const stated: Pricing = {
      ...online,
      batch: { inputPerMTok: 1, outputPerMTok: 4, cachedInputPerMTok: 0.5 },
    };
    expect(callCost(stated, 'batch', usage)).toBeCloseTo(1 * 1 + 1 * 0.5 + 0.5 * 4, 12);
    // The batch prices leave the online ones alone.
    expect(callCost(stated, 'online', usage)).toBe(callCost(online, 'online', usage));
    // A stated batch without a cached price: its cached tokens at the batch input price.
    const noCached: Pricing = { ...online, batch: { inputPerMTok: 1, outputPerMTok: 4 } };
    expect(pricesFor(noCached, 'batch')).toEqual({
      inputPerMTok: 1,
      cachedInputPerMTok: 1,
      outputPerMTok: 4,
    });
  });
});
