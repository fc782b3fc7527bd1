/**
 * One fine-tune: submit exactly once (the activity looks the job up by its key first), poll on a
 * durable timer for as long as it takes, then register and deploy the new model version.
 * Cancelling this workflow cancels the job on its backend.
 */
import {
  ApplicationFailure,
  CancellationScope,
  continueAsNew,
  isCancellation,
  proxyActivities,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { REMOTE_RETRY } from './retry';
import type { FineTuneInput, ModelRef } from './types';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '5m',
  retry: REMOTE_RETRY,
});

export async function fineTuneWorkflow(input: FineTuneInput): Promise<ModelRef> {
  const startedAtMs = input.startedAtMs ?? Date.now();
  const jobId =
    input.jobId ??
    (
      await acts.submitFineTune({
        campaignId: input.campaignId,
        stage: input.stage,
        iteration: input.iteration,
        datasetId: input.dataset.datasetId,
        baseModel: input.parent.servedModel,
        parentLabel: input.parent.label,
        kind: input.kind,
        loss: input.loss,
      })
    ).jobId;

  let outcome: { status: string; error: string | null };
  try {
    for (;;) {
      const polled = await acts.pollFineTune({ jobId });
      if (polled.status === 'succeeded' || polled.status === 'failed' || polled.status === 'cancelled') {
        outcome = polled;
        break;
      }
      if (Date.now() - startedAtMs > input.timeoutMs) {
        await acts.cancelFineTune({
          jobId,
          reason: `timed out after ${Math.round(input.timeoutMs / 1000)} s`,
        });
        throw ApplicationFailure.nonRetryable(`fine-tune job ${jobId} did not finish within its timeout`);
      }
      if (workflowInfo().continueAsNewSuggested) {
        await continueAsNew<typeof fineTuneWorkflow>({ ...input, jobId, startedAtMs });
      }
      await sleep(input.pollIntervalMs);
    }
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() =>
        acts.cancelFineTune({ jobId, reason: 'campaign cancelled' }),
      );
    }
    throw err;
  }

  if (outcome.status !== 'succeeded') {
    throw ApplicationFailure.nonRetryable(
      `fine-tune job ${jobId} ${outcome.status}${outcome.error ? `: ${outcome.error}` : ''}`,
      'FineTuneFailed',
    );
  }
  return acts.registerModelVersion({
    campaignId: input.campaignId,
    stage: input.stage,
    iteration: input.iteration,
    jobId,
    label: input.label,
    parentLabel: input.parent.label,
    datasetId: input.dataset.datasetId,
  });
}
