/**
 * The training-row filter's scores (migration 016; activities/row-filter.ts): what the dataset
 * export filters by, the stage's figures, and the audit.
 */
import { sql } from 'kysely';
import type { Db } from '../db/connection';

/** Every scored row of a stage iteration: question → row → score (null: unparseable). */
export async function rowScores(
  db: Db,
  campaignId: string,
  stage: string,
  iteration: number,
): Promise<Map<string, Map<number, number | null>>> {
  const out = new Map<string, Map<number, number | null>>();
  const rows = db
    .selectFrom('row_scores')
    .select(['question_id', 'row', 'score'])
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', stage)
    .where('iteration', '=', iteration)
    .stream(1000);
  for await (const r of rows) {
    const q = out.get(r.question_id) ?? new Map<number, number | null>();
    q.set(r.row, r.score);
    out.set(r.question_id, q);
  }
  return out;
}

/** How many rows were scored, and how many fell below `minScore` or never got a score. */
export async function rowFilterFigures(
  db: Db,
  campaignId: string,
  stage: string,
  iteration: number,
  minScore: number,
): Promise<Record<string, number>> {
  const row = await db
    .selectFrom('row_scores')
    .select([
      sql<number>`count(*)::int`.as('scored'),
      sql<number>`count(*) filter (where score < ${minScore})::int`.as('below'),
      sql<number>`count(*) filter (where score is null)::int`.as('unparseable'),
    ])
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', stage)
    .where('iteration', '=', iteration)
    .executeTakeFirstOrThrow();
  return { rowsScored: row.scored, rowsBelowMinScore: row.below, rowsUnscoreable: row.unparseable };
}

export interface AuditRowScore {
  row: number;
  scorer: string;
  score: number | null;
  reason: string | null;
  callId: string;
}

/** Every score of a stage (all iterations), by iteration and question: what its audit lines carry. */
export async function auditRowScores(
  db: Db,
  campaignId: string,
  stage: string,
): Promise<Map<string, AuditRowScore[]>> {
  const out = new Map<string, AuditRowScore[]>();
  const rows = db
    .selectFrom('row_scores')
    .select(['iteration', 'question_id', 'row', 'scorer', 'score', 'reason', 'call_id'])
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', stage)
    .orderBy('iteration')
    .orderBy('question_id')
    .orderBy('row')
    .stream(1000);
  for await (const r of rows) {
    const key = auditKey(r.iteration, r.question_id);
    const list = out.get(key) ?? [];
    list.push({ row: r.row, scorer: r.scorer, score: r.score, reason: r.reason, callId: r.call_id });
    out.set(key, list);
  }
  return out;
}

export const auditKey = (iteration: number, questionId: string) => `${iteration}\u0000${questionId}`;
