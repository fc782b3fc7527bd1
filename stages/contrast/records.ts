/** Stage 3 records, streamed: the preference examples it trains on, its figures and its audit lines. */
import { sql } from 'kysely';
import type { Db } from '../../core/db/connection';
import { auditHeader, iterationRowCount } from '../../core/records/shared';
import type { PreferenceExample } from '../../core/dataset-formats';
import { renderQuestion, sftSystemPrompt } from '../../core/prompts';

function contrastRows(db: Db, campaignId: string, iteration?: number) {
  let q = db
    .selectFrom('preference_pairs as p')
    .innerJoin('questions as q', (j) =>
      j.onRef('q.campaign_id', '=', 'p.campaign_id').onRef('q.id', '=', 'p.question_id'),
    )
    .select([
      'p.iteration',
      'p.question_id',
      'q.title',
      'q.question',
      'q.reference',
      'p.model_in',
      'p.method',
      'p.chosen',
      'p.rejected',
      'p.similarity',
      'p.kept',
      'p.drop_reason',
      'p.critique_agrees',
      'p.greedy_call_id',
      'p.high_call_id',
      'p.critique_call_ids',
      'p.created_at',
    ])
    .where('p.campaign_id', '=', campaignId)
    .orderBy('p.iteration')
    .orderBy('q.ordinal');
  if (iteration !== undefined) q = q.where('p.iteration', '=', iteration);
  return q;
}

/** The kept pairs of one iteration: chosen = high-compute output, rejected = greedy output. */
export async function* contrastPreferenceExamples(
  db: Db,
  campaignId: string,
  domain: string,
  iteration: number,
): AsyncGenerator<PreferenceExample> {
  const rows = contrastRows(db, campaignId, iteration).where('p.kept', '=', true);
  for await (const r of rows.stream(500)) {
    yield {
      system: sftSystemPrompt(domain),
      user: renderQuestion(r),
      chosen: r.chosen,
      rejected: r.rejected,
    };
  }
}

/** One JSON object per pair (kept or dropped), with the ids of the LLM calls that made it. */
export async function* contrastAudit(db: Db, campaignId: string): AsyncGenerator<Record<string, unknown>> {
  for await (const r of contrastRows(db, campaignId).stream(500)) {
    yield {
      ...auditHeader(campaignId, 'contrast', r.iteration, r),
      modelIn: r.model_in,
      method: r.method,
      chosen: r.chosen,
      rejected: r.rejected,
      similarity: r.similarity,
      kept: r.kept,
      dropReason: r.drop_reason,
      critiqueAgrees: r.critique_agrees,
      llmCallIds: { greedy: r.greedy_call_id, high: r.high_call_id, critiques: r.critique_call_ids },
      createdAt: r.created_at,
    };
  }
}

/** Pairs of one iteration, kept or dropped. */
export async function contrastRecordCount(db: Db, campaignId: string, iteration: number): Promise<number> {
  return iterationRowCount(db, 'preference_pairs', campaignId, iteration);
}

/**
 * Figures of one iteration: pair counts by outcome, the mean similarity of all pairs, and the
 * mean lengths (characters) of the kept pairs' outputs — the data the fine-tune trains on, where
 * a length gap between chosen and rejected is worth watching.
 */
export async function contrastMetrics(
  db: Db,
  campaignId: string,
  iteration: number,
): Promise<Record<string, number>> {
  const row = await db
    .selectFrom('preference_pairs')
    .select([
      sql<number>`count(*)::int`.as('pairs'),
      sql<number>`count(*) filter (where kept)::int`.as('kept'),
      sql<number>`count(*) filter (where drop_reason = 'near-identical')::int`.as('near'),
      sql<number>`count(*) filter (where drop_reason like 'critique-%')::int`.as('critique'),
      sql<number>`coalesce(avg(similarity), 0)::float8`.as('similarity'),
      sql<number>`coalesce(avg(length(chosen)) filter (where kept), 0)::float8`.as('chosenLength'),
      sql<number>`coalesce(avg(length(rejected)) filter (where kept), 0)::float8`.as('rejectedLength'),
    ])
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', iteration)
    .executeTakeFirstOrThrow();
  return {
    pairs: row.pairs,
    kept: row.kept,
    droppedNearIdentical: row.near,
    droppedCritique: row.critique,
    meanSimilarity: row.similarity,
    meanChosenLength: row.chosenLength,
    meanRejectedLength: row.rejectedLength,
  };
}
