/**
 * One iteration of an evolution line, started by the line's Temporal Schedule (`line-<name>`)
 * or by `meteorctl line trigger`: take in the questions that arrived since, run a campaign whose
 * M0 is the champion, and promote its final model only past the pairwise judge's gate.
 * A failed campaign fails the iteration (so the schedule's pauseOnFailure can act); the schedule
 * itself goes on.
 */
import {
  CancellationScope,
  executeChild,
  isCancellation,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { campaignWorkflow, campaignWorkflowId, errorText } from './campaign';
import { BOOKKEEPING_RETRY } from './retry';

const acts = proxyActivities<Activities>({ startToCloseTimeout: '2m', retry: BOOKKEEPING_RETRY });

export interface LineIterationInput {
  line: string;
}

export interface LineIterationResult {
  iteration: number;
  campaignId: string | null;
  state: 'completed' | 'skipped';
  promoted: boolean | null;
  reason: string | null;
}

export async function lineIterationWorkflow({ line }: LineIterationInput): Promise<LineIterationResult> {
  const { iteration, campaignId } = await acts.startLineIteration({
    line,
    workflowId: workflowInfo().workflowId,
  });
  if (!campaignId) {
    return { iteration, campaignId: null, state: 'skipped', promoted: null, reason: 'no new questions' };
  }
  try {
    await executeChild(campaignWorkflow, {
      workflowId: campaignWorkflowId(campaignId),
      args: [{ campaignId }],
    });
  } catch (err) {
    const cancelled = isCancellation(err);
    await CancellationScope.nonCancellable(() =>
      acts.finishLineIteration({
        line,
        iteration,
        state: cancelled ? 'cancelled' : 'failed',
        reason: cancelled ? 'cancelled' : errorText(err),
      }),
    );
    throw err;
  }
  const gate = await acts.gateLineIteration({ line, iteration, campaignId });
  return { iteration, campaignId, state: 'completed', promoted: gate.promoted, reason: gate.reason };
}
