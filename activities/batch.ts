/**
 * The shape every stage's batch activity shares: load the batch's questions, leave out those
 * already finished (a retried attempt redoes nothing), work on the rest at once — the endpoint
 * limiters bound the real concurrency — while heartbeating, and report the stage's totals when
 * the workflow asks for them.
 */
import { Context } from '@temporalio/activity';
import type { Db } from '../core/db/connection';
import type { QuestionRow } from '../core/db/types';
import type { LlmCallScope } from '../core/llm/gateway';
import type { BatchInput, BatchResult, StageName } from '../workflows/types';
import { runWithHeartbeat, settleAll } from './heartbeat';
import { loadBatchQuestions, stageSplit, stageTotals } from './stage-runs';

/** What one question's work adds to the batch's result (`processed` is counted for it). */
export interface BatchCounts {
  created: number;
  skipped: number;
}

export interface QuestionBatch {
  stage: StageName;
  /** The questions of the batch that still need work. */
  pending(questions: QuestionRow[]): Promise<QuestionRow[]>;
  work(q: QuestionRow, scope: LlmCallScope, counts: BatchCounts): Promise<void>;
}

export async function runQuestionBatch(
  db: Db,
  input: BatchInput,
  batch: QuestionBatch,
): Promise<BatchResult> {
  const ctx = Context.current();
  const questions = await loadBatchQuestions(db, input, stageSplit(batch.stage));
  const todo = questions.length === 0 ? [] : await batch.pending(questions);
  const counts = { processed: questions.length - todo.length, created: 0, skipped: 0 };

  await runWithHeartbeat(
    ctx,
    () => ({ ...counts }),
    async (controller) => {
      const scope: LlmCallScope = {
        campaignId: input.campaignId,
        stage: batch.stage,
        iteration: input.iteration,
        signal: controller.signal,
      };
      await settleAll(
        todo.map((q) => async () => {
          await batch.work(q, scope, counts);
          counts.processed++;
        }),
        controller,
      );
    },
  );

  if (!input.withTotals) return { ...counts, stageTotals: null };
  const totals = await stageTotals(db, input.campaignId, batch.stage, input.iteration);
  return { ...counts, stageTotals: { records: totals.records, costUsd: totals.costUsd } };
}

/** The questions without a row in a one-row-per-question record table for this iteration. */
export async function withoutRecord(
  db: Db,
  table: 'distill_records' | 'preference_pairs',
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
