/** What the per-stage record readers share: row counts and the head of every audit line. */
import { sql } from 'kysely';
import type { Db } from '../db/connection';

export async function iterationRowCount(
  db: Db,
  table: 'distill_records' | 'preference_pairs',
  campaignId: string,
  iteration: number,
): Promise<number> {
  const row = await db
    .selectFrom(table)
    .select(sql<number>`count(*)::int`.as('n'))
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', iteration)
    .executeTakeFirstOrThrow();
  return row.n;
}

/** The question columns every audit query selects. */
export interface AuditQuestion {
  question_id: string;
  title: string | null;
  question: string;
  reference: string | null;
}

/** The fields every audit line starts with: where it belongs and the question it is about. */
export function auditHeader(campaignId: string, stage: string, iteration: number, r: AuditQuestion) {
  return {
    campaignId,
    stage,
    iteration,
    questionId: r.question_id,
    title: r.title,
    question: r.question,
    reference: r.reference,
  };
}
