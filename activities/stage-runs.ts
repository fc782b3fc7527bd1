/**
 * What every stage shares: its run row (started, finished, metrics), the questions of a batch,
 * and its totals — records and spend — read from the database, never summed from attempts.
 */
import { sql } from 'kysely';
import type { Db } from '../core/db/connection';
import { deleteStageClaims } from '../core/llm/claims';
import type { QuestionRow } from '../core/db/types';
import { stageMetrics, stageRecordCount } from '../core/records';
import type { BatchInput, StageName } from '../workflows/types';
import type { ActivityDeps } from './context';
import { setBatchDrain } from './batch-drain';
import { stageDefinition } from '../stages/registry';

export interface StageTotals {
  records: number;
  costUsd: number;
  promptTokens: number;
  /** Of the prompt tokens, those the provider read from its cache (billed at the cached price). */
  cachedTokens: number;
  completionTokens: number;
  calls: number;
}

/** The split a stage works on: the evaluation uses the held-out questions. */
export function stageSplit(stage: StageName): 'train' | 'eval' {
  return stageDefinition(stage).questions;
}

export async function stageTotals(
  db: Db,
  campaignId: string,
  stage: StageName,
  iteration: number,
): Promise<StageTotals> {
  const [records, calls] = await Promise.all([
    stageRecordCount(db, campaignId, stage, iteration),
    db
      .selectFrom('llm_calls')
      .select([
        sql<number>`coalesce(sum(cost_usd), 0)::float8`.as('cost'),
        sql<number>`coalesce(sum(prompt_tokens), 0)::int`.as('pt'),
        sql<number>`coalesce(sum(cached_tokens), 0)::int`.as('cached'),
        sql<number>`coalesce(sum(completion_tokens), 0)::int`.as('ct'),
        sql<number>`(count(*) filter (where status = 'ok'))::int`.as('n'),
      ])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', stage)
      .where('iteration', '=', iteration)
      // A duplicate (migration 007) was paid for too: it counts in cost and tokens.
      .where('status', 'in', ['ok', 'duplicate'])
      .executeTakeFirstOrThrow(),
  ]);
  return {
    records,
    costUsd: calls.cost,
    promptTokens: calls.pt,
    cachedTokens: calls.cached,
    completionTokens: calls.ct,
    calls: calls.n,
  };
}

/** The questions of one batch, in file order. */
export function loadBatchQuestions(
  db: Db,
  input: BatchInput,
  split: 'train' | 'eval',
): Promise<QuestionRow[]> {
  return db
    .selectFrom('questions')
    .selectAll()
    .where('campaign_id', '=', input.campaignId)
    .where('split', '=', split)
    .where('ordinal', '>=', input.offset)
    .where('ordinal', '<', input.offset + input.limit)
    .orderBy('ordinal')
    .execute();
}

/** The questions a stage works on now: its split's, counted when it starts (a stage may add some). */
async function stageQuestionCount(db: Db, campaignId: string, stage: StageName): Promise<number> {
  const { n } = await db
    .selectFrom('questions')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('campaign_id', '=', campaignId)
    .where('split', '=', stageSplit(stage))
    .executeTakeFirstOrThrow();
  return n;
}

export function stageRunActivities({ db }: ActivityDeps) {
  return {
    /** The total of a step's progress entry (the campaign's plan counted before any stage ran). */
    async countStageQuestions(input: { campaignId: string; stage: StageName }): Promise<number> {
      return stageQuestionCount(db, input.campaignId, input.stage);
    },

    async startStageRun(input: {
      campaignId: string;
      stage: StageName;
      iteration: number;
      modelIn: string;
    }): Promise<{ total: number }> {
      const n = await stageQuestionCount(db, input.campaignId, input.stage);
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

    /**
     * A pause asks the running batches of the stage run to drain (`drain: true`: they start no new
     * call, let those in flight finish, and return), and the resume lets batches run again.
     */
    async drainStageBatches(input: {
      campaignId: string;
      stage: StageName;
      iteration: number;
      drain: boolean;
    }): Promise<void> {
      await setBatchDrain(db, input, input.drain);
    },

    async finishStageRun(input: {
      campaignId: string;
      stage: StageName;
      iteration: number;
      status: 'completed' | 'failed' | 'cancelled';
    }): Promise<{ records: number; costUsd: number }> {
      const totals = await stageTotals(db, input.campaignId, input.stage, input.iteration);
      const extra = await stageMetrics(db, input.campaignId, input.stage, input.iteration);
      await db
        .updateTable('stage_runs')
        .set({
          status: input.status,
          finished_at: new Date(),
          // A drain asked for as the last batches ended is over with the run.
          drain_requested_at: null,
          metrics: JSON.stringify({ ...totals, ...extra }),
        })
        .where('campaign_id', '=', input.campaignId)
        .where('stage', '=', input.stage)
        .where('iteration', '=', input.iteration)
        .execute();
      await deleteStageClaims(db, input);
      return { records: totals.records, costUsd: totals.costUsd };
    },
  };
}
