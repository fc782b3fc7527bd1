/**
 * Stage 3 records, streamed: the preference examples it trains on, its figures and its audit lines
 * (an rstar pair's with its candidates, the discriminator's checks and the chosen trajectory).
 */
import { sql } from 'kysely';
import type { Db } from '../../core/db/connection';
import { auditHeader, iterationRowCount } from '../../core/records/shared';
import type { PreferenceExample } from '../../core/dataset-formats';
import type { FromQuestion } from '../stage';
import { renderQuestion, sftSystemPrompt } from '../../core/prompts';

/** One candidate trajectory of an rstar pair, as its audit line shows it. */
interface RStarCandidateLine {
  nodeId: number;
  answer: string;
  score: number;
  cut: number;
  steps: number;
  discriminatorAnswer: string | null;
  consistent: boolean;
  discriminatorCallId: string;
}

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
      'p.chosen_path',
      'p.chosen_call_ids',
      // An rstar pair's candidates (migration 015), in node order; [] for the other methods.
      sql<RStarCandidateLine[]>`(select coalesce(jsonb_agg(jsonb_build_object(
          'nodeId', c.node_id, 'answer', c.answer, 'score', c.score, 'cut', c.cut, 'steps', c.steps,
          'discriminatorAnswer', c.discriminator_answer, 'consistent', c.consistent,
          'discriminatorCallId', c.discriminator_call_id::text) order by c.node_id), '[]'::jsonb)
        from rstar_candidates c where c.campaign_id = p.campaign_id and c.iteration = p.iteration
          and c.question_id = p.question_id)`.as('rstar_candidates'),
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
  questionIds?: readonly string[],
): AsyncGenerator<FromQuestion<PreferenceExample>> {
  let rows = contrastRows(db, campaignId, iteration).where('p.kept', '=', true);
  if (questionIds) rows = rows.where('p.question_id', 'in', questionIds.length > 0 ? questionIds : ['']);
  for await (const r of rows.stream(500)) {
    yield {
      questionId: r.question_id,
      system: sftSystemPrompt(domain),
      user: renderQuestion(r),
      chosen: r.chosen,
      rejected: r.rejected,
    };
  }
}

/**
 * One JSON object per pair (kept or dropped), with the ids of the LLM calls that made it. An rstar
 * pair adds `rstar` (candidate and consistent counts, the chosen trajectory's node path, each
 * candidate's discriminator check) and the discriminator's and the trajectory's call ids.
 */
export async function* contrastAudit(db: Db, campaignId: string): AsyncGenerator<Record<string, unknown>> {
  for await (const r of contrastRows(db, campaignId).stream(500)) {
    const rstar = r.method === 'rstar';
    const candidates = r.rstar_candidates;
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
      ...(rstar
        ? {
            rstar: {
              candidates: candidates.length,
              consistent: candidates.filter((c) => c.consistent).length,
              chosenPath: r.chosen_path,
              checks: candidates,
            },
          }
        : {}),
      llmCallIds: {
        greedy: r.greedy_call_id,
        high: r.high_call_id,
        critiques: r.critique_call_ids,
        ...(rstar
          ? {
              trajectory: r.chosen_call_ids ?? [],
              discriminator: [...new Set(candidates.map((c) => c.discriminatorCallId))],
            }
          : {}),
      },
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
 * a length gap between chosen and rejected is worth watching. With rstar, also its candidates, the
 * share of them the discriminator found consistent, and the pairs dropped for having none.
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
    ...(await rstarMetrics(db, campaignId, iteration)),
  };
}

/** rStar's figures of one iteration; none when it ran no rstar decode. */
async function rstarMetrics(db: Db, campaignId: string, iteration: number): Promise<Record<string, number>> {
  const [pairs, candidates] = await Promise.all([
    db
      .selectFrom('preference_pairs')
      .select([
        sql<number>`count(*)::int`.as('pairs'),
        sql<number>`count(*) filter (where drop_reason = 'no-consistent-trajectory')::int`.as('none'),
      ])
      .where('campaign_id', '=', campaignId)
      .where('iteration', '=', iteration)
      .where('method', '=', 'rstar')
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('rstar_candidates')
      .select([
        sql<number>`count(*)::int`.as('candidates'),
        sql<number>`count(*) filter (where consistent)::int`.as('consistent'),
      ])
      .where('campaign_id', '=', campaignId)
      .where('iteration', '=', iteration)
      .executeTakeFirstOrThrow(),
  ]);
  if (pairs.pairs === 0) return {};
  return {
    droppedNoConsistent: pairs.none,
    rstarCandidates: candidates.candidates,
    rstarConsistent: candidates.consistent,
    consistentShare: candidates.candidates === 0 ? 0 : candidates.consistent / candidates.candidates,
  };
}
