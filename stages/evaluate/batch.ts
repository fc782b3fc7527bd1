/**
 * Evaluation activities (DESIGN §1). Per held-out question of the batch: the base model's answer
 * and each candidate's (the final model of each training stage) — greedy, with the SFT system
 * prompt — then, per candidate, the judge compares candidate and base twice, once with each answer
 * first. Every answer and every judgment is upserted by its business key as soon as it is made,
 * and a retried attempt skips what exists. A judge reply that never parses is recorded as
 * `unparseable` with its raw text; the statistics count it as a tie.
 *
 * The self-correction probe (`selfCorrection`, SCoRe): per model — the base and each candidate —
 * and question, the model revises its answer after SCoRe's second-turn instruction (greedy, as the
 * first), and the strong model gives its stage-2 verdict on each attempt; one row per model and
 * question, written once all three calls are made (a retry reuses the logged ones).
 */
import { Context } from '@temporalio/activity';
import { z } from 'zod';
import { getCampaign } from '../../core/campaigns';
import { compositeKey } from '../../core/composite-key';
import type { QuestionRow } from '../../core/db/types';
import {
  EVAL_DIMENSIONS,
  JUDGMENT_POSITIONS,
  type JudgmentPosition,
  type Side,
} from '../../core/evaluation/stats';
import { UserError } from '../../core/errors';
import type { Endpoint } from '../../core/llm/gateway';
import { askStructured } from '../../core/llm/structured';
import {
  ASSESS_PROMPT_VERSIONS,
  ASSESSMENT_VERDICT_SCHEMA,
  AssessmentVerdict,
  evalAnswerPrompt,
  EVALUATE_PROMPT_VERSIONS,
  PAIRWISE_JUDGMENT_SCHEMA,
  pairwiseJudgePrompt,
  recordedVerdict,
  selfRevisionPrompt,
  verdictPrompt,
} from '../../core/prompts';
import { baseModelLabel } from './records';
import type { BatchInput, BatchResult } from '../../workflows/types';
import type { ActivityDeps } from '../../activities/context';
import { runQuestionBatch } from '../../activities/batch';

const JudgeSide = z.enum(['A', 'B', 'tie']);
const Score = z.number().min(1).max(10);
const AnswerScores = z.object({
  accuracy: Score,
  completeness: Score,
  relevance: Score,
  coherence: Score,
  reliability: Score,
  overall: Score,
});
const PairwiseJudgment = z.object({
  explanation: z.string(),
  dimensions: z.object({
    accuracy: JudgeSide,
    completeness: JudgeSide,
    relevance: JudgeSide,
    coherence: JudgeSide,
    reliability: JudgeSide,
  }),
  winner: JudgeSide,
  scores: z.object({ A: AnswerScores, B: AnswerScores }),
});
type PairwiseJudgment = z.infer<typeof PairwiseJudgment>;

interface Answer {
  text: string;
  callId: string;
}

interface Model {
  label: string;
  servedModel: string;
}

/** The judge's reply, turned to the candidate's side (`model`) against the base's (`base`). */
export function toCandidateSide(
  j: PairwiseJudgment,
  position: JudgmentPosition,
): {
  verdicts: Record<string, Side> & { overall: Side };
  scores: { model: Record<string, number>; base: Record<string, number> };
} {
  const modelIs = position === 'model-first' ? 'A' : 'B';
  const side = (s: 'A' | 'B' | 'tie'): Side => (s === 'tie' ? 'tie' : s === modelIs ? 'model' : 'base');
  const verdicts: Record<string, Side> = {};
  for (const d of EVAL_DIMENSIONS) verdicts[d] = side(j.dimensions[d]);
  return {
    verdicts: { ...verdicts, overall: side(j.winner) },
    scores: {
      model: { ...(modelIs === 'A' ? j.scores.A : j.scores.B) },
      base: { ...(modelIs === 'A' ? j.scores.B : j.scores.A) },
    },
  };
}

/** Runs every task; when one fails, waits for the others to settle, then throws the first error. */
async function allSettledOrThrow(tasks: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(tasks);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

export function evaluateActivities({ db, llm }: ActivityDeps) {
  return {
    async evaluateBatch(input: BatchInput): Promise<BatchResult> {
      const { log } = Context.current();
      const { campaignId } = input;
      const { spec } = await getCampaign(db, campaignId);
      if (!spec.models.judge) {
        throw new UserError(`campaign ${campaignId} has no models.judge endpoint: the evaluation needs one`);
      }
      const weak: Endpoint = { ...spec.models.weak, role: 'weak' };
      const strong: Endpoint = { ...spec.models.strong, role: 'strong' };
      const judge: Endpoint = { ...spec.models.judge, role: 'judge' };
      const { judgeAttempts, selfCorrection } = spec.stages.evaluate;
      const base: Model = { label: await baseModelLabel(db, campaignId), servedModel: input.modelIn };
      const candidates: Model[] = (input.candidates ?? []).filter((c) => c.label !== base.label);
      const labels = [base.label, ...candidates.map((c) => c.label)];

      // What exists already: a retried attempt reuses answers and skips finished judgments.
      const answers = new Map<string, Answer>();
      const judged = new Set<string>();
      /** (model, question) pairs whose self-correction probe is recorded. */
      const probed = new Set<string>();
      const unprobed = (q: QuestionRow) =>
        selfCorrection ? [base, ...candidates].filter((m) => !probed.has(compositeKey(m.label, q.id))) : [];
      const missing = (q: QuestionRow) =>
        candidates.flatMap((c) =>
          JUDGMENT_POSITIONS.filter((p) => !judged.has(compositeKey(c.label, q.id, p))).map((p) => ({
            c,
            p,
          })),
        );
      return runQuestionBatch(db, input, {
        stage: 'evaluate',
        maxFailedFraction: spec.stages.evaluate.maxFailedFraction,
        async pending(questions) {
          const ids = questions.map((q) => q.id);
          const [answerRows, judgmentRows, probeRows] = await Promise.all([
            db
              .selectFrom('eval_answers')
              .select(['model_label', 'question_id', 'answer', 'call_id'])
              .where('campaign_id', '=', campaignId)
              .where('model_label', 'in', labels)
              .where('question_id', 'in', ids)
              .execute(),
            db
              .selectFrom('judgments')
              .select(['model_label', 'question_id', 'position'])
              .where('campaign_id', '=', campaignId)
              .where('question_id', 'in', ids)
              .execute(),
            selfCorrection
              ? db
                  .selectFrom('self_corrections')
                  .select(['model_label', 'question_id'])
                  .where('campaign_id', '=', campaignId)
                  .where('model_label', 'in', labels)
                  .where('question_id', 'in', ids)
                  .execute()
              : [],
          ]);
          for (const r of answerRows) {
            answers.set(compositeKey(r.model_label, r.question_id), { text: r.answer, callId: r.call_id });
          }
          for (const r of judgmentRows) judged.add(compositeKey(r.model_label, r.question_id, r.position));
          for (const r of probeRows) probed.add(compositeKey(r.model_label, r.question_id));
          // A question is done once its base answer, every judgment of every candidate and every
          // model's self-correction probe exist.
          return questions.filter(
            (q) =>
              missing(q).length > 0 || unprobed(q).length > 0 || !answers.has(compositeKey(base.label, q.id)),
          );
        },
        async work(q, scope, counts) {
          const answerOf = async (m: Model, q: QuestionRow): Promise<Answer> => {
            const known = answers.get(compositeKey(m.label, q.id));
            if (known) return known;
            const reply = await llm.chat(scope, weak, {
              purpose: m.label === base.label ? 'eval-answer-base' : 'eval-answer',
              promptVersion: EVALUATE_PROMPT_VERSIONS.answer,
              messages: evalAnswerPrompt(spec.domain, q),
              model: m.servedModel,
              temperature: 0,
            });
            await db
              .insertInto('eval_answers')
              .values({
                campaign_id: campaignId,
                model_label: m.label,
                question_id: q.id,
                served_model: m.servedModel,
                answer: reply.content,
                call_id: reply.callId,
              })
              .onConflict((oc) =>
                oc.columns(['campaign_id', 'model_label', 'question_id']).doUpdateSet((eb) => ({
                  served_model: eb.ref('excluded.served_model'),
                  answer: eb.ref('excluded.answer'),
                  call_id: eb.ref('excluded.call_id'),
                })),
              )
              .execute();
            const made = { text: reply.content, callId: reply.callId };
            answers.set(compositeKey(m.label, q.id), made);
            return made;
          };

          const judgePair = async (
            c: Model,
            position: JudgmentPosition,
            q: QuestionRow,
            modelAnswer: Answer,
            baseAnswer: Answer,
          ): Promise<void> => {
            const [a, b] = position === 'model-first' ? [modelAnswer, baseAnswer] : [baseAnswer, modelAnswer];
            const reply = await askStructured(
              llm,
              scope,
              judge,
              {
                purpose: 'pairwise-judgment',
                promptVersion: EVALUATE_PROMPT_VERSIONS.judge,
                messages: pairwiseJudgePrompt(spec.domain, q, a.text, b.text),
                jsonSchema: PAIRWISE_JUDGMENT_SCHEMA,
                temperature: 0,
              },
              PairwiseJudgment,
              judgeAttempts,
            );
            const mapped = reply.value ? toCandidateSide(reply.value, position) : null;
            if (!mapped) {
              log.warn('judge reply unparseable; recorded as such (counts as a tie)', {
                questionId: q.id,
                model: c.label,
                position,
                callId: reply.call.callId,
              });
            }
            await db
              .insertInto('judgments')
              .values({
                campaign_id: campaignId,
                model_label: c.label,
                question_id: q.id,
                position,
                judge_model: judge.model,
                prompt_version: EVALUATE_PROMPT_VERSIONS.judge,
                raw_text: reply.call.content,
                status: mapped ? 'ok' : 'unparseable',
                verdicts: mapped ? JSON.stringify(mapped.verdicts) : null,
                scores: mapped ? JSON.stringify(mapped.scores) : null,
                call_id: reply.call.callId,
                attempts: reply.attempts,
              })
              .onConflict((oc) =>
                oc.columns(['campaign_id', 'model_label', 'question_id', 'position']).doUpdateSet((eb) => ({
                  judge_model: eb.ref('excluded.judge_model'),
                  prompt_version: eb.ref('excluded.prompt_version'),
                  raw_text: eb.ref('excluded.raw_text'),
                  status: eb.ref('excluded.status'),
                  verdicts: eb.ref('excluded.verdicts'),
                  scores: eb.ref('excluded.scores'),
                  call_id: eb.ref('excluded.call_id'),
                  attempts: eb.ref('excluded.attempts'),
                })),
              )
              .execute();
            counts.created++;
          };

          /** Attempt 1 is the model's evaluation answer; attempt 2 its revision; both judged. */
          const probe = async (m: Model, q: QuestionRow, first: Answer): Promise<void> => {
            const revision = await llm.chat(scope, weak, {
              purpose: 'self-revision',
              promptVersion: EVALUATE_PROMPT_VERSIONS.selfRevision,
              messages: selfRevisionPrompt(spec.domain, q, first.text),
              model: m.servedModel,
              temperature: 0,
            });
            const verdictOn = (text: string, attempt: 1 | 2) =>
              askStructured(
                llm,
                scope,
                strong,
                {
                  purpose: 'self-correction-verdict',
                  promptVersion: ASSESS_PROMPT_VERSIONS.verdict,
                  messages: verdictPrompt(spec.domain, q, text),
                  jsonSchema: ASSESSMENT_VERDICT_SCHEMA,
                  temperature: 0,
                  // Each attempt has its own logged verdict, even when the revision repeats the answer.
                  salt: `attempt-${attempt}`,
                },
                AssessmentVerdict,
                judgeAttempts,
              );
            const [t1, t2] = await Promise.all([verdictOn(first.text, 1), verdictOn(revision.content, 2)]);
            const made = {
              served_model: m.servedModel,
              revision: revision.content,
              revision_call_id: revision.callId,
              verdict_t1: recordedVerdict(t1.value),
              feedback_t1: t1.value?.feedback ?? null,
              verdict_t1_call_id: t1.call.callId,
              verdict_t2: recordedVerdict(t2.value),
              feedback_t2: t2.value?.feedback ?? null,
              verdict_t2_call_id: t2.call.callId,
            };
            await db
              .insertInto('self_corrections')
              .values({ campaign_id: campaignId, model_label: m.label, question_id: q.id, ...made })
              .onConflict((oc) => oc.columns(['campaign_id', 'model_label', 'question_id']).doUpdateSet(made))
              .execute();
          };

          const baseAnswer = await answerOf(base, q);
          const byCandidate = new Map<string, JudgmentPosition[]>();
          for (const { c, p } of missing(q))
            byCandidate.set(c.label, [...(byCandidate.get(c.label) ?? []), p]);
          const toProbe = new Set(unprobed(q).map((m) => m.label));
          await allSettledOrThrow([
            ...(toProbe.has(base.label) ? [probe(base, q, baseAnswer)] : []),
            ...candidates
              .filter((c) => byCandidate.has(c.label) || toProbe.has(c.label))
              .map(async (c) => {
                const modelAnswer = await answerOf(c, q);
                await allSettledOrThrow([
                  ...(byCandidate.get(c.label) ?? []).map((p) => judgePair(c, p, q, modelAnswer, baseAnswer)),
                  ...(toProbe.has(c.label) ? [probe(c, q, modelAnswer)] : []),
                ]);
              }),
          ]);
        },
      });
    },
  };
}
