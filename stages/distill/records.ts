/** Stage 1 records, streamed: the SFT examples it trains on and its audit lines. */
import { sql } from 'kysely';
import type { Db } from '../../core/db/connection';
import { auditHeader, iterationRowCount } from '../../core/records/shared';
import type { SftExample } from '../../core/dataset-formats';
import type { FromQuestion } from '../stage';
import { renderQuestion, sftSystemPrompt } from '../../core/prompts';

function distillRows(db: Db, campaignId: string, iteration?: number) {
  let q = db
    .selectFrom('distill_records as r')
    .innerJoin('questions as q', (j) =>
      j.onRef('q.campaign_id', '=', 'r.campaign_id').onRef('q.id', '=', 'r.question_id'),
    )
    .select([
      'r.iteration',
      'r.question_id',
      'q.title',
      'q.question',
      'q.reference',
      'r.model_in',
      'r.guideline',
      'r.answer',
      'r.guideline_corrected',
      'r.correction',
      'r.guideline_call_id',
      'r.answer_call_id',
      'r.created_at',
      'r.updated_at',
    ])
    .where('r.campaign_id', '=', campaignId)
    .orderBy('r.iteration')
    .orderBy('q.ordinal');
  if (iteration !== undefined) q = q.where('r.iteration', '=', iteration);
  return q;
}

export async function* distillSftExamples(
  db: Db,
  campaignId: string,
  domain: string,
  iteration: number,
  includeGuideline: boolean,
  questionIds?: readonly string[],
): AsyncGenerator<FromQuestion<SftExample>> {
  let rows = distillRows(db, campaignId, iteration);
  if (questionIds) rows = rows.where('r.question_id', 'in', questionIds.length > 0 ? questionIds : ['']);
  for await (const r of rows.stream(500)) {
    const question = renderQuestion(r);
    yield {
      questionId: r.question_id,
      system: sftSystemPrompt(domain),
      user: includeGuideline ? `${question}\n\nGuideline:\n${r.guideline}` : question,
      assistant: r.answer,
    };
  }
}

/** One JSON object per record, with the ids of the LLM calls that made it. */
export async function* distillAudit(db: Db, campaignId: string): AsyncGenerator<Record<string, unknown>> {
  for await (const r of distillRows(db, campaignId).stream(500)) {
    yield {
      ...auditHeader(campaignId, 'distill', r.iteration, r),
      modelIn: r.model_in,
      guideline: r.guideline,
      answer: r.answer,
      guidelineCorrected: r.guideline_corrected,
      correction: r.correction,
      llmCallIds: { guideline: r.guideline_call_id, answer: r.answer_call_id },
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }
}

export async function distillRecordCount(db: Db, campaignId: string, iteration: number): Promise<number> {
  return iterationRowCount(db, 'distill_records', campaignId, iteration);
}

export async function distillMetrics(
  db: Db,
  campaignId: string,
  iteration: number,
): Promise<Record<string, number>> {
  const row = await db
    .selectFrom('distill_records')
    .select(sql<number>`count(*) filter (where guideline_corrected)::int`.as('n'))
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', iteration)
    .executeTakeFirstOrThrow();
  return { guidelinesCorrected: row.n };
}
