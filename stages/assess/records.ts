/**
 * Stage 2 records, streamed: the SFT examples it trains on (trajectories that end correct, and
 * optionally the critique examples), its figures and its audit lines. A question's rounds are
 * read in order and grouped here, so nothing holds more than one question's rounds at a time.
 */
import { sql } from 'kysely';
import type { Db } from '../../core/db/connection';
import { auditHeader } from '../../core/records/shared';
import type { AssessRoundsTable } from '../../core/db/types';
import type { SftExample } from '../../core/dataset-formats';
import type { FromQuestion } from '../stage';
import { critiqueExample, renderQuestion, sftSystemPrompt } from '../../core/prompts';
import type { AssessStageSpec } from './options';
import { attemptOutcome, selfCorrectionRates, type TwoAttempts } from '../../core/evaluation/self-correction';

type Verdict = AssessRoundsTable['verdict'];

function roundRows(db: Db, campaignId: string, iteration?: number) {
  let q = db
    .selectFrom('assess_rounds as r')
    .innerJoin('questions as q', (j) =>
      j.onRef('q.campaign_id', '=', 'r.campaign_id').onRef('q.id', '=', 'r.question_id'),
    )
    .select([
      'r.iteration',
      'r.question_id',
      'r.round',
      'q.title',
      'q.question',
      'q.reference',
      'r.model_in',
      'r.answer',
      'r.verdict',
      'r.feedback',
      'r.answer_call_id',
      'r.verdict_call_id',
      'r.verdict_attempts',
      'r.created_at',
    ])
    .where('r.campaign_id', '=', campaignId)
    .orderBy('r.iteration')
    .orderBy('q.ordinal')
    .orderBy('r.round');
  if (iteration !== undefined) q = q.where('r.iteration', '=', iteration);
  return q;
}

/** Groups consecutive rows of the same (iteration, question): the streams are ordered so. */
async function* byQuestion<R extends { iteration: number; question_id: string }>(
  rows: AsyncIterable<R>,
): AsyncGenerator<R[]> {
  let group: R[] = [];
  for await (const r of rows) {
    const head = group[0];
    if (head && (head.iteration !== r.iteration || head.question_id !== r.question_id)) {
      yield group;
      group = [];
    }
    group.push(r);
  }
  if (group.length > 0) yield group;
}

function outcomeOf(rounds: ReadonlyArray<{ verdict: Verdict }>): Verdict {
  return rounds[rounds.length - 1]?.verdict ?? 'unparseable';
}

/**
 * The training examples of one iteration: per question, the critique examples of its parseable
 * verdicts (opts.includeCritiques), then question → final answer when its last round was judged
 * correct. A question never answered correctly is left out, unless opts.unsolved is
 * 'distilled-answer' and Stage 1 kept a strong answer for it.
 */
export async function* assessSftExamples(
  db: Db,
  campaignId: string,
  domain: string,
  iteration: number,
  opts: Pick<AssessStageSpec, 'includeCritiques' | 'unsolved'>,
  questionIds?: readonly string[],
): AsyncGenerator<FromQuestion<SftExample>> {
  const withDistilled = opts.unsolved === 'distilled-answer';
  let rounds = roundRows(db, campaignId, iteration);
  if (questionIds) rounds = rounds.where('r.question_id', 'in', questionIds.length > 0 ? questionIds : ['']);
  const rows = rounds
    .leftJoinLateral(
      (eb) =>
        eb
          .selectFrom('distill_records as d')
          .select('d.answer as distilled_answer')
          .whereRef('d.campaign_id', '=', 'r.campaign_id')
          .whereRef('d.question_id', '=', 'r.question_id')
          // Only the first round's row needs it; the other rounds' rows carry nothing.
          .where(sql<boolean>`${withDistilled} and r.round = 1`)
          .orderBy('d.iteration', 'desc')
          .limit(1)
          .as('d'),
      (j) => j.onTrue(),
    )
    .select('d.distilled_answer');
  const system = sftSystemPrompt(domain);
  for await (const rounds of byQuestion(rows.stream(500))) {
    const first = rounds[0];
    const last = rounds[rounds.length - 1];
    if (!first || !last) continue;
    if (opts.includeCritiques) {
      for (const r of rounds) {
        if (r.verdict === 'unparseable') continue;
        yield {
          questionId: first.question_id,
          ...critiqueExample(domain, first, r.answer, {
            correct: r.verdict === 'correct',
            feedback: r.feedback ?? '',
          }),
        };
      }
    }
    if (last.verdict === 'correct') {
      yield { questionId: first.question_id, system, user: renderQuestion(first), assistant: last.answer };
    } else if (withDistilled && first.distilled_answer !== null) {
      yield {
        questionId: first.question_id,
        system,
        user: renderQuestion(first),
        assistant: first.distilled_answer,
      };
    }
  }
}

/**
 * One JSON object per question and iteration (all iterations), with every round and the ids of
 * the LLM calls that made it: per round `llmCallIds: {answer, verdict}` (the verdict call is the
 * last ask, the one that parsed), and all of them together at the top.
 */
export async function* assessAudit(db: Db, campaignId: string): AsyncGenerator<Record<string, unknown>> {
  for await (const rounds of byQuestion(roundRows(db, campaignId).stream(500))) {
    const first = rounds[0];
    if (!first) continue;
    const solved = rounds.find((r) => r.verdict === 'correct');
    yield {
      ...auditHeader(campaignId, 'assess', first.iteration, first),
      modelIn: first.model_in,
      outcome: outcomeOf(rounds),
      solvedInRound: solved ? solved.round : null,
      rounds: rounds.map((r) => ({
        round: r.round,
        modelIn: r.model_in,
        answer: r.answer,
        verdict: r.verdict,
        feedback: r.feedback,
        verdictAttempts: r.verdict_attempts,
        llmCallIds: { answer: r.answer_call_id, verdict: r.verdict_call_id },
        createdAt: r.created_at,
      })),
      llmCallIds: {
        answers: rounds.map((r) => r.answer_call_id),
        verdicts: rounds.map((r) => r.verdict_call_id),
      },
    };
  }
}

/** Questions of one iteration with at least one recorded round. */
export async function assessRecordCount(db: Db, campaignId: string, iteration: number): Promise<number> {
  const row = await db
    .selectFrom('assess_rounds')
    .select(sql<number>`count(distinct question_id)::int`.as('n'))
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', iteration)
    .executeTakeFirstOrThrow();
  return row.n;
}

/**
 * The first and second attempts of each question of one iteration, for SCoRe's metrics: round 1's
 * verdict, then round 2's — or round 1's again when it was correct, since a correct answer is not
 * asked again (so Δc→i is 0 here by construction; the evaluation's probe measures it). A question
 * judged incorrect without a second round (maxRounds 1, or given up on) has no second attempt.
 */
export async function assessAttempts(db: Db, campaignId: string, iteration: number): Promise<TwoAttempts[]> {
  const rows = await db
    .selectFrom('assess_rounds')
    .select([
      'question_id',
      sql<Verdict | null>`max(verdict) filter (where round = 1)`.as('v1'),
      sql<Verdict | null>`max(verdict) filter (where round = 2)`.as('v2'),
    ])
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', iteration)
    .groupBy('question_id')
    .execute();
  return rows.flatMap((r): TwoAttempts[] => {
    if (r.v1 === null) return [];
    const t1 = attemptOutcome(r.v1);
    const v2 = r.v2 ?? (r.v1 === 'correct' ? r.v1 : null);
    return [{ t1, t2: v2 === null ? null : attemptOutcome(v2) }];
  });
}

/** Figures of one iteration, kept in `stage_runs.metrics`. */
export async function assessMetrics(
  db: Db,
  campaignId: string,
  iteration: number,
): Promise<Record<string, number>> {
  const perQuestion = db
    .selectFrom('assess_rounds')
    .select([
      'question_id',
      sql<number>`count(*)::int`.as('rounds'),
      sql<boolean>`bool_or(verdict = 'correct')`.as('solved'),
      sql<boolean>`bool_or(round = 1 and verdict = 'correct')`.as('first'),
      sql<number>`count(*) filter (where verdict = 'unparseable')::int`.as('unparseable'),
      sql<number>`sum(verdict_attempts - 1)::int`.as('reasks'),
    ])
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', iteration)
    .groupBy('question_id')
    .as('p');
  const row = await db
    .selectFrom(perQuestion)
    .select([
      sql<number>`count(*)::int`.as('questions'),
      sql<number>`count(*) filter (where p.solved)::int`.as('solved'),
      sql<number>`count(*) filter (where p.first)::int`.as('solvedFirstRound'),
      sql<number>`coalesce(sum(p.unparseable), 0)::int`.as('unparseableVerdicts'),
      sql<number>`coalesce(sum(p.reasks), 0)::int`.as('verdictReasks'),
      sql<number>`coalesce(sum(p.rounds), 0)::int`.as('rounds'),
    ])
    .executeTakeFirstOrThrow();
  const score = selfCorrectionRates(await assessAttempts(db, campaignId, iteration));
  return {
    ...(score && {
      accT1: score.accT1,
      accT2: score.accT2,
      delta: score.delta,
      deltaIC: score.deltaIC,
      deltaCI: score.deltaCI,
    }),
    questions: row.questions,
    solved: row.solved,
    solvedFirstRound: row.solvedFirstRound,
    solvedAfterFeedback: row.solved - row.solvedFirstRound,
    neverCorrect: row.questions - row.solved,
    unparseableVerdicts: row.unparseableVerdicts,
    verdictReasks: row.verdictReasks,
    rounds: row.rounds,
    meanRounds: row.questions === 0 ? 0 : row.rounds / row.questions,
  };
}
