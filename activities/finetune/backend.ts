/**
 * A fine-tune backend: where training jobs run (a local command today; Slurm, Kubernetes and
 * fine-tuning APIs plug in here). Backends have no idempotency of their own, so each one can
 * look a job up by the platform's key before submitting — that is what makes "submit exactly
 * once" hold across retries and crashes.
 */
export interface FineTuneJobSpec {
  /** Unique per (campaign, stage, iteration): the job's name on the backend. */
  key: string;
  stage: string;
  kind: 'sft' | 'preference';
  /** Preference loss (contrast stage); null for SFT. */
  loss: string | null;
  /** trl.yaml and llamafactory.yaml for this job (core/trainer-config.ts). */
  trainerConfigDir: string;
  datasetPath: string;
  outputDir: string;
  baseModel: string;
  /** Checkpoint or adapter of the parent model, when it is a fine-tune itself. */
  parentCheckpoint: string | null;
}

export type BackendJobStatus = 'submitted' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface BackendJobState {
  status: BackendJobStatus;
  error: string | null;
  checkpointUri: string | null;
  /** New log lines since the last poll. */
  logLines: string[];
}

export interface FineTuneBackend {
  readonly name: string;
  /** The job submitted earlier under this key, if any. */
  lookup(key: string, outputDir: string): Promise<{ externalId: string } | null>;
  submit(job: FineTuneJobSpec): Promise<{ externalId: string }>;
  poll(externalId: string, outputDir: string, logLinesSeen: number): Promise<BackendJobState>;
  cancel(externalId: string, outputDir: string): Promise<void>;
}
