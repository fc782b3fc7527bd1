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
