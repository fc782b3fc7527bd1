/** Questions a stage gave up on, as audit lines: where, why, and the LLM calls made for them. */
import type { Db } from '../db/connection';
import { auditHeader } from './shared';

/** One line per unresolved failed question of the stage (all iterations), after its records. */
export async function* failedAudit(
  db: Db,
  campaignId: string,
  stage: string,
): AsyncGenerator<Record<string, unknown>> {
  const rows = db
    .selectFrom('failed_questions as f')
    .innerJoin('questions as q', (j) =>
      j.onRef('q.campaign_id', '=', 'f.campaign_id').onRef('q.id', '=', 'f.question_id'),
    )
    .select([
      'f.iteration',
      'f.question_id',
      'q.title',
      'q.question',
      'q.reference',
      'f.reason',
      'f.http_status',
      'f.attempts',
      'f.call_ids',
      'f.created_at',
      'f.updated_at',
    ])
    .where('f.campaign_id', '=', campaignId)
    .where('f.stage', '=', stage)
    .where('f.resolved_at', 'is', null)
    .orderBy('f.iteration')
    .orderBy('q.ordinal')
    .stream(500);
  for await (const r of rows) {
    yield {
      ...auditHeader(campaignId, stage, r.iteration, r),
      failed: { reason: r.reason, httpStatus: r.http_status, attempts: r.attempts },
      llmCallIds: r.call_ids,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }
}

/** Unresolved failed questions of one stage iteration. */
export async function failedCount(
  db: Db,
  campaignId: string,
  stage: string,
  iteration: number,
): Promise<number> {
  const rows = await db
    .selectFrom('failed_questions')
    .select('question_id')
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', stage)
    .where('iteration', '=', iteration)
    .where('resolved_at', 'is', null)
    .execute();
  return rows.length;
}
