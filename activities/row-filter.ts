/**
 * The training-row filter (`stages.<training stage>.filter`; the self-evolution survey's
 * metric-based filtering): once a batch's questions have their records, every training example
 * they yield is scored 1–10 by the judge or by the model itself, and the score is kept in
 * `row_scores`. The dataset export then leaves out rows scored below `minScore`
 * (core/training-data.ts).
 *
 * The scoring is a second pass of the same batch, on runQuestionBatch like the stage's own work:
 * so it heartbeats, halts on the budget or an outage (the batch runs again after the resume and
 * scores only the rows without a score), and a question whose scoring fails for good is that
 * question's failure. A score is a logged call like any other: a retried batch pays for none again.
 */
import { z } from 'zod';
import { getCampaign } from '../core/campaigns';
import type { SftExample, PreferenceExample } from '../core/dataset-formats';
import type { Db } from '../core/db/connection';
import type { QuestionRow } from '../core/db/types';
import { UserError } from '../core/errors';
import type { Endpoint, LlmCallScope, LlmGateway } from '../core/llm/gateway';
import { askStructured } from '../core/llm/structured';
import { ROW_SCORE_PROMPT_VERSION, ROW_SCORE_SCHEMA, rowScorePrompt } from '../core/prompts/row-score';
import type { CampaignSpec } from '../core/spec';
import type { RowFilterSpec } from '../stages/options';
import type { BaseStageOptions, BatchActivity, FromQuestion, StageDefinition } from '../stages/stage';
import type { BatchInput, StageName } from '../workflows/types';
import { runQuestionBatch } from './batch';
import type { ActivityDeps } from './context';

const RowScore = z.object({ reason: z.string(), score: z.number().min(1).max(10) });

type Example = FromQuestion<SftExample> | FromQuestion<PreferenceExample>;

/** The stage's batch activity, followed by the row filter's pass when the spec asks for one. */
export function withRowFilter(
  deps: ActivityDeps,
  stage: StageDefinition,
  batch: BatchActivity,
): BatchActivity {
  if (!stage.dataset) return batch;
  return async (input) => {
    const result = await batch(input);
    if (result.halted) return result;
    const { spec } = await getCampaign(deps.db, input.campaignId);
    const options = stageOptions(spec, stage.name);
    if (!options.filter) return result;
    const scored = await scoreRows(deps, { stage, spec, options, filter: options.filter, input });
    return {
      ...result,
      failed: scored.failed,
      stageTotals: scored.stageTotals ?? result.stageTotals,
      halted: scored.halted,
    };
  };
}

function stageOptions(spec: CampaignSpec, name: string): BaseStageOptions {
  return (spec.stages as Record<string, BaseStageOptions>)[name] as BaseStageOptions;
}

/** Who scores: the judge, or the model the stage worked with (`self`). */
export function rowScorer(spec: CampaignSpec, filter: RowFilterSpec, stage: string, modelIn: string) {
  if (filter.by === 'self')
    return { endpoint: { ...spec.models.weak, role: 'weak' } as Endpoint, model: modelIn };
  if (!spec.models.judge) {
    throw new UserError(`stages.${stage}.filter.by is "judge" but models.judge is not set`);
  }
  return { endpoint: { ...spec.models.judge, role: 'judge' } as Endpoint, model: undefined };
}

async function scoreRows(
  { db, llm }: ActivityDeps,
  o: {
    stage: StageDefinition;
    spec: CampaignSpec;
    options: BaseStageOptions;
    filter: RowFilterSpec;
    input: BatchInput;
  },
) {
  const { stage, spec, filter, input } = o;
  const scorer = rowScorer(spec, filter, stage.name, input.modelIn);
  const dataset = stage.dataset;
  if (!dataset) throw new Error(`stage ${stage.name} trains nothing: no rows to filter`);
  /** The batch's unscored rows by question, filled by `pending`. */
  const unscored = new Map<string, Array<{ row: number; example: Example }>>();
  return runQuestionBatch(db, input, {
    stage: stage.name as StageName,
    maxFailedFraction: o.options.maxFailedFraction,
    async pending(questions) {
      const ids = questions.map((q) => q.id);
      const done = await scoredRows(db, input.campaignId, stage.name, input.iteration, ids);
      const rows = new Map<string, number>();
      for await (const example of dataset.examples({
        db,
        campaignId: input.campaignId,
        domain: spec.domain,
        iteration: input.iteration,
        options: o.options,
        questionIds: ids,
      })) {
        const { questionId } = example;
        const row = rows.get(questionId) ?? 0;
        rows.set(questionId, row + 1);
        if (done.has(rowKey(questionId, row))) continue;
        const list = unscored.get(questionId) ?? [];
        list.push({ row, example });
        unscored.set(questionId, list);
      }
      return questions.filter((q) => unscored.has(q.id));
    },
    async work(q, scope, counts) {
      await Promise.all(
        (unscored.get(q.id) ?? []).map(async ({ row, example }) => {
          await scoreRow(db, llm, scope, { q, row, example, scorer, filter, spec, stage: stage.name, input });
          counts.created++;
        }),
      );
    },
  });
}

async function scoreRow(
  db: Db,
  llm: LlmGateway,
  scope: LlmCallScope,
  o: {
    q: QuestionRow;
    row: number;
    example: Example;
    scorer: { endpoint: Endpoint; model: string | undefined };
    filter: RowFilterSpec;
    spec: CampaignSpec;
    stage: string;
    input: BatchInput;
  },
): Promise<void> {
  // A preference pair is scored on its chosen output: what the fine-tune moves the model toward.
  const response = 'assistant' in o.example ? o.example.assistant : o.example.chosen;
  const reply = await askStructured(
    llm,
    scope,
    o.scorer.endpoint,
    {
      purpose: 'row-score',
      promptVersion: ROW_SCORE_PROMPT_VERSION,
      messages: rowScorePrompt(o.spec.domain, o.example.user, response),
      jsonSchema: ROW_SCORE_SCHEMA,
      temperature: 0,
      ...(o.scorer.model === undefined ? {} : { model: o.scorer.model }),
    },
    RowScore,
    o.filter.attempts,
  );
  await db
    .insertInto('row_scores')
    .values({
      campaign_id: o.input.campaignId,
      stage: o.stage,
      iteration: o.input.iteration,
      question_id: o.q.id,
      row: o.row,
      scorer: o.filter.by,
      score: reply.value?.score ?? null,
      reason: reply.value?.reason ?? null,
      call_id: reply.call.callId,
    })
    .onConflict((oc) =>
      oc.columns(['campaign_id', 'stage', 'iteration', 'question_id', 'row']).doUpdateSet((eb) => ({
        scorer: eb.ref('excluded.scorer'),
        score: eb.ref('excluded.score'),
        reason: eb.ref('excluded.reason'),
        call_id: eb.ref('excluded.call_id'),
      })),
    )
    .execute();
}

const rowKey = (questionId: string, row: number) => `${questionId}\u0000${row}`;

async function scoredRows(
  db: Db,
  campaignId: string,
  stage: string,
  iteration: number,
  questionIds: readonly string[],
): Promise<Set<string>> {
  if (questionIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('row_scores')
    .select(['question_id', 'row'])
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', stage)
    .where('iteration', '=', iteration)
    .where('question_id', 'in', questionIds)
    .execute();
  return new Set(rows.map((r) => rowKey(r.question_id, r.row)));
}
