/** What the per-stage record readers share: row counts and the head of every audit line. */
import { sql } from 'kysely';
import type { Db } from '../db/connection';

export async function iterationRowCount(
  db: Db,
  table: 'distill_records' | 'preference_pairs' | 'mcts_records',
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

/** A campaign's evolved questions (task evolution, migration 014): id → the seed it was written from. */
export async function evolvedOrigins(db: Db, campaignId: string): Promise<Map<string, string>> {
  const rows = await db
    .selectFrom('questions')
    .select(['id', 'evolved_from'])
    .where('campaign_id', '=', campaignId)
    .where('origin', '=', 'evolved')
    .execute();
  return new Map(rows.flatMap((r) => (r.evolved_from === null ? [] : [[r.id, r.evolved_from] as const])));
}

/**
 * An audit line about an evolved question gets `synthetic: true` and `evolvedFrom` (the seed's id)
 * in its header, right after the question; other lines are left as they are. Done here, once for
 * every stage's lines, rather than in each stage's query.
 */
export function markSynthetic(
  line: Record<string, unknown>,
  origins: ReadonlyMap<string, string>,
): Record<string, unknown> {
  const from = typeof line.questionId === 'string' ? origins.get(line.questionId) : undefined;
  if (from === undefined) return line;
  const marks = { synthetic: true, evolvedFrom: from };
  if (!('reference' in line)) return { ...line, ...marks };
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(line)) {
    out[key] = value;
    if (key === 'reference') Object.assign(out, marks);
  }
  return out;
}
