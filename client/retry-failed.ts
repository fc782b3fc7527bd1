/**
 * `campaign retry-failed`: once the cause is fixed, runs the failed questions of a finished
 * campaign again — each stage iteration's unresolved failures through its own batch activity
 * (a standalone stage workflow in retry mode), marking those that now succeed resolved.
 */
import { ApplicationFailure, WorkflowFailedError, type WorkflowStartOptions } from '@temporalio/client';
import { sql } from 'kysely';
import { toModelRef } from '../activities/models';
import { UserError } from '../core/errors';
import { stageDefinition, trainingStageNames } from '../stages/registry';
import { stageWorkflow } from '../workflows/stage';
import type { ModelRef, StageName, StageResult } from '../workflows/types';
import type { Clients } from './connect';
import { getCampaignRow } from './status';

export interface RetryFailedResult {
  campaignId: string;
  stages: Array<{
    stage: StageName;
    iteration: number;
    retried: number;
    resolved: number;
    stillFailed: number;
  }>;
  /** What a retry cannot change, said in the command's output. */
  limits: string;
}

export const RETRY_FAILED_LIMITS =
  'Records made by a retry are in the database, the audit and `meteorctl dataset export`, but not in ' +
  'datasets the campaign already exported nor in models it already fine-tuned: the campaign is not re-run.';

export async function retryFailedQuestions(
  clients: Clients,
  campaignId: string,
  stage: StageName | undefined,
): Promise<RetryFailedResult> {
  const { db, temporal } = clients;
  const row = await getCampaignRow(db, campaignId);
  const state = (await temporal.workflow.getHandle(row.workflow_id).describe()).status.name;
  // A running campaign still writes to its stages; retrying beside it would race its bookkeeping.
  if (state === 'RUNNING') {
    throw new UserError(
      `campaign ${campaignId} is still running: retry-failed works on a completed, failed or cancelled campaign`,
    );
  }
  let q = db
    .selectFrom('failed_questions')
    .select(['stage', 'iteration', sql<number>`count(*)::int`.as('n')])
    .where('campaign_id', '=', campaignId)
    .where('resolved_at', 'is', null)
    .groupBy(['stage', 'iteration'])
    .orderBy('stage')
    .orderBy('iteration');
  if (stage) q = q.where('stage', '=', stage);
  const groups = await q.execute();

  const models = (
    await db
      .selectFrom('model_versions')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .orderBy('created_at')
      .execute()
  ).map(toModelRef);
  const base = models[0];
  if (!base && groups.length > 0) throw new UserError(`campaign ${campaignId} has no base model registered`);

  const out: RetryFailedResult = { campaignId, stages: [], limits: RETRY_FAILED_LIMITS };
  for (const g of groups) {
    const s = g.stage as StageName;
    const run = await db
      .selectFrom('stage_runs')
      .select('model_in')
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', s)
      .where('iteration', '=', g.iteration)
      .executeTakeFirst();
    const modelIn = models.find((m) => m.label === run?.model_in) ?? (base as ModelRef);
    // The evaluation compares the last model of each training stage with the base, as the campaign did.
    const candidates =
      stageDefinition(s).questions === 'eval'
        ? trainingStageNames().flatMap((t) => models.filter((m) => m.stage === t).slice(-1))
        : undefined;
    const result = await executeRetry(temporal, {
      taskQueue: row.task_queue,
      workflowId: `${row.workflow_id}-retry-failed-${s}-${g.iteration}-${Date.now()}`,
      args: [
        {
          campaignId,
          stage: s,
          iteration: g.iteration,
          modelIn,
          candidates,
          exportsDataset: false,
          batchSize: g.n,
          parallelBatches: 1,
          retryFailed: true,
        },
      ],
    });
    out.stages.push({
      stage: s,
      iteration: g.iteration,
      retried: g.n,
      resolved: g.n - result.failed,
      stillFailed: result.failed,
    });
  }
  return out;
}

/**
 * Runs a retry-failed stage workflow; a halt (the budget reached, an endpoint down) is said in
 * its own words, not as "workflow execution failed".
 */
async function executeRetry(
  temporal: Clients['temporal'],
  options: WorkflowStartOptions<typeof stageWorkflow>,
): Promise<StageResult> {
  try {
    return await temporal.workflow.execute(stageWorkflow, options);
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === 'Halted') {
      throw new UserError(`retry-failed stopped: ${cause.message}`);
    }
    throw err;
  }
}
