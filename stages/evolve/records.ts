/**
 * Task evolution's records: one per seed and iteration (`evolved_questions`), whatever became of
 * its rewrite. Its figures and audit lines are read from them; the questions kept are rows of
 * `questions` (origin 'evolved'), which the later stages work on like any other.
 */
import { sql } from 'kysely';
import type { Db } from '../../core/db/connection';
import { auditHeader } from '../../core/records/shared';

export async function evolveRecordCount(db: Db, campaignId: string, iteration: number): Promise<number> {
  const row = await db
    .selectFrom('evolved_questions')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', iteration)
    .executeTakeFirstOrThrow();
  return row.n;
}

/** Kept, rejected (of which near a held-out question) and unparseable rewrites. */
export async function evolveMetrics(
  db: Db,
  campaignId: string,
  iteration: number,
): Promise<Record<string, number>> {
  const row = await db
    .selectFrom('evolved_questions')
    .select([
      sql<number>`count(*) filter (where outcome = 'kept')::int`.as('kept'),
      sql<number>`count(*) filter (where outcome = 'rejected')::int`.as('rejected'),
      sql<number>`count(*) filter (where reason = 'near-held-out')::int`.as('nearHeldOut'),
      sql<number>`count(*) filter (where outcome = 'unparseable')::int`.as('unparseable'),
    ])
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', iteration)
    .executeTakeFirstOrThrow();
  return { ...row };
}

/**
 * One line per seed: the seed as header, the method, what became of the rewrite (and why), the
 * question it was closest to (kept) or too close to (rejected), and the call that wrote it.
 */
export async function* evolveAudit(db: Db, campaignId: string): AsyncGenerator<Record<string, unknown>> {
  const rows = db
    .selectFrom('evolved_questions as e')
    .innerJoin('questions as q', (j) =>
      j.onRef('q.campaign_id', '=', 'e.campaign_id').onRef('q.id', '=', 'e.seed_id'),
    )
    .select([
      'e.iteration',
      'e.seed_id as question_id',
      'q.title',
      'q.question',
      'q.reference',
      'e.method',
      'e.outcome',
      'e.reason',
      'e.question_id as evolved_id',
      'e.title as evolved_title',
      'e.question as evolved_question',
      'e.closest_id',
      'e.similarity',
      'e.call_id',
      'e.created_at',
    ])
    .where('e.campaign_id', '=', campaignId)
    .orderBy('e.iteration')
    .orderBy('q.ordinal')
    .stream(500);
  for await (const r of rows) {
    yield {
      ...auditHeader(campaignId, 'evolve', r.iteration, r),
      method: r.method,
      outcome: r.outcome,
      reason: r.reason,
      evolved:
        r.evolved_question === null
          ? null
          : { questionId: r.evolved_id, title: r.evolved_title, question: r.evolved_question },
      closest: r.closest_id === null ? null : { questionId: r.closest_id, similarity: r.similarity },
      llmCallIds: { evolve: r.call_id },
      createdAt: r.created_at,
    };
  }
}
