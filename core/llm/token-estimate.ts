/**
 * Tokens a request will use, estimated before it is sent (for tokens-per-minute limits): the
 * prompt at ~4 characters a token, plus `max_tokens` or `max_completion_tokens` (512 when unset) for each sequence the
 * server generates — `n` of them, or `best_of` when larger (a beam-10 request costs ~10 answers).
 */
export interface EstimatedRequest {
  messages: unknown;
  max_tokens?: number | undefined;
  max_completion_tokens?: number | undefined;
  n?: number | undefined;
  [extra: string]: unknown;
}

export const DEFAULT_COMPLETION_TOKENS = 512;

export function estimateRequestTokens(body: EstimatedRequest): number {
  const prompt = Math.ceil(JSON.stringify(body.messages).length / 4);
  const bestOf = typeof body['best_of'] === 'number' ? body['best_of'] : 1;
  const sequences = Math.max(1, body.n ?? 1, bestOf);
  const limit = body.max_tokens ?? body.max_completion_tokens ?? DEFAULT_COMPLETION_TOKENS;
  return prompt + limit * sequences;
}
