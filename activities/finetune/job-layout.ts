/**
 * One fine-tune job's folder and the trainer's environment: the contract between the platform,
 * every backend and the trainer (`infra/trainer/run`, or the simulator's trainer).
 *
 *   <dir>/dataset/   the exported dataset in every format (+ LLaMA-Factory's dataset_info.json)
 *   <dir>/config/    trl.yaml and llamafactory.yaml (core/trainer-config.ts)
 *   <dir>/output/    what the trainer leaves: a PEFT adapter (or full checkpoint) — the checkpoint URI
 *   <dir>/train.log  the job's output (local and Slurm; Kubernetes reads its pod's log)
 *   <dir>/metrics.jsonl  one {step, loss, learning_rate, epoch} per logging step
 *
 * The trainer also prints each metrics line to its output as `METEOR_METRICS {json}`, so every
 * backend can turn them into fine-tune events from the log alone.
 */
import path from 'node:path';
import type { PreferenceLoss, TrainingStage } from '../../workflows/types';

export const METRICS_PREFIX = 'METEOR_METRICS ';

export interface JobFiles {
  root: string;
  datasetDir: string;
  configDir: string;
  outputDir: string;
  log: string;
  metrics: string;
}

export function jobFiles(root: string): JobFiles {
  return {
    root,
    datasetDir: path.join(root, 'dataset'),
    configDir: path.join(root, 'config'),
    outputDir: path.join(root, 'output'),
    log: path.join(root, 'train.log'),
    metrics: path.join(root, 'metrics.jsonl'),
  };
}

export interface TrainerEnvInput {
  key: string;
  stage: TrainingStage;
  kind: 'sft' | 'preference';
  loss: PreferenceLoss | null;
  /** The job's folder as the job sees it. */
  jobDir: string;
  /** File name of the OpenAI-format dataset inside dataset/. */
  datasetFile: string;
  /** Served name of the parent (the simulator's trainer reads it). */
  baseModel: string;
  /** Weights the trainer starts from (Hugging Face id or folder). */
  baseWeights: string;
  /** The parent's adapter folder as the job sees it; null for a fine-tune of the base weights. */
  parentAdapter: string | null;
}

/** The METEOR_* environment every backend gives the trainer. Paths are as the job sees them. */
export function trainerEnv(input: TrainerEnvInput): Record<string, string> {
  const files = jobFiles(input.jobDir);
  return {
    METEOR_JOB_KEY: input.key,
    METEOR_STAGE: input.stage,
    METEOR_TRAINING_KIND: input.kind,
    METEOR_LOSS: input.loss ?? '',
    METEOR_JOB_DIR: files.root,
    METEOR_DATASET_PATH: path.join(files.datasetDir, input.datasetFile),
    METEOR_TRAINER_CONFIG_DIR: files.configDir,
    METEOR_OUTPUT_DIR: files.outputDir,
    METEOR_METRICS_PATH: files.metrics,
    METEOR_BASE_MODEL: input.baseModel,
    METEOR_BASE_WEIGHTS: input.baseWeights,
    METEOR_PARENT_ADAPTER: input.parentAdapter ?? '',
  };
}
