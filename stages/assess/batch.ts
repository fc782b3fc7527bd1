/**
 * Stage 2 activities (DESIGN §1). Per question: the current model answers with its reasoning, the
 * strong model returns a structured verdict; while the answer is judged incorrect and rounds are
 * left, the model answers again given its previous answer and the feedback.
 *
 * Every round is upserted by its business key (campaign, iteration, question, round) as soon as
 * it is made. A retried batch resumes each question after its last recorded round: finished
 * questions are skipped, and a round made again reuses the logged LLM calls (same request hash).
 */
import { Context } from '@temporalio/activity';
import { getCampaign } from '../../core/campaigns';
import type { AssessRoundsTable, QuestionRow } from '../../core/db/types';
import type { ChatResult, Endpoint } from '../../core/llm/gateway';
import { askStructured } from '../../core/llm/structured';
import {
  ASSESS_PROMPT_VERSIONS,
  ASSESSMENT_VERDICT_SCHEMA,
  AssessmentVerdict,
  assessAnswerPrompt,
  recordedVerdict,
  reanswerPrompt,
  verdictPrompt,
} from '../../core/prompts';
import type { BatchInput, BatchResult } from '../../workflows/types';
import type { ActivityDeps } from '../../activities/context';
import { runQuestionBatch } from '../../activities/batch';

type Verdict = AssessRoundsTable['verdict'];

interface LastRound {
  round: number;
  answer: string;
  verdict: Verdict;
  feedback: string | null;
}

/** A question is done once a round was judged correct or unparseable, or maxRounds were made. */
function isFinished(last: LastRound | undefined, maxRounds: number): boolean {
  return last !== undefined && (last.verdict !== 'incorrect' || last.round >= maxRounds);
}

export function assessActivities({ db, llm }: ActivityDeps) {
  return {
    /**
     * Assesses one batch of training questions. processed: questions of the batch; created:
     * questions finished by this call (every finished question has its rounds recorded); skipped:
     * those of them that ended on a verdict no ask could parse (recorded, never trained on).
     */
    async assessBatch(input: BatchInput): Promise<BatchResult> {
      const { log } = Context.current();
      const { campaignId, iteration } = input;
      const { spec } = await getCampaign(db, campaignId);
      const opts = spec.stages.assess;
      const weak: Endpoint = { ...spec.models.weak, role: 'weak' };
      const strong: Endpoint = { ...spec.models.strong, role: 'strong' };
      // The last recorded round of each question: where a retried attempt resumes.
      const lastRounds = new Map<string, LastRound>();
      return runQuestionBatch(db, input, {
        stage: 'assess',
        maxFailedFraction: opts.maxFailedFraction,
        async pending(questions) {
          const rows = await db
            .selectFrom('assess_rounds')
            .select(['question_id', 'round', 'answer', 'verdict', 'feedback'])
            .where('campaign_id', '=', campaignId)
            .where('iteration', '=', iteration)
            .where(
              'question_id',
              'in',
              questions.map((q) => q.id),
            )
            .orderBy('round')
            .execute();
          for (const r of rows) lastRounds.set(r.question_id, r);
          return questions.filter((q) => !isFinished(lastRounds.get(q.id), opts.maxRounds));
        },
        async work(q, scope, counts) {
          const answer = (q: QuestionRow, round: number, previous: LastRound | undefined) =>
            llm.chat(scope, weak, {
              purpose: previous ? 're-answer' : 'answer',
              promptVersion: previous ? ASSESS_PROMPT_VERSIONS.reanswer : ASSESS_PROMPT_VERSIONS.answer,
              messages: previous
                ? reanswerPrompt(spec.domain, q, previous.answer, previous.feedback ?? '')
                : assessAnswerPrompt(spec.domain, q),
              model: input.modelIn,
              // Each round is its own call, even when a re-answer repeats the previous request.
              salt: `round-${round}`,
            });

          const judge = (q: QuestionRow, round: number, text: string) =>
            askStructured(
              llm,
              scope,
              strong,
              {
                purpose: 'verdict',
                promptVersion: ASSESS_PROMPT_VERSIONS.verdict,
                messages: verdictPrompt(spec.domain, q, text),
                jsonSchema: ASSESSMENT_VERDICT_SCHEMA,
                temperature: 0,
                salt: `round-${round}`,
              },
              AssessmentVerdict,
              opts.verdictAttempts,
            );

          const record = (
            q: QuestionRow,
            round: number,
            reply: ChatResult,
            verdict: Verdict,
            feedback: string | null,
            verdictCallId: string,
            verdictAttempts: number,
          ) =>
            db
              .insertInto('assess_rounds')
              .values({
                campaign_id: campaignId,
                iteration,
                question_id: q.id,
                round,
                model_in: input.modelIn,
                answer: reply.content,
                verdict,
                feedback,
                answer_call_id: reply.callId,
                verdict_call_id: verdictCallId,
                verdict_attempts: verdictAttempts,
              })
              .onConflict((oc) =>
                oc.columns(['campaign_id', 'iteration', 'question_id', 'round']).doUpdateSet((eb) => ({
                  model_in: eb.ref('excluded.model_in'),
                  answer: eb.ref('excluded.answer'),
                  verdict: eb.ref('excluded.verdict'),
                  feedback: eb.ref('excluded.feedback'),
                  answer_call_id: eb.ref('excluded.answer_call_id'),
                  verdict_call_id: eb.ref('excluded.verdict_call_id'),
                  verdict_attempts: eb.ref('excluded.verdict_attempts'),
                })),
              )
              .execute();

          let previous = lastRounds.get(q.id);
          for (let round = (previous?.round ?? 0) + 1; round <= opts.maxRounds; round++) {
            const reply = await answer(q, round, previous);
            const judged = await judge(q, round, reply.content);
            const v = judged.value;
            const verdict: Verdict = recordedVerdict(v);
            const feedback = v === null ? null : v.feedback;
            await record(q, round, reply, verdict, feedback, judged.call.callId, judged.attempts);
            if (verdict === 'unparseable') {
              counts.skipped++;
              log.warn('critic verdict unparseable; question stops here', {
                questionId: q.id,
                round,
                verdictCallId: judged.call.callId,
                attempts: judged.attempts,
              });
            }
            if (verdict !== 'incorrect') break;
            previous = { round, answer: reply.content, verdict, feedback };
          }
          counts.created++;
        },
      });
    },
  };
}
