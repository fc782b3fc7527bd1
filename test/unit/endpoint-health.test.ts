/** Which failed attempts count toward an outage (and so toward `outage.pauseAfter`). */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { isOutageFailure } from '../../core/llm/endpoint-health';

const httpError = (status: number) => OpenAI.APIError.generate(status, { message: 'x' }, 'x', new Headers());

describe('isOutageFailure', () => {
  it('counts no connection, timeouts, 5xx, 408 and 429', () => {
    expect(isOutageFailure(new OpenAI.APIConnectionError({ message: 'connect ECONNREFUSED' }))).toBe(true);
    expect(isOutageFailure(new OpenAI.APIConnectionTimeoutError())).toBe(true);
    for (const status of [500, 502, 503, 408, 429]) expect(isOutageFailure(httpError(status))).toBe(true);
  });

  it("does not count a request's own rejection, a cancel or an unknown error", () => {
    for (const status of [400, 401, 404, 422]) expect(isOutageFailure(httpError(status))).toBe(false);
    expect(isOutageFailure(new OpenAI.APIUserAbortError())).toBe(false);
    expect(isOutageFailure(new TypeError('x'))).toBe(false);
  });
});
