/**
 * A fine-tune backend: where training jobs run (a process on a worker's host, Slurm, Kubernetes).
 * Backends have no idempotency of their own, so each one looks a job up by its stable name
 * before submitting — with the claimed job row (activities/finetune/index.ts) that is what makes
 * "submit exactly once" hold across retries and crashes.
 */
import type { PreferenceLoss, TrainingStage } from '../../workflows/types';

/** One job's folder, as this worker sees it and as the job (the cluster) sees it. */
export interface JobDir {
  /** Where the worker reads and writes the job's files (dataset, config, log, output). */
  worker: string;
  /** The same folder as the job sees it (equal to `worker` unless the spec maps paths). */
  job: string;
}

export interface FineTuneJobSpec {
  /** `<campaignId>:<stage>:<iteration>`, unique per fine-tune. */
  key: string;
  /** The job's name on the backend: stable, RFC 1123 (≤ 63 chars, [a-z0-9-]), derived from the key. */
  name: string;
  campaignId: string;
  stage: TrainingStage;
  iteration: number;
  kind: 'sft' | 'preference';
  loss: PreferenceLoss | null;
  dir: JobDir;
  /** The trainer's METEOR_* environment; paths in it are as the job sees them. No secrets. */
  env: Record<string, string>;
}

export type BackendJobStatus = 'submitted' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface BackendJobState {
  status: BackendJobStatus;
  /** The backend's own words for the state, e.g. `PENDING (Priority)` or `PREEMPTED, requeued`. */
  detail: string | null;
  /** Why it failed or was cancelled: exit code, reason and the last log lines. */
  error: string | null;
  exitCode: number | null;
  /** Log lines after the first `logLinesSeen` (the job's combined output). */
  logLines: string[];
}

export interface SubmitResult {
  externalId: string;
  /** What was submitted (the Slurm script, the Job manifest), kept with the job row. No secrets. */
  submitted: string | null;
}

export interface FineTuneBackend {
  /** `local`, `slurm` or `kubernetes`. */
  readonly name: string;
  /** Problems that stop a launch, each naming the spec field to fix; [] when the backend is usable. */
  preflight(): Promise<string[]>;
  /** The job submitted earlier under this name, if any (running or finished). */
  lookup(job: FineTuneJobSpec): Promise<{ externalId: string } | null>;
  submit(job: FineTuneJobSpec): Promise<SubmitResult>;
  poll(externalId: string, job: FineTuneJobSpec, logLinesSeen: number): Promise<BackendJobState>;
  /** Stops the job (idempotent: a finished or unknown job is left alone). */
  cancel(externalId: string, job: FineTuneJobSpec): Promise<void>;
}

/** A backend job name from a key: lower-case RFC 1123 label, ≤ 63 characters, stable. */
export function jobName(key: string, hash: (s: string) => string): string {
  const slug = key
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const name = `meteor-${slug}`;
  if (name.length <= 63) return name;
  // Long keys: keep a readable prefix and make it unique with a hash of the whole key.
  const h = hash(key).slice(0, 10);
  return `${name.slice(0, 63 - h.length - 1).replace(/-+$/, '')}-${h}`;
}
