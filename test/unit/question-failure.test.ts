/**
 * What one question's failure means for its batch: unknown errors get a bounded number of
 * attempts and then give the question up (they used to retry without bound); a budget reached or
 * an endpoint down past `outage.pauseAfter` halts the batch so the stage pauses.
 */
import { describe, expect, it } from 'vitest';
import {
  classifyQuestionFailure,
  GIVE_UP_TRANSIENT_ATTEMPT,
  QuestionFailedError,
} from '../../activities/batch';
import { BudgetReachedError } from '../../core/llm/budget-guard';
import { EndpointOutageError } from '../../core/llm/endpoint-health';
import { LlmFatalError, LlmTransientError } from '../../core/llm/gateway';
import { UserError } from '../../core/errors';

describe('classifyQuestionFailure', () => {
  it('retries an unknown error with the activity, then gives the question up with its reason', () => {
    const err = new TypeError("Cannot read properties of undefined (reading 'choices')");
    for (let attempt = 1; attempt < GIVE_UP_TRANSIENT_ATTEMPT; attempt++) {
      expect(classifyQuestionFailure(err, attempt)).toBe('retry');
    }
    const verdict = classifyQuestionFailure(err, GIVE_UP_TRANSIENT_ATTEMPT);
    expect(verdict).toEqual({
      failed: {
        reason: expect.stringMatching(/^unexpected error, 4 attempts of the batch: TypeError: Cannot read/),
        httpStatus: null,
      },
    });
  });

  it('scrubs key-like text from an unknown error kept as the reason', () => {
    const verdict = classifyQuestionFailure(new Error('proxy said: Bearer sk-abcdefghijklmnopqrstuvwx'), 9);
    expect(JSON.stringify(verdict)).not.toContain('sk-abcdefghijklmnopqrstuvwx');
  });

  it("keeps configuration and endpoint-wide errors the batch's (fatal)", () => {
    expect(classifyQuestionFailure(new UserError('bad spec'), 1)).toBe('fatal');
    expect(classifyQuestionFailure(new LlmFatalError('401', { httpStatus: 401 }), 1)).toBe('fatal');
  });

  it('retries a database restart at any attempt, without blaming the question or stopping the others', () => {
    // 'retry', not 'fatal': the other questions go on (their paid answers get logged), then the
    // activity retries until the database is back; never given up on, whatever the attempt.
    const pgDown = Object.assign(new Error('terminating connection due to administrator command'), {
      code: '57P01',
    });
    expect(classifyQuestionFailure(pgDown, 9)).toBe('retry');
    expect(classifyQuestionFailure(new Error('Connection terminated unexpectedly'), 9)).toBe('retry');
  });

  it("gives a question up at once when the database refuses its data (class 22), keeping the batch's other errors", () => {
    const refused = Object.assign(new Error('invalid input syntax for type json'), { code: '22P02' });
    expect(classifyQuestionFailure(refused, 1)).toEqual({
      failed: {
        reason:
          "the database refused this question's data (SQLSTATE 22P02): invalid input syntax for type json",
        httpStatus: null,
      },
    });
    // Other coded errors of our own services stay the batch's.
    const denied = Object.assign(new Error('permission denied for table llm_calls'), { code: '42501' });
    expect(classifyQuestionFailure(denied, 1)).toBe('fatal');
  });

  it('retries a deadlock PostgreSQL broke without aborting the batch (its paid answers get logged)', () => {
    const deadlock = Object.assign(new Error('deadlock detected'), { code: '40P01' });
    expect(classifyQuestionFailure(deadlock, 1)).toBe('retry');
    expect(classifyQuestionFailure(deadlock, 9)).toBe('retry');
  });

  it('halts the batch for a budget reached or an outage, at any attempt', () => {
    expect(classifyQuestionFailure(new BudgetReachedError('budget reached: $1 of $1'), 9)).toEqual({
      halt: { reason: 'budget reached: $1 of $1', probe: null },
    });
    expect(
      classifyQuestionFailure(new EndpointOutageError('down', { role: 'strong', everyMs: 30_000 }), 1),
    ).toEqual({ halt: { reason: 'down', probe: { role: 'strong', everyMs: 30_000 } } });
  });

  it('gives up transient failures and unparseable replies as before', () => {
    expect(classifyQuestionFailure(new LlmTransientError('503'), 1)).toBe('retry');
    expect(classifyQuestionFailure(new QuestionFailedError('never parsed'), 1)).toEqual({
      failed: { reason: 'never parsed', httpStatus: null },
    });
  });
});
