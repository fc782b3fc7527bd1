/**
 * One fine-tune: prepare the job (its folder and the queue that owns it), submit it exactly once
 * (the activity claims the job row and looks the job up on its backend before submitting), poll
 * it on a durable timer for as long as it runs — days cost nothing but a timer — then register
 * and deploy the new model version (deploy: manual waits for `meteorctl model register`). Cancelling this workflow cancels the job on its backend,
 * also while the submit is still in flight.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { awaitingRegistrationQuery, modelRegisteredSignal } from './messages';
import { REMOTE_RETRY } from './retry';
import type { FineTuneInput, ModelRef } from './types';

const activitiesOn = (taskQueue: string) =>
  proxyActivities<Activities>({ taskQueue, startToCloseTimeout: '5m', retry: REMOTE_RETRY });

/** Registering and deploying the model runs with the campaign (it talks to the weak endpoint). */
const campaignActs = proxyActivities<Activities>({ startToCloseTimeout: '5m', retry: REMOTE_RETRY });

export async function fineTuneWorkflow(input: FineTuneInput): Promise<ModelRef> {
  let awaiting: { label: string; checkpointUri: string } | null = null;
  let servedName: string | null = null;
  setHandler(awaitingRegistrationQuery, () => awaiting);
  setHandler(modelRegisteredSignal, ({ label, servedModel }) => {
    // A name for another version (a stale command) is ignored; the CLI checks first.
    if (label === input.label) servedName = servedModel;
  });
  const startedAtMs = input.startedAtMs ?? Date.now();
  const job =
    input.job ??
    ({
      ...(await activitiesOn(input.queue).prepareFineTune({
        campaignId: input.campaignId,
        stage: input.stage,
        iteration: input.iteration,
        datasetId: input.dataset.datasetId,
        parentLabel: input.parent.label,
        kind: input.kind,
        loss: input.loss,
      })),
      submitted: false,
    } as const);
  // A `local` job's queue is its host's own: only that host can see or stop its process.
  const acts = activitiesOn(job.queue);

  let outcome: { status: string; error: string | null };
  try {
    if (!job.submitted) await acts.submitFineTune({ jobId: job.jobId });
    for (;;) {
      const polled = await acts.pollFineTune({ jobId: job.jobId });
      if (polled.status === 'succeeded' || polled.status === 'failed' || polled.status === 'cancelled') {
        outcome = polled;
        break;
      }
      if (Date.now() - startedAtMs > input.timeoutMs) {
        await acts.cancelFineTune({
          jobId: job.jobId,
          reason: `timed out after ${Math.round(input.timeoutMs / 1000)} s`,
        });
        throw ApplicationFailure.nonRetryable(`fine-tune job ${job.jobId} did not finish within its timeout`);
      }
      if (workflowInfo().continueAsNewSuggested) {
        await continueAsNew<typeof fineTuneWorkflow>({
          ...input,
          job: { ...job, submitted: true },
          startedAtMs,
        });
      }
      await sleep(input.pollIntervalMs);
    }
  } catch (err) {
    if (isCancellation(err)) {
      // Also reaches a submit still in flight: it reads the cancel flag back when it records the job.
      await CancellationScope.nonCancellable(() =>
        acts.cancelFineTune({ jobId: job.jobId, reason: 'campaign cancelled' }),
      );
    }
    throw err;
  }

  if (outcome.status !== 'succeeded') {
    throw ApplicationFailure.nonRetryable(
      `fine-tune job ${job.jobId} ${outcome.status}${outcome.error ? `: ${outcome.error}` : ''}`,
      'FineTuneFailed',
    );
  }
  const version = {
    campaignId: input.campaignId,
    stage: input.stage,
    iteration: input.iteration,
    jobId: job.jobId,
    label: input.label,
    parentLabel: input.parent.label,
    datasetId: input.dataset.datasetId,
  };
  const registered = await campaignActs.registerModelVersion(version);
  if (!('awaitingRegistration' in registered)) return registered;

  // deploy: manual — wait, at no cost and for as long as it takes, for the user to serve it.
  awaiting = registered.awaitingRegistration;
  log.info(
    `${awaiting.label} awaits its served name: serve ${awaiting.checkpointUri}, then run ` +
      `meteorctl model register ${input.campaignId} ${awaiting.label} --served-model NAME`,
  );
  await condition(() => servedName !== null);
  awaiting = null;
  const served = await campaignActs.registerModelVersion({ ...version, servedModel: servedName ?? '' });
  if ('awaitingRegistration' in served) throw new Error('registering a served name returned no model');
  return served;
}
