/**
 * What a call costs: the one home of the arithmetic behind `llm_calls.cost_usd`, which status,
 * the report and the budget all sum. A call is billed as the provider bills it:
 *  - per mode: `online` (a chat completion) at the endpoint's `pricing`, `batch` (a provider Batch
 *    API) at `pricing.batch` — half of every online price when the spec gives none, OpenAI's and
 *    Anthropic's batch discount;
 *  - the prompt tokens the provider reports as read from its prompt cache (`cached_tokens`) at
 *    `cachedInputPerMTok` (default: the input price — no discount unless the spec states one), the
 *    rest of the prompt at `inputPerMTok`, the completion at `outputPerMTok`.
 * With neither stated, a call costs what it did before both existed:
 * (prompt × input + completion × output) / 10⁶.
 */
import type { EndpointSpec } from '../spec';

/** How a call was sent, and so at which prices it is billed (`llm_calls.billing_mode`). */
export const BILLING_MODES = ['online', 'batch'] as const;
export type BillingMode = (typeof BILLING_MODES)[number];

export type Pricing = EndpointSpec['pricing'];

/** USD per million tokens of each kind, for one mode, defaults applied. */
export interface Prices {
  inputPerMTok: number;
  cachedInputPerMTok: number;
  outputPerMTok: number;
}

/** A call's usage as the provider reported it. */
export interface CallUsage {
  promptTokens: number;
  /** Of the prompt tokens, those read from the provider's prompt cache; null or 0 when none reported. */
  cachedTokens?: number | null;
  completionTokens: number;
}

/** The batch discount the spec's schema promises when `pricing.batch` is not given. */
export const DEFAULT_BATCH_FACTOR = 0.5;

/** The prices a mode bills at, with the spec's defaults filled in. */
export function pricesFor(pricing: Pricing, mode: BillingMode): Prices {
  const online: Prices = {
    inputPerMTok: pricing.inputPerMTok,
    cachedInputPerMTok: pricing.cachedInputPerMTok ?? pricing.inputPerMTok,
    outputPerMTok: pricing.outputPerMTok,
  };
  if (mode === 'online') return online;
  const batch = pricing.batch;
  if (!batch) {
    return {
      inputPerMTok: online.inputPerMTok * DEFAULT_BATCH_FACTOR,
      cachedInputPerMTok: online.cachedInputPerMTok * DEFAULT_BATCH_FACTOR,
      outputPerMTok: online.outputPerMTok * DEFAULT_BATCH_FACTOR,
    };
  }
  return {
    inputPerMTok: batch.inputPerMTok,
    cachedInputPerMTok: batch.cachedInputPerMTok ?? batch.inputPerMTok,
    outputPerMTok: batch.outputPerMTok,
  };
}

/** USD a call costs at `pricing` in `mode`. */
export function callCost(pricing: Pricing, mode: BillingMode, usage: CallUsage): number {
  const prices = pricesFor(pricing, mode);
  // A provider never reports more cached tokens than prompt tokens; a gateway that did must not
  // make the uncached rest negative (a refund).
  const cached = Math.min(Math.max(usage.cachedTokens ?? 0, 0), usage.promptTokens);
  // The cache's discount taken off the whole prompt at the input price: where the cached price is
  // the input price (the default) that is a subtraction of 0, so the result is bit for bit today's
  // (prompt × input + completion × output) / 10⁶.
  const discount = cached * (prices.inputPerMTok - prices.cachedInputPerMTok);
  return (
    (usage.promptTokens * prices.inputPerMTok - discount + usage.completionTokens * prices.outputPerMTok) /
    1_000_000
  );
}
