/**
 * Stage 1 activities. A batch skips the questions that already have a record (a retried attempt
 * redoes nothing), runs the rest concurrently under the endpoints' limits, and upserts each
 * record by its business key (campaign, iteration, question) as soon as it is made.
 */
import { Context } from '@temporalio/activity';
import { sql } from 'kysely';
import { z } from 'zod';
import { getCampaign } from '../core/campaigns';
import type { Db } from '../core/db/connection';
import type { Endpoint } from '../core/llm/gateway';
import { DISTILL_PROMPT_VERSIONS, guidelinePrompt, STRONG_ANSWER_SCHEMA, strongAnswerPrompt } from '../core/prompts';
import type { BatchResult, StageName } from '../workflows/types';
import type { ActivityDeps } from './context';
import { runWithHeartbeat, settleAll } from './heartbeat';

const StrongAnswer = z.object({
  guidelineCorrect: z.boolean(),
  correction: z.string().nullable().optional(),
  answer: z.string().min(1),
});
/** A malformed structured reply is asked again this many times (with a salt) before the question is skipped. */
const STRUCTURED_ATTEMPTS = 3;

export function parseJsonReply<T>(text: string, schema: z.ZodType<T>): T | null {
  try {
    // Some servers wrap JSON in a fenced block even when asked for a schema.
    const unfenced = text.replace(/^\s*```(?:json)?\s*|\s*```\s*$/g, '');
    const parsed = schema.safeParse(JSON.parse(unfenced));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export async function stageTotals(
  db: Db,
  campaignId: string,
  stage: StageName,
  iteration: number,
): Promise<{
  records: number;
  costUsd: number;
  promptTokens: number;
  completionTokens: number;
  calls: number;
}> {
  const [records, calls] = await Promise.all([
    db
      .selectFrom('distill_records')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('campaign_id', '=', campaignId)
      .where('iteration', '=', iteration)
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('llm_calls')
      .select([
        sql<number>`coalesce(sum(cost_usd), 0)::float8`.as('cost'),
        sql<number>`coalesce(sum(prompt_tokens), 0)::int`.as('pt'),
        sql<number>`coalesce(sum(completion_tokens), 0)::int`.as('ct'),
        sql<number>`count(*)::int`.as('n'),
      ])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', stage)
      .where('iteration', '=', iteration)
      .where('status', '=', 'ok')
      .executeTakeFirstOrThrow(),
  ]);
  return {
    records: records.n,
    costUsd: calls.cost,
    promptTokens: calls.pt,
    completionTokens: calls.ct,
    calls: calls.n,
  };
}

export function distillActivities({ db, llm }: ActivityDeps) {
  return {
    async startStageRun(input: {
      campaignId: string;
      stage: StageName;
      iteration: number;
      modelIn: string;
    }): Promise<{ total: number }> {
      const { n } = await db
        .selectFrom('questions')
        .select(sql<number>`count(*)::int`.as('n'))
        .where('campaign_id', '=', input.campaignId)
        .where('split', '=', 'train')
        .executeTakeFirstOrThrow();
      await db
        .insertInto('stage_runs')
        .values({
          campaign_id: input.campaignId,
          stage: input.stage,
          iteration: input.iteration,
          status: 'running',
          model_in: input.modelIn,
          total: n,
        })
        .onConflict((oc) =>
          oc.columns(['campaign_id', 'stage', 'iteration']).doUpdateSet({ status: 'running' }),
        )
        .execute();
      return { total: n };
    },

    async finishStageRun(input: {
      campaignId: string;
      stage: StageName;
      iteration: number;
      status: 'completed' | 'failed' | 'cancelled';
    }): Promise<{ records: number; costUsd: number }> {
      const totals = await stageTotals(db, input.campaignId, input.stage, input.iteration);
      const corrected = await db
        .selectFrom('distill_records')
        .select(sql<number>`count(*) filter (where guideline_corrected)::int`.as('n'))
        .where('campaign_id', '=', input.campaignId)
        .where('iteration', '=', input.iteration)
        .executeTakeFirstOrThrow();
      await db
        .updateTable('stage_runs')
        .set({
          status: input.status,
          finished_at: new Date(),
          metrics: JSON.stringify({ ...totals, guidelinesCorrected: corrected.n }),
        })
        .where('campaign_id', '=', input.campaignId)
        .where('stage', '=', input.stage)
        .where('iteration', '=', input.iteration)
        .execute();
      return { records: totals.records, costUsd: totals.costUsd };
    },

    async distillBatch(input: {
      campaignId: string;
      iteration: number;
      /** The served weak model (M0's name or a fine-tuned adapter). */
      modelIn: string;
      offset: number;
      limit: number;
      /** Also count the whole stage's records and cost (see BatchResult.stageTotals). */
      withTotals?: boolean;
    }): Promise<BatchResult> {
      const ctx = Context.current();
      const { campaignId, iteration } = input;
      const { spec } = await getCampaign(db, campaignId);
      const weak: Endpoint = { ...spec.models.weak, role: 'weak' };
      const strong: Endpoint = { ...spec.models.strong, role: 'strong' };
      const questions = await db
        .selectFrom('questions')
        .selectAll()
        .where('campaign_id', '=', campaignId)
        .where('split', '=', 'train')
        .where('ordinal', '>=', input.offset)
        .where('ordinal', '<', input.offset + input.limit)
        .orderBy('ordinal')
        .execute();
      const existing = new Set(
        questions.length === 0
          ? []
          : (
              await db
                .selectFrom('distill_records')
                .select('question_id')
                .where('campaign_id', '=', campaignId)
                .where('iteration', '=', iteration)
                .where(
                  'question_id',
                  'in',
                  questions.map((q) => q.id),
                )
                .execute()
            ).map((r) => r.question_id),
      );
      const todo = questions.filter((q) => !existing.has(q.id));
      const counts = { processed: questions.length - todo.length, created: 0, skipped: 0 };

      await runWithHeartbeat(
        ctx,
        () => ({ ...counts }),
        async (controller) => {
          const scope = { campaignId, stage: 'distill', iteration, signal: controller.signal };
          await settleAll(
            todo.map((q) => async () => {
              const guideline = await llm.chat(scope, weak, {
                purpose: 'guideline',
                promptVersion: DISTILL_PROMPT_VERSIONS.guideline,
                messages: guidelinePrompt(spec.domain, q),
                model: input.modelIn,
              });
              let parsed: z.infer<typeof StrongAnswer> | null = null;
              let answerCallId = '';
              for (let attempt = 0; attempt < STRUCTURED_ATTEMPTS && !parsed; attempt++) {
                const reply = await llm.chat(scope, strong, {
                  purpose: 'strong-answer',
                  promptVersion: DISTILL_PROMPT_VERSIONS.strongAnswer,
                  messages: strongAnswerPrompt(spec.domain, q, guideline.content),
                  jsonSchema: STRONG_ANSWER_SCHEMA,
                  temperature: 0,
                  salt: attempt === 0 ? undefined : `reask-${attempt}`,
                });
                parsed = parseJsonReply(reply.content, StrongAnswer);
                answerCallId = reply.callId;
              }
              if (!parsed) {
                counts.skipped++;
                counts.processed++;
                ctx.log.warn('strong model reply unparseable; question skipped', {
                  questionId: q.id,
                  answerCallId,
                });
                return;
              }
              await db
                .insertInto('distill_records')
                .values({
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
                })
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
              counts.created++;
              counts.processed++;
            }),
            controller,
          );
        },
      );

      if (!input.withTotals) return { ...counts, stageTotals: null };
      const totals = await stageTotals(db, campaignId, 'distill', iteration);
      return { ...counts, stageTotals: { records: totals.records, costUsd: totals.costUsd } };
    },
  };
}
