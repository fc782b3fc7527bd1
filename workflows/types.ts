/**
 * The small values that cross the workflow boundary: ids, counts and summaries only.
 * Texts and datasets stay in Postgres and the artifact store.
 */

export type StageName = 'distill';
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

/** What the campaign workflow needs from the spec, loaded once by an activity. */
export interface CampaignPlan {
  campaignId: string;
  domain: string;
  trainTotal: number;
  evalTotal: number;
  distill: { enabled: boolean; batchSize: number; parallelBatches: number };
  fineTune: { backend: string; pollIntervalMs: number; timeoutMs: number };
  maxCostUsd: number | null;
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
}

export interface CampaignStatus {
  campaignId: string;
  workflowId: string;
  state: CampaignRunState;
  /** Pause was asked for; in-flight batches are finishing. */
  pauseRequested: boolean;
  stage: StageName | null;
  iteration: number | null;
  stages: StageProgress[];
  costUsd: number;
  lineage: ModelRef[];
  error: string | null;
}

export interface DistillInput {
  campaignId: string;
  iteration: number;
  modelIn: ModelRef;
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
  };
  /** Continue-as-new once history passes this many events (tests set it low). */
  maxHistoryEvents?: number;
  /** Stop starting batches, and fail once they drain, when the stage's spend passes this. */
  maxCostUsd?: number | null;
}

export interface DatasetRef {
  datasetId: string;
  rows: number;
  sha256: string;
  uri: string;
}

export interface DistillResult {
  records: number;
  dataset: DatasetRef;
  costUsd: number;
}

export interface FineTuneInput {
  campaignId: string;
  stage: StageName;
  iteration: number;
  dataset: DatasetRef;
  parent: ModelRef;
  label: string;
  pollIntervalMs: number;
  timeoutMs: number;
  /** Carried across continue-as-new. */
  jobId?: string;
  startedAtMs?: number;
}

export interface BatchResult {
  processed: number;
  created: number;
  skipped: number;
  /**
   * The stage run's totals from the database after this batch (truth, not a sum of attempts);
   * only when asked for, since counting the whole stage after every batch would grow with its square.
   */
  stageTotals: { records: number; costUsd: number } | null;
}
