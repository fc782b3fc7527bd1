/**
 * `mcts` records, streamed: the SFT examples it trains on (question → reasoning + final answer),
 * its figures and its audit lines. A line carries the record's tree size and the ids of every
 * call its search made, round by round; the tree itself is `meteorctl audit tree` (too large for a
 * line: a few dozen nodes per question at the defaults, more with a larger search).
 */
import { sql } from 'kysely';
import type { Db } from '../../core/db/connection';
import type { SftExample } from '../../core/dataset-formats';
import type { FromQuestion } from '../stage';
import { renderQuestion, sftSystemPrompt } from '../../core/prompts/common';
import { auditHeader, iterationRowCount } from '../../core/records/shared';
import { mctsSftCompletion } from './prompts';

function mctsRows(db: Db, campaignId: string, iteration?: number) {
  let q = db
    .selectFrom('mcts_records as r')
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
      'r.steps',
      'r.answer',
      'r.value',
      'r.reached_gate',
      'r.rounds',
      'r.nodes',
      'r.created_at',
      'r.updated_at',
    ])
    .where('r.campaign_id', '=', campaignId)
    .orderBy('r.iteration')
    .orderBy('q.ordinal');
  if (iteration !== undefined) q = q.where('r.iteration', '=', iteration);
  return q;
}

/**
 * One iteration's training rows: question → the chosen path's reasoning and its final answer
 * (stages/mcts/prompts.ts). A search whose path has no step (the model judged the bare question
 * solved) has nothing to teach and is left out.
 */
export async function* mctsSftExamples(
  db: Db,
  campaignId: string,
  domain: string,
  iteration: number,
  questionIds?: readonly string[],
): AsyncGenerator<FromQuestion<SftExample>> {
  let rows = mctsRows(db, campaignId, iteration).where(sql<boolean>`jsonb_array_length(r.steps) > 0`);
  if (questionIds) rows = rows.where('r.question_id', 'in', questionIds.length > 0 ? questionIds : ['']);
  const system = sftSystemPrompt(domain);
  for await (const r of rows.stream(500)) {
    yield {
      questionId: r.question_id,
      system,
      user: renderQuestion(r),
      assistant: mctsSftCompletion(r.steps, r.answer),
    };
  }
}

/**
 * One JSON object per record (all iterations): the chosen path, its value, the tree's size (as the
 * search counted it, and as saved), and the ids of the LLM calls the search made, in round order.
 */
export async function* mctsAudit(db: Db, campaignId: string): AsyncGenerator<Record<string, unknown>> {
  const rows = mctsRows(db, campaignId).select([
    sql<number>`(select count(*)::int from search_nodes n
      where n.campaign_id = r.campaign_id and n.stage = 'mcts' and n.iteration = r.iteration
        and n.question_id = r.question_id)`.as('saved_nodes'),
    sql<Array<{ round: number; ids: string[] }>>`coalesce((select jsonb_agg(
        jsonb_build_object('round', c.round, 'ids', c.call_ids) order by c.round)
      from mcts_round_calls c
      where c.campaign_id = r.campaign_id and c.iteration = r.iteration
        and c.question_id = r.question_id), '[]'::jsonb)`.as('round_calls'),
  ]);
  for await (const r of rows.stream(500)) {
    yield {
      ...auditHeader(campaignId, 'mcts', r.iteration, r),
      modelIn: r.model_in,
      steps: r.steps,
      answer: r.answer,
      value: r.value,
      reachedGate: r.reached_gate,
      rounds: r.rounds,
      tree: {
        nodes: r.nodes,
        savedNodes: r.saved_nodes,
        show: `meteorctl audit tree ${campaignId} --stage mcts --question ${r.question_id} --iteration ${r.iteration}`,
      },
      // Once each: a request the search repeats (a roll-out's step proposed again when its node is
      // expanded) is answered from the call log, the same call.
      llmCallIds: [...new Set(r.round_calls.flatMap((c) => c.ids))],
      callsPerRound: r.round_calls.map((c) => ({ round: c.round, calls: c.ids.length })),
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }
}

/** Questions of one iteration with a finished search. */
export function mctsRecordCount(db: Db, campaignId: string, iteration: number): Promise<number> {
  return iterationRowCount(db, 'mcts_records', campaignId, iteration);
}

/** Figures of one iteration, kept in `stage_runs.metrics`. */
export async function mctsMetrics(
  db: Db,
  campaignId: string,
  iteration: number,
): Promise<Record<string, number>> {
  const row = await db
    .selectFrom('mcts_records')
    .select([
      sql<number>`count(*)::int`.as('questions'),
      sql<number>`count(*) filter (where reached_gate)::int`.as('reachedGate'),
      sql<number>`count(*) filter (where jsonb_array_length(steps) = 0)::int`.as('emptyPaths'),
      sql<number>`coalesce(avg(value), 0)::float8`.as('meanValue'),
      sql<number>`coalesce(avg(nodes), 0)::float8`.as('meanNodes'),
      sql<number>`coalesce(avg(rounds), 0)::float8`.as('meanRounds'),
      sql<number>`coalesce(avg(jsonb_array_length(steps)), 0)::float8`.as('meanSteps'),
    ])
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', iteration)
    .executeTakeFirstOrThrow();
  return row;
}
