/**
 * The small values that cross the workflow boundary: ids, counts and summaries only.
 * Texts and datasets stay in Postgres and the artifact store.
 */

import type { StageName, TrainingStage } from '../stages/registry';

// Types only: the registry's values are worker-side; workflows learn the stages from the plan.
export type { StageName, TrainingStage };
export type PreferenceLoss = 'dpo' | 'simpo' | 'orpo' | 'kto' | 'margin-ranking';

export type CampaignRunState = 'running' | 'paused' | 'completed' | 'failed' | 'cancelled';

/** A model version in the campaign's lineage. */
export interface ModelRef {
  label: string; // M0, M1, …
  parent: string | null;
  servedModel: string; // the name to send as `model` to the weak endpoint
  stage: StageName | null;
  iteration: number | null;
  datasetId: string | null;
  jobId: string | null;
}

/**
 * deploy: manual — a fine-tuned version nobody serves yet: the campaign waits until the user
 * serves the checkpoint and names it (`meteorctl model register`).
 */
export interface AwaitingRegistration {
  awaitingRegistration: { label: string; checkpointUri: string };
}

/** One registered stage as the campaign runs it (from its definition and the spec). */
export interface StagePlan {
  stage: StageName;
  enabled: boolean;
  iterations: number;
  batchSize: number;
  parallelBatches: number;
  /** The questions it works on. */
  questions: 'train' | 'eval';
  /** What its fine-tune trains on (with the preference loss); null when it makes no model version. */
  fineTune: { kind: 'sft'; loss: null } | { kind: 'preference'; loss: PreferenceLoss } | null;
}

/** What the campaign workflow needs from the spec, loaded once by an activity. */
export interface CampaignPlan {
  campaignId: string;
  domain: string;
  trainTotal: number;
  evalTotal: number;
  /** The registered stages, in the order the campaign runs them. */
  stages: StagePlan[];
  fineTune: { backend: string; queue: string; pollIntervalMs: number; timeoutMs: number };
}

export interface StageProgress {
  stage: StageName;
  iteration: number;
  status:
    'pending' | 'running' | 'paused' | 'exporting' | 'fine-tuning' | 'completed' | 'failed' | 'cancelled';
  total: number;
  done: number;
  records: number;
  costUsd: number;
  /** Questions given up on (rejected, retries exhausted, replies that never parse), unresolved. */
  failed: number;
  /** A batch of the stage being retried after a failure, or null. */
  retrying: { attempt: number; lastError: string } | null;
  /** Why the stage paused itself (budget, outage); null otherwise. */
  pauseReason?: string | null;
  /** The round of provider batches the stage waits for (endpoints in batch mode); else null. */
  providerBatches?: {
    round: number;
    batches: number;
    inProgress: number;
    requests: number;
    answered: number;
    ids: string[];
  } | null;
}

export interface CampaignStatus {
  campaignId: string;
  workflowId: string;
  state: CampaignRunState;
  /** Pause was asked for; in-flight batches are finishing. */
  pauseRequested: boolean;
  /** Why the campaign is paused: `paused by user`, a budget reached, an endpoint down; else null. */
  pauseReason: string | null;
  stage: StageName | null;
  iteration: number | null;
  stages: StageProgress[];
  costUsd: number;
  /** Questions given up on over all stages, not resolved by `campaign retry-failed`. */
  failedQuestions: number;
  lineage: ModelRef[];
  error: string | null;
}

export interface StageInput {
  campaignId: string;
  stage: StageName;
  iteration: number;
  /** The model the stage works with (training stages). */
  modelIn: ModelRef;
  /** Evaluate only: the models compared with the base model (modelIn). */
  candidates?: ModelRef[];
  /**
   * A training stage: it ends by exporting its dataset (the evaluation's summary is read from its
   * rows). Absent in runs started before the stage registry: every stage but the evaluation.
   */
  exportsDataset?: boolean;
  batchSize: number;
  parallelBatches: number;
  /** Carried across continue-as-new. */
  resume?: {
    nextBatch: number;
    done: number;
    records: number;
    costUsd: number;
    total: number;
    paused: boolean;
    halt?: BatchHalt | null;
    /** Halted batches to run again. */
    again?: number[];
    failed?: number;
    maxFailedFraction?: number | null;
    /** Batches whose questions wait for provider batches, and the round those are in. */
    deferred?: number[];
    batchRound?: number;
  };
  /** Continue-as-new once history passes this many events (tests set it low). */
  maxHistoryEvents?: number;
  /**
   * `campaign retry-failed`: run the stage's batch activity once on the questions given up on,
   * outside the campaign — no stage run bookkeeping and no dataset export.
   */
  retryFailed?: boolean;
}

/** What every stage's batch activity (`<stage>Batch`: `distillBatch`, …) takes. */
export interface BatchInput {
  campaignId: string;
  iteration: number;
  /** The served model the stage works with (training stages); the base model's (evaluate). */
  modelIn: string;
  /** Evaluate only: the models compared with the base, by label and served name. */
  candidates?: Array<{ label: string; servedModel: string }>;
  /** Position of the first question of the batch within its split, and how many. */
  offset: number;
  limit: number;
  /** Also count the whole stage's records and cost (see BatchResult.stageTotals). */
  withTotals?: boolean;
  /** Work on the stage iteration's unresolved failed questions instead of offset/limit. */
  retryFailed?: boolean;
}

export interface BatchResult {
  processed: number;
  created: number;
  skipped: number;
  /** Questions of the batch given up on (unresolved rows of `failed_questions`). */
  failed: number;
  /** The stage's `maxFailedFraction` from the spec (the activity reads the spec anyway). */
  maxFailedFraction: number;
  /**
   * The stage run's totals from the database after this batch (truth, not a sum of attempts);
   * only when asked for, since counting the whole stage after every batch would grow with its square.
   */
  stageTotals: { records: number; costUsd: number } | null;
  /** The batch stopped early and the stage must pause (budget reached, endpoint down); else null. */
  halted: BatchHalt | null;
  /**
   * Questions waiting for a call of an endpoint in batch mode: the batch runs again once the
   * stage's provider batches answered it (absent before batch mode existed).
   */
  deferred?: number;
  /**
   * A pause drained the batch (`drainStageBatches`): it started no new call and let those in flight
   * finish; it runs again, skipping what is done, on resume (absent before drains existed).
   */
  drained?: boolean;
}

/** Why a batch stopped early: the stage pauses with `reason` until resumed (or the probe succeeds). */
export interface BatchHalt {
  reason: string;
  /** An outage: the endpoint to probe (by role) and how often; null for the budget. */
  probe: { role: string; everyMs: number } | null;
}

export interface DatasetRef {
  datasetId: string;
  rows: number;
  sha256: string;
  uri: string;
}

export interface StageResult {
  records: number;
  /** Questions given up on (within the stage's maxFailedFraction). */
  failed: number;
  /** The training set (training stages); null for the evaluation. */
  dataset: DatasetRef | null;
  costUsd: number;
}

export interface FineTuneInput {
  campaignId: string;
  stage: TrainingStage;
  iteration: number;
  dataset: DatasetRef;
  parent: ModelRef;
  label: string;
  kind: 'sft' | 'preference';
  loss: PreferenceLoss | null;
  /** Task queue of the fine-tune activities (the spec's `fineTune.queue`). */
  queue: string;
  pollIntervalMs: number;
  timeoutMs: number;
  /** Carried across continue-as-new: the job and the queue that owns it. */
  job?: { jobId: string; queue: string; submitted: boolean };
  startedAtMs?: number;
}
