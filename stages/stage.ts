/**
 * What a stage is: one definition, in its own folder (stages/<name>/index.ts), registered in
 * stages/registry.ts. The campaign runs the registered stages in order; everything else that
 * differs between stages — the spec options, the batch work, the records, the audit, the training
 * rows — is read from here, never from a table keyed by stage name.
 */
import type { z } from 'zod';
import type { ActivityDeps } from '../activities/context';
import type { PreferenceExample, SftExample } from '../core/dataset-formats';
import type { Db } from '../core/db/connection';
import type { TwoAttempts } from '../core/evaluation/self-correction';
import type { JsonSchemaFormat } from '../core/llm/types';
import type { Role } from '../core/spec';
import type { BatchInput, BatchResult, PreferenceLoss } from '../workflows/types';
import type { RowFilterSpec } from './options';

/** The options every stage has (stages/options.ts `batching`, plus `iterations` where it repeats). */
export interface BaseStageOptions {
  enabled: boolean;
  batchSize: number;
  parallelBatches?: number | undefined;
  maxCostUsd?: number | undefined;
  maxFailedFraction?: number | undefined;
  /** Rounds of the stage, each ending in a fine-tune; 1 when the stage has no such option. */
  iterations?: number | undefined;
  /** A training stage's row filter (stages/options.ts `training`). */
  filter?: RowFilterSpec | undefined;
}

/** Where a training stage's rows come from, for one iteration. */
export interface ExamplesInput<Options> {
  db: Db;
  campaignId: string;
  domain: string;
  iteration: number;
  options: Options;
  /** Only these questions' rows (the row filter scores a batch's); all when absent. */
  questionIds?: readonly string[];
}

/**
 * A training example and the question it came from: the row filter keys its scores by question
 * and the example's place among that question's examples. (The trainer's line leaves it out.)
 */
export type FromQuestion<E> = E & { questionId: string };

/** What a stage's fine-tune trains on: SFT rows, preference pairs (with a loss), or nothing. */
export type StageDataset<Options> =
  | { kind: 'sft'; examples(input: ExamplesInput<Options>): AsyncGenerator<FromQuestion<SftExample>> }
  | {
      kind: 'preference';
      examples(input: ExamplesInput<Options>): AsyncGenerator<FromQuestion<PreferenceExample>>;
      loss(options: Options): PreferenceLoss;
    }
  | null;

export type BatchActivity = (input: BatchInput) => Promise<BatchResult>;

/**
 * A kind of request a stage sends to a role, with the parameters a provider may refuse: what the
 * launch's canary sends once per role before anything is created (client/canary.ts).
 */
export interface StageRequest {
  role: Role;
  purpose: string;
  jsonSchema?: JsonSchemaFormat;
  /** The method's temperature (0: greedy); absent: the endpoint's `temperature`. */
  temperature?: number;
  n?: number;
  extraBody?: Record<string, unknown>;
  /** The stage option that sets a parameter here (e.g. `method`), named in the canary's advice. */
  option?: string;
}

export interface StageDefinition<
  Name extends string = string,
  Schema extends z.ZodType<BaseStageOptions> = z.ZodType<BaseStageOptions>,
  Dataset extends StageDataset<z.output<Schema>> = StageDataset<z.output<Schema>>,
> {
  /** The key under `stages` in the spec, the `--stage` value, and the prefix of `<name>Batch`. */
  name: Name;
  /** The questions it works on: the training split, or the held-out one (the evaluation). */
  questions: 'train' | 'eval';
  /** `stages.<name>` in the spec, defaults included (its `.describe()` texts are the editor help). */
  options: Schema;
  /** The batch activity `<name>Batch` (activities/batch.ts runQuestionBatch does the common part). */
  activities(deps: ActivityDeps): Record<`${Name}Batch`, BatchActivity>;
  /** What the stage's records say, read from its own tables. */
  records: {
    /** Records of one iteration (the progress's `records`). */
    count(db: Db, campaignId: string, iteration: number): Promise<number>;
    /** Figures kept in `stage_runs.metrics` when an iteration ends. */
    metrics(db: Db, campaignId: string, iteration: number): Promise<Record<string, number>>;
    /** One JSON object per record (all iterations), with the ids of the LLM calls behind it. */
    audit(db: Db, campaignId: string): AsyncGenerator<Record<string, unknown>>;
    /**
     * A stage whose model answers a question twice (stage 2: before and after feedback): each
     * question's two attempts, which the report turns into SCoRe's self-correction metrics.
     */
    attempts?(db: Db, campaignId: string, iteration: number): Promise<TwoAttempts[]>;
  };
  /** The rows its fine-tune trains on; null when the stage makes no model version. */
  dataset: Dataset;
  /** The kinds of request it sends with these options (the launch's canary sends each once). */
  requests(options: z.output<Schema>): StageRequest[];
}

/** Keeps a definition's literal name and dataset kind in its type (what the registry's types read). */
export function defineStage<
  const Name extends string,
  Schema extends z.ZodType<BaseStageOptions>,
  const Dataset extends StageDataset<z.output<Schema>>,
>(definition: StageDefinition<Name, Schema, Dataset>): StageDefinition<Name, Schema, Dataset> {
  return definition;
}
