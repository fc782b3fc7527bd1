/**
 * Signals and queries, shared by the workflows and their clients (meteorctl, the Temporal CLI
 * and UI). The names are fixed: `pause`, `resume`, `status`.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { CampaignStatus, StageProgress } from './types';

export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
export const statusQuery = defineQuery<CampaignStatus>('status');

/** Stage workflow → campaign workflow: progress of the running stage (throttled to ~100 per stage). */
export const stageProgressSignal = defineSignal<[StageProgress]>('stageProgress');
/** Stage workflow state for its own query (visible in the Temporal UI). */
export const stageStatusQuery = defineQuery<StageProgress>('stageStatus');

/**
 * CLI → fine-tune workflow (deploy: manual): the served name of the version it waits for.
 * `label` guards against registering a name for the wrong version.
 */
export const modelRegisteredSignal =
  defineSignal<[{ label: string; servedModel: string }]>('modelRegistered');
/** Fine-tune workflow: the version it waits to have registered, or null. */
export const awaitingRegistrationQuery = defineQuery<{ label: string; checkpointUri: string } | null>(
  'awaitingRegistration',
);
