/**
 * A METEOR campaign (DESIGN §1): each training stage runs as a child workflow, ends in a
 * fine-tune, and hands the new model version to the next stage. This slice runs
 * Stage 1 (distill); stages 2 and 3 and evaluation plug in the same way.
 *
 * Workflow id `campaign-<campaignId>`; signals `pause`/`resume`; query `status`.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { BOOKKEEPING_RETRY } from './retry';
import { distillWorkflow } from './distill';
import { fineTuneWorkflow } from './finetune';
import { pauseSignal, resumeSignal, stageProgressSignal, statusQuery } from './messages';
import { MeteorCampaignId, MeteorStage, MeteorState } from './search-attributes';
import type { CampaignRunState, CampaignStatus, StageName, StageProgress } from './types';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '2m',
  retry: BOOKKEEPING_RETRY,
});

export interface CampaignInput {
  campaignId: string;
  /** Continue-as-new threshold handed to stage workflows (tests set it low). */
  maxHistoryEvents?: number;
}

export function campaignWorkflowId(campaignId: string): string {
  return `campaign-${campaignId}`;
}

export async function campaignWorkflow(input: CampaignInput): Promise<CampaignStatus> {
  const { campaignId } = input;
  const status: CampaignStatus = {
    campaignId,
    workflowId: workflowInfo().workflowId,
    state: 'running',
    pauseRequested: false,
    stage: null,
    iteration: null,
    stages: [],
    costUsd: 0,
    lineage: [],
    error: null,
  };
  let paused = false;
  let activeChild: ChildWorkflowHandle<typeof distillWorkflow> | null = null;

  const setState = async (state: CampaignRunState) => {
    status.state = state;
    upsertSearchAttributes([{ key: MeteorState, value: state }]);
    await acts.setCampaignState({ campaignId, state });
  };
  const stageEntry = (stage: StageName, iteration: number, total: number): StageProgress => {
    const entry: StageProgress = {
      stage,
      iteration,
      status: 'pending',
      total,
      done: 0,
      records: 0,
      costUsd: 0,
    };
    status.stages.push(entry);
    return entry;
  };
  const refreshCost = () => {
    status.costUsd = status.stages.reduce((sum, s) => sum + s.costUsd, 0);
  };

  setHandler(statusQuery, () => status);
  setHandler(pauseSignal, async () => {
    paused = true;
    status.pauseRequested = true;
    if (activeChild) await activeChild.signal(pauseSignal);
  });
  setHandler(resumeSignal, async () => {
    paused = false;
    status.pauseRequested = false;
    if (activeChild) await activeChild.signal(resumeSignal);
  });
  setHandler(stageProgressSignal, (p) => {
    const entry = status.stages.find((s) => s.stage === p.stage && s.iteration === p.iteration);
    if (!entry) return;
    Object.assign(entry, p);
    // The stage pauses only once its in-flight batches have drained: only then say `paused`.
    if (p.status === 'paused' && paused) status.state = 'paused';
    else if (p.status === 'running' && status.state === 'paused') status.state = 'running';
    refreshCost();
  });

  /** The safe point between steps: hold here while paused, for as long as it takes. */
  const holdWhilePaused = async () => {
    if (!paused) return;
    await setState('paused');
    await condition(() => !paused);
    await setState('running');
  };

  try {
    const plan = await acts.loadCampaignPlan({ campaignId });
    upsertSearchAttributes([{ key: MeteorCampaignId, value: campaignId }]);
    await setState('running');
    let current = await acts.registerBaseModel({ campaignId });
    status.lineage.push(current);

    if (plan.distill.enabled) {
      const iteration = 1;
      status.stage = 'distill';
      status.iteration = iteration;
      upsertSearchAttributes([{ key: MeteorStage, value: 'distill' }]);
      const entry = stageEntry('distill', iteration, plan.trainTotal);
      await holdWhilePaused();
      entry.status = 'running';
      const child = await startChild(distillWorkflow, {
        workflowId: `${status.workflowId}-distill-${iteration}`,
        args: [
          {
            campaignId,
            iteration,
            modelIn: current,
            batchSize: plan.distill.batchSize,
            parallelBatches: plan.distill.parallelBatches,
            maxHistoryEvents: input.maxHistoryEvents,
            maxCostUsd: plan.maxCostUsd === null ? null : plan.maxCostUsd - status.costUsd,
          },
        ],
      });
      activeChild = child;
      // A pause that arrived while the child was starting is forwarded now.
      if (paused) await child.signal(pauseSignal);
      const result = await child.result();
      activeChild = null;
      Object.assign(entry, {
        status: 'fine-tuning',
        done: entry.total,
        records: result.records,
        costUsd: result.costUsd,
      });
      refreshCost();
      if (plan.maxCostUsd !== null && status.costUsd > plan.maxCostUsd) {
        throw ApplicationFailure.nonRetryable(
          `budget exceeded: estimated spend $${status.costUsd.toFixed(2)} > maxCostUsd $${plan.maxCostUsd}`,
          'BudgetExceeded',
        );
      }

      await holdWhilePaused();
      const next = await startChild(fineTuneWorkflow, {
        workflowId: `${status.workflowId}-finetune-distill-${iteration}`,
        args: [
          {
            campaignId,
            stage: 'distill',
            iteration,
            dataset: result.dataset,
            parent: current,
            label: `M${status.lineage.length}`,
            pollIntervalMs: plan.fineTune.pollIntervalMs,
            timeoutMs: plan.fineTune.timeoutMs,
          },
        ],
      });
      current = await next.result();
      status.lineage.push(current);
      entry.status = 'completed';
    }

    status.stage = null;
    status.iteration = null;
    await setState('completed');
    return status;
  } catch (err) {
    const cancelled = isCancellation(err);
    status.error = cancelled ? 'cancelled by user' : errorText(err);
    await CancellationScope.nonCancellable(async () => {
      status.state = cancelled ? 'cancelled' : 'failed';
      upsertSearchAttributes([{ key: MeteorState, value: status.state }]);
      await acts.setCampaignState({ campaignId, state: status.state, error: status.error });
    });
    throw err;
  }
}

/** The innermost cause: a child's activity failure is wrapped twice over. */
function errorText(err: unknown): string {
  let e: unknown = err;
  let text = err instanceof Error ? err.message : String(err);
  while (e instanceof Error && e.cause) {
    e = e.cause;
    if (e instanceof Error && e.message) text = e.message;
  }
  return text;
}
