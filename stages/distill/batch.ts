/**
 * Stage 1 activities. A batch skips the questions that already have a record (a retried attempt
 * redoes nothing), runs the rest concurrently under the endpoints' limits, and upserts each
 * record by its business key (campaign, iteration, question) as soon as it is made.
 */
import { z } from 'zod';
import { getCampaign } from '../../core/campaigns';
import { compositeKey } from '../../core/composite-key';
import { isDataException, retryOnConnectionLoss } from '../../core/db/connection';
import { GroupCommit, lastPerKey, PER_CALL_STATEMENT_INTERVAL_MS } from '../../core/db/group-commit';
import type { NewDistillRecord } from '../../core/db/types';
import type { Endpoint } from '../../core/llm/gateway';
import { askStructured } from '../../core/llm/structured';
import { QuestionFailedError, runQuestionBatch, withoutRecord } from '../../activities/batch';
import {
  DISTILL_PROMPT_VERSIONS,
  guidelinePrompt,
  STRONG_ANSWER_SCHEMA,
  strongAnswerPrompt,
} from '../../core/prompts';
import type { BatchInput, BatchResult } from '../../workflows/types';
import type { ActivityDeps } from '../../activities/context';

const StrongAnswer = z.object({
  guidelineCorrect: z.boolean(),
  correction: z.string().nullable().optional(),
  answer: z.string().min(1),
});
/** A malformed structured reply is asked again this many times (with a salt) before the question fails. */
const STRUCTURED_ATTEMPTS = 3;
/** How long a batch of records is tried again while the database is away. */
const RECORD_RETRY_MS = 60_000;

export function distillActivities({ db, llm }: ActivityDeps) {
  // Records of many questions in one upsert (each still by its business key, so a statement cut
  // off by a database restart simply runs again).
  const records = new GroupCommit<NewDistillRecord, void>(
    async (rows) => {
      await retryOnConnectionLoss(() => upsertRecords(rows), RECORD_RETRY_MS);
      return rows.map(() => undefined);
    },
    { minIntervalMs: PER_CALL_STATEMENT_INTERVAL_MS, isolate: isDataException },
  );
  const upsertRecords = (rows: NewDistillRecord[]) =>
    db
      .insertInto('distill_records')
      .values(lastPerKey(rows, (r) => compositeKey(r.campaign_id, r.iteration, r.question_id)))
      .onConflict((oc) =>
        oc.columns(['campaign_id', 'iteration', 'question_id']).doUpdateSet((eb) => ({
          guideline: eb.ref('excluded.guideline'),
          answer: eb.ref('excluded.answer'),
          guideline_corrected: eb.ref('excluded.guideline_corrected'),
          correction: eb.ref('excluded.correction'),
          guideline_call_id: eb.ref('excluded.guideline_call_id'),
          answer_call_id: eb.ref('excluded.answer_call_id'),
          updated_at: new Date(),
        })),
      )
      .execute();
  return {
    async distillBatch(input: BatchInput): Promise<BatchResult> {
      const { campaignId, iteration } = input;
      const { spec } = await getCampaign(db, campaignId);
      const weak: Endpoint = { ...spec.models.weak, role: 'weak' };
      const strong: Endpoint = { ...spec.models.strong, role: 'strong' };
      return runQuestionBatch(db, input, {
        stage: 'distill',
        maxFailedFraction: spec.stages.distill.maxFailedFraction,
        pending: (questions) => withoutRecord(db, 'distill_records', input, questions),
        async work(q, scope, counts) {
          const guideline = await llm.chat(scope, weak, {
            purpose: 'guideline',
            promptVersion: DISTILL_PROMPT_VERSIONS.guideline,
            messages: guidelinePrompt(spec.domain, q),
            model: input.modelIn,
          });
          const reply = await askStructured(
            llm,
            scope,
            strong,
            {
              purpose: 'strong-answer',
              promptVersion: DISTILL_PROMPT_VERSIONS.strongAnswer,
              messages: strongAnswerPrompt(spec.domain, q, guideline.content),
              jsonSchema: STRONG_ANSWER_SCHEMA,
              temperature: 0,
            },
            StrongAnswer,
            STRUCTURED_ATTEMPTS,
          );
          const parsed = reply.value;
          const answerCallId = reply.call.callId;
          if (!parsed) {
            // A failed question (recorded with its calls, retried by `campaign retry-failed`).
            throw new QuestionFailedError(
              `the strong model's reply did not parse after ${STRUCTURED_ATTEMPTS} asks (last call ${answerCallId})`,
            );
          }
          await records.submit({
            campaign_id: campaignId,
            iteration,
            question_id: q.id,
            model_in: input.modelIn,
            guideline: guideline.content,
            answer: parsed.answer,
            guideline_corrected: !parsed.guidelineCorrect,
            correction: parsed.correction ?? null,
            guideline_call_id: guideline.callId,
            answer_call_id: answerCallId,
          });
          counts.created++;
        },
      });
    },
  };
}
