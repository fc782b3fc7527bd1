import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { classifyLlmError, parseRetryAfter } from '../../core/llm/errors';

const ep = { role: 'strong', baseURL: 'http://llm.example/v1', model: 'gpt-x', apiKeyEnv: 'STRONG_KEY' };
const headers = (h: Record<string, string> = {}) => new Headers(h);

describe('classifyLlmError', () => {
  it('retries rate limits and server errors, honouring Retry-After', () => {
    const rate = classifyLlmError(
      OpenAI.APIError.generate(
        429,
        { error: { message: 'slow down' } },
        undefined,
        headers({ 'retry-after': '7' }),
      ),
      ep,
    );
    expect(rate).toMatchObject({ retryable: true, httpStatus: 429, retryAfterSec: 7 });
    const server = classifyLlmError(
      OpenAI.APIError.generate(503, { error: { message: 'busy' } }, undefined, headers()),
      ep,
    );
    expect(server).toMatchObject({ retryable: true, httpStatus: 503 });
  });

  it('reads Retry-After as an HTTP date too', () => {
    const at = new Date(Date.now() + 30_000).toUTCString(); // second precision: 29–30 s from now
    const rate = classifyLlmError(
      OpenAI.APIError.generate(
        429,
        { error: { message: 'slow down' } },
        undefined,
        headers({ 'retry-after': at }),
      ),
      ep,
    );
    expect(rate.retryAfterSec).toBeGreaterThan(28);
    expect(rate.retryAfterSec).toBeLessThanOrEqual(30);
  });

  it('retries timeouts and connection failures', () => {
    expect(classifyLlmError(new OpenAI.APIConnectionTimeoutError(), ep).retryable).toBe(true);
    expect(classifyLlmError(new OpenAI.APIConnectionError({ message: 'ECONNREFUSED' }), ep).retryable).toBe(
      true,
    );
  });

  it('fails fast on a bad key, naming the variable to fix', () => {
    const c = classifyLlmError(
      OpenAI.APIError.generate(401, { error: { message: 'bad key' } }, undefined, headers()),
      ep,
    );
    expect(c.retryable).toBe(false);
    expect(c.message).toContain('$STRONG_KEY');
    expect(c.message).toContain('strong endpoint http://llm.example/v1');
  });

  it('fails fast on unknown models and invalid requests', () => {
    const notFound = classifyLlmError(
      OpenAI.APIError.generate(404, { error: { message: 'no such model' } }, undefined, headers()),
      ep,
    );
    expect(notFound.retryable).toBe(false);
    expect(notFound.message).toContain('gpt-x');
    const bad = classifyLlmError(
      OpenAI.APIError.generate(400, { error: { message: 'bad field' } }, undefined, headers()),
      ep,
    );
    expect(bad.retryable).toBe(false);
    expect(bad.message).toContain('bad field');
  });

  it('recognises a cancelled request as such, not as a failure to retry', () => {
    expect(classifyLlmError(new OpenAI.APIUserAbortError(), ep)).toMatchObject({
      aborted: true,
      retryable: false,
    });
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  it("takes seconds, an HTTP date, or OpenAI's retry-after-ms", () => {
    expect(parseRetryAfter(headers({ 'retry-after': '120' }), now)).toBe(120);
    expect(parseRetryAfter(headers({ 'retry-after': '1.5' }), now)).toBe(1.5);
    expect(parseRetryAfter(headers({ 'retry-after': 'Sun, 01 Mar 2026 12:00:45 GMT' }), now)).toBe(45);
    expect(parseRetryAfter(headers({ 'retry-after-ms': '250', 'retry-after': '9' }), now)).toBe(0.25);
  });
  it('ignores a missing, invalid, zero or past value', () => {
    expect(parseRetryAfter(headers(), now)).toBeNull();
    expect(parseRetryAfter(headers({ 'retry-after': 'soon' }), now)).toBeNull();
    expect(parseRetryAfter(headers({ 'retry-after': '0' }), now)).toBeNull();
    expect(parseRetryAfter(headers({ 'retry-after': 'Sun, 01 Mar 2026 11:59:00 GMT' }), now)).toBeNull();
  });
});
