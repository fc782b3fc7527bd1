/**
 * The shape every stage's batch activity shares: load the batch's questions, leave out those
 * already finished (a retried attempt redoes nothing), work on the rest at once — the endpoint
 * limiters bound the real concurrency — while heartbeating, and report the stage's totals when
 * the workflow asks for them.
 *
 * Failure isolation: a question whose work fails for good (its request rejected 400/413/422,
 * its replies never parsing, transient failures outlasting the activity's attempts) is recorded
 * in `failed_questions` with its reason and calls, and the batch goes on; the stage decides
 * whether too many failed (`maxFailedFraction`). Failures of the endpoint itself (401/403/404,
 * configuration) are nobody's question: they still abort the batch and fail fast. Unknown errors
 * are retried with the activity, then give the question up like exhausted transient failures.
 *
 * Halts: once the budget is reached or an endpoint has been down for `outage.pauseAfter`, no
 * question can go on; the batch lets the calls in flight finish and returns `halted`, and the
 * stage pauses. The questions left are done when the batch runs again after the resume.
 */
import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';
import { sql } from 'kysely';
import { isConnectionLoss, isDataException, isTransactionConflict, type Db } from '../core/db/connection';
import type { QuestionRow } from '../core/db/types';
import { BudgetReachedError } from '../core/llm/budget-guard';
import { EndpointOutageError } from '../core/llm/endpoint-health';
import { LlmFatalError, LlmTransientError, type LlmCallScope } from '../core/llm/gateway';
import { BatchDeferredError } from '../core/llm/provider-batches';
import { scrubSecrets } from '../core/secrets';
import { DEFAULT_MAX_FAILED_FRACTION } from '../stages/options';
import type { BatchHalt, BatchInput, BatchResult, StageName } from '../workflows/types';
import { watchDrain } from './batch-drain';
import { runWithHeartbeat, settleAll } from './heartbeat';
import { loadBatchQuestions, stageSplit, stageTotals } from './stage-runs';

/** What one question's work adds to the batch's result (`processed` is counted for it). */
export interface BatchCounts {
  created: number;
  skipped: number;
}

export interface QuestionBatch {
  stage: StageName;
  /** The stage's `maxFailedFraction` (spec); the default when unset. */
  maxFailedFraction: number | undefined;
  /** The questions of the batch that still need work. */
  pending(questions: QuestionRow[]): Promise<QuestionRow[]>;
  work(q: QuestionRow, scope: LlmCallScope, counts: BatchCounts): Promise<void>;
}

/** Thrown by a stage's work when one question cannot be done (e.g. replies that never parse). */
export class QuestionFailedError extends Error {
  override name = 'QuestionFailedError';
}

/**
 * A fatal LLM error that is the endpoint's or the configuration's fault, not one prompt's (e.g. a
 * server without beam search answering 400 to every request).
 */
export function llmEndpointError(message: string): LlmFatalError {
  return new LlmFatalError(message, { endpointWide: true });
}

/**
 * From this attempt of the batch activity on, a question whose LLM calls still fail transiently
 * is given up on rather than retried again (earlier attempts retry the activity, so a short
 * outage costs nothing; the finished questions are skipped by the retry).
 */
export const GIVE_UP_TRANSIENT_ATTEMPT = 4;

/** Statuses that blame the request of one question (bad request, too large, unprocessable). */
const QUESTION_REJECTED = new Set([400, 413, 422]);

type Verdict =
  { failed: { reason: string; httpStatus: number | null } } | { halt: BatchHalt } | 'retry' | 'fatal';

/** What one question's failure means for the batch. */
export function classifyQuestionFailure(err: unknown, activityAttempt: number): Verdict {
  if (err instanceof BudgetReachedError) return { halt: { reason: err.message, probe: null } };
  if (err instanceof EndpointOutageError) return { halt: { reason: err.message, probe: err.probe } };
  if (err instanceof QuestionFailedError) return { failed: { reason: err.message, httpStatus: null } };
  if (err instanceof LlmFatalError) {
    const status = err.detail.httpStatus ?? null;
    // 401/403/404 and configuration errors: the endpoint's fault, every question would fail.
    if (err.detail.endpointWide || status === null || !QUESTION_REJECTED.has(status)) return 'fatal';
    return { failed: { reason: err.message, httpStatus: status } };
  }
  // The database away for a moment (a restart, a failover) or a deadlock it broke: not the
  // question's fault, and never a reason to give up on it. The other questions go on, so answers
  // already paid for are logged rather than paid again, and the activity retries.
  if (isConnectionLoss(err) || isTransactionConflict(err)) return 'retry';
  // A value of this question's the database refuses (group statements write it on its own then,
  // so it is this question's alone): the same every time, so given up on at once.
  if (isDataException(err)) {
    return {
      failed: {
        reason: `the database refused this question's data (SQLSTATE ${err.code}): ${scrubSecrets(err.message)}`,
        httpStatus: null,
      },
    };
  }
  if (err instanceof LlmTransientError) {
    if (activityAttempt < GIVE_UP_TRANSIENT_ATTEMPT) return 'retry';
    return {
      failed: {
        reason: `retries exhausted (${activityAttempt} attempts of the batch): ${err.message}`,
        httpStatus: err.httpStatus,
      },
    };
  }
  // Configuration the user must fix, or another failure of our own services: the batch's to handle.
  if (err instanceof Error && err.name === 'UserError') return 'fatal';
  if (isInfrastructureError(err)) return 'fatal';
  // Anything else is unknown: a bounded number of attempts, like a transient failure.
  if (activityAttempt < GIVE_UP_TRANSIENT_ATTEMPT) return 'retry';
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return {
    failed: {
      reason: `unexpected error, ${activityAttempt} attempts of the batch: ${scrubSecrets(message)}`,
      httpStatus: null,
    },
  };
}

/**
 * Errors of the platform's own services (Postgres restarting, a socket reset): not the question's
 * fault; the activity retries until they are back, as it always did.
 */
function isInfrastructureError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' || /Connection terminated|connection (refused|reset)/i.test(err.message);
}

export async function runQuestionBatch(
  db: Db,
  input: BatchInput,
  batch: QuestionBatch,
): Promise<BatchResult> {
  const ctx = Context.current();
  const key = { campaignId: input.campaignId, stage: batch.stage, iteration: input.iteration };
  const questions = input.retryFailed
    ? await loadFailedQuestions(db, key)
    : await loadBatchQuestions(db, input, stageSplit(batch.stage));
  // Questions already given up on are not tried again by a retried attempt (retry-failed does).
  const givenUp = input.retryFailed ? new Set<string>() : await unresolvedFailures(db, key, questions);
  const candidates = questions.filter((q) => !givenUp.has(q.id));
  const todo = candidates.length === 0 ? [] : await batch.pending(candidates);
  const counts = { processed: questions.length - todo.length, created: 0, skipped: 0, deferred: 0 };
  // A transient failure the activity should retry; thrown once the other questions are done.
  let retryLater: unknown = null;
  let halted: BatchHalt | null = null;

  /** Aborted when a pause asks the stage's batches to drain (batch-drain.ts). */
  const drain = new AbortController();
  let drained = false;
  // retry-failed runs outside the stage, which is what pauses (and what submits provider
  // batches: it goes online).
  const watch = input.retryFailed ? null : watchDrain(db, key, drain);

  await runWithHeartbeat(
    ctx,
    () => ({ ...counts }),
    async (controller) => {
      const stop = AbortSignal.any([controller.signal, drain.signal]);
      // Every question waiting for a slot listens on it, as on the controller's (heartbeat.ts).
      setMaxListeners(0, stop);
      const scope: LlmCallScope = {
        ...key,
        signal: controller.signal,
        stop,
        deferToBatch: !input.retryFailed,
      };
      await settleAll(
        todo.map((q) => async () => {
          try {
            await batch.work(q, scope, counts);
          } catch (err) {
            if (controller.signal.aborted) throw err;
            // A call waits for the stage's provider batch: the question goes on once it is answered.
            if (err instanceof BatchDeferredError) {
              counts.deferred++;
              return;
            }
            // Stopped by a pause (or failing while it drains): the question runs again on resume.
            if (drain.signal.aborted) {
              drained = true;
              return;
            }
            const verdict = classifyQuestionFailure(err, ctx.info.attempt);
            if (verdict === 'fatal') throw err;
            if (verdict === 'retry') {
              retryLater ??= err;
              return;
            }
            if ('halt' in verdict) {
              halted ??= verdict.halt;
              return;
            }
            await recordFailure(db, key, q, verdict.failed);
            ctx.log.warn('question failed; the stage goes on without it', {
              questionId: q.id,
              reason: verdict.failed.reason,
            });
            counts.processed++;
            return;
          }
          if (input.retryFailed) await markResolved(db, key, q.id);
          counts.processed++;
        }),
        controller,
      );
    },
  ).finally(() => watch?.stop());
  const maxFailedFraction = batch.maxFailedFraction ?? DEFAULT_MAX_FAILED_FRACTION;
  // The batch runs again whole after the resume: only what it made now is counted.
  if (halted !== null) return { ...counts, failed: 0, maxFailedFraction, stageTotals: null, halted };
  if (drained) return { ...counts, failed: 0, maxFailedFraction, stageTotals: null, halted: null, drained };
  if (retryLater !== null) throw retryLater;

  const failed = (await unresolvedFailures(db, key, questions)).size;
  if (!input.withTotals) return { ...counts, failed, maxFailedFraction, stageTotals: null, halted: null };
  const totals = await stageTotals(db, input.campaignId, batch.stage, input.iteration);
  return {
    ...counts,
    failed,
    maxFailedFraction,
    stageTotals: { records: totals.records, costUsd: totals.costUsd },
    halted: null,
  };
}

interface StageKey {
  campaignId: string;
  stage: StageName;
  iteration: number;
}

/** The questions of a stage iteration given up on and not yet resolved, in file order. */
function loadFailedQuestions(db: Db, key: StageKey): Promise<QuestionRow[]> {
  return db
    .selectFrom('questions')
    .innerJoin('failed_questions as f', (j) =>
      j.onRef('f.campaign_id', '=', 'questions.campaign_id').onRef('f.question_id', '=', 'questions.id'),
    )
    .selectAll('questions')
    .where('questions.campaign_id', '=', key.campaignId)
    .where('questions.split', '=', stageSplit(key.stage))
    .where('f.stage', '=', key.stage)
    .where('f.iteration', '=', key.iteration)
    .where('f.resolved_at', 'is', null)
    .orderBy('questions.ordinal')
    .execute();
}

async function unresolvedFailures(db: Db, key: StageKey, questions: QuestionRow[]): Promise<Set<string>> {
  if (questions.length === 0) return new Set();
  const rows = await db
    .selectFrom('failed_questions')
    .select('question_id')
    .where('campaign_id', '=', key.campaignId)
    .where('stage', '=', key.stage)
    .where('iteration', '=', key.iteration)
    .where('resolved_at', 'is', null)
    .where(
      'question_id',
      'in',
      questions.map((q) => q.id),
    )
    .execute();
  return new Set(rows.map((r) => r.question_id));
}

/**
 * Records a question given up on, with the LLM calls made for it in this stage iteration. The
 * call log has no question column: a call is the question's when its request carries the
 * question's text (as JSON escapes it, the way the request is stored).
 */
async function recordFailure(
  db: Db,
  key: StageKey,
  q: QuestionRow,
  failure: { reason: string; httpStatus: number | null },
): Promise<void> {
  const needle = JSON.stringify(q.question).slice(1, -1);
  const calls = await db
    .selectFrom('llm_calls')
    .select('id')
    .where('campaign_id', '=', key.campaignId)
    .where('stage', '=', key.stage)
    .where('iteration', '=', key.iteration)
    .where(sql<boolean>`position(${needle} in request::text) > 0`)
    .orderBy('id')
    .limit(50)
    .execute();
  const now = new Date();
  await db
    .insertInto('failed_questions')
    .values({
      campaign_id: key.campaignId,
      stage: key.stage,
      iteration: key.iteration,
      question_id: q.id,
      reason: failure.reason,
      http_status: failure.httpStatus,
      call_ids: JSON.stringify(calls.map((c) => String(c.id))),
    })
    .onConflict((oc) =>
      oc.columns(['campaign_id', 'stage', 'iteration', 'question_id']).doUpdateSet((eb) => ({
        reason: eb.ref('excluded.reason'),
        http_status: eb.ref('excluded.http_status'),
        call_ids: eb.ref('excluded.call_ids'),
        attempts: sql<number>`failed_questions.attempts + 1`,
        resolved_at: null,
        updated_at: now,
      })),
    )
    .execute();
}

async function markResolved(db: Db, key: StageKey, questionId: string): Promise<void> {
  await db
    .updateTable('failed_questions')
    .set({ resolved_at: new Date(), updated_at: new Date() })
    .where('campaign_id', '=', key.campaignId)
    .where('stage', '=', key.stage)
    .where('iteration', '=', key.iteration)
    .where('question_id', '=', questionId)
    .execute();
}

/** The questions without a row in a one-row-per-question record table for this iteration. */
export async function withoutRecord(
  db: Db,
  table: 'distill_records' | 'preference_pairs' | 'mcts_records',
  input: BatchInput,
  questions: QuestionRow[],
): Promise<QuestionRow[]> {
  const rows = await db
    .selectFrom(table)
    .select('question_id')
    .where('campaign_id', '=', input.campaignId)
    .where('iteration', '=', input.iteration)
    .where(
      'question_id',
      'in',
      questions.map((q) => q.id),
    )
    .execute();
  const done = new Set(rows.map((r) => r.question_id));
  return questions.filter((q) => !done.has(q.id));
}
