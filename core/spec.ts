/**
 * The campaign spec: the YAML a user writes to launch a campaign. This file is its only home —
 * the CLI validates with it, the workflows read the parsed form, and `npm run schema` writes
 * `schemas/campaign.schema.json` from it for editors.
 *
 * Secrets never appear here: an endpoint names the environment variable holding its key.
 */
import { z } from 'zod';
import { DURATION_PATTERN } from './duration';

const positiveInt = z.number().int().positive();

/** Duration such as `30s`, `5m`, `2h` (Temporal's ms-style strings). */
const duration = z.string().regex(DURATION_PATTERN, 'a duration like "500ms", "30s", "5m", "2h" or "1d"');

export const EndpointSchema = z.strictObject({
  /** OpenAI-compatible base URL, e.g. https://api.openai.com/v1 or http://vllm:8000/v1. */
  baseURL: z.url({ protocol: /^https?$/, error: 'an http(s) URL such as http://localhost:8000/v1' }),
  /** Model name as the server knows it. */
  model: z.string().min(1),
  /** Name of the environment variable holding the API key; omit for servers without auth. */
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name such as OPENAI_API_KEY')
    .optional(),
  /** Requests in flight at once from one worker. */
  concurrency: positiveInt.max(1024).default(8),
  /** Requests per minute from one worker; omit for no limit. */
  requestsPerMinute: positiveInt.optional(),
  /** Tokens per minute (prompt + completion, estimated before the call); omit for no limit. */
  tokensPerMinute: positiveInt.optional(),
  /** Per-request timeout. */
  timeout: duration.default('120s'),
  /** Attempts inside one activity for 429/5xx/timeouts before Temporal retries the activity. */
  maxAttempts: positiveInt.max(20).default(4),
  /** Price per million tokens, for the cost estimate in status and audit. */
  pricing: z
    .strictObject({ inputPerMTok: z.number().nonnegative(), outputPerMTok: z.number().nonnegative() })
    .default({ inputPerMTok: 0, outputPerMTok: 0 }),
  /** Sampling temperature for free-text calls (guidelines); 0 = greedy. */
  temperature: z.number().min(0).max(2).default(0),
  maxTokens: positiveInt.optional(),
});
export type EndpointSpec = z.infer<typeof EndpointSchema>;

export const ROLES = ['weak', 'strong', 'judge'] as const;
export type Role = (typeof ROLES)[number];

const LocalBackendSchema = z.strictObject({
  type: z.literal('local'),
  /**
   * Shell command that trains on the dataset. It receives METEOR_DATASET_PATH, METEOR_OUTPUT_DIR,
   * METEOR_BASE_MODEL, METEOR_PARENT_ADAPTER, METEOR_JOB_KEY and METEOR_STAGE in its environment
   * and must leave the checkpoint (or adapter) in METEOR_OUTPUT_DIR.
   */
  command: z.string().min(1),
  /** Working directory of the command, relative to the spec file. */
  cwd: z.string().optional(),
  /** Extra environment for the command (not secrets: name those in `passEnv`). */
  env: z.record(z.string(), z.string()).default({}),
  /** Environment variables passed through from the worker's environment. */
  passEnv: z.array(z.string()).default([]),
  /** How often the workflow checks the job. */
  pollInterval: duration.default('2s'),
  /** Give up (and cancel the job) after this long. */
  timeout: duration.default('24h'),
});

export const FineTuneSchema = z.discriminatedUnion('type', [LocalBackendSchema]);
export type FineTuneSpec = z.infer<typeof FineTuneSchema>;

/** How a fine-tuned model is served to the next stage. */
export const DeploySchema = z
  .strictObject({
    /**
     * `vllm-lora`: load the checkpoint as a LoRA adapter on the weak endpoint
     * (POST {baseURL}/load_lora_adapter) and call it by its adapter name.
     * `none`: keep calling the weak endpoint's model (e.g. you deploy out of band).
     */
    type: z.enum(['vllm-lora', 'none']).default('vllm-lora'),
  })
  .default({ type: 'vllm-lora' });

export const DistillStageSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Questions per batch activity. */
    batchSize: positiveInt.max(500).default(25),
    /** Batch activities in flight at once; default fills the endpoints' concurrency twice over. */
    parallelBatches: positiveInt.max(200).optional(),
    /** Include the guideline in the SFT prompt (default: question → answer, as the paper's code). */
    includeGuidelineInSft: z.boolean().default(false),
  })
  .default({ enabled: true, batchSize: 25, includeGuidelineInSft: false });
export type DistillStageSpec = z.infer<typeof DistillStageSchema>;

export const BudgetSchema = z
  .strictObject({
    /**
     * Fail the campaign when its estimated spend (LLM calls at `pricing`) passes this: no new
     * batch starts once a stage's progress shows it (about every 1% of the stage).
     */
    maxCostUsd: z.number().positive().optional(),
  })
  .default({});

export const CampaignSpecSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,47}$/, 'lower-case letters, digits and dashes, at most 48 characters'),
  /** The expertise the campaign builds, used in prompts: "Kubernetes operations". */
  domain: z.string().min(3).max(200),
  description: z.string().optional(),
  questions: z.strictObject({
    /** JSONL files, relative to the spec file: {question, id?, title?, reference?} per line. */
    train: z.string().min(1),
    eval: z.string().min(1).optional(),
  }),
  models: z.strictObject({
    weak: EndpointSchema,
    strong: EndpointSchema,
    judge: EndpointSchema.optional(),
  }),
  stages: z
    .strictObject({
      distill: DistillStageSchema,
    })
    .default({ distill: { enabled: true, batchSize: 25, includeGuidelineInSft: false } }),
  fineTune: FineTuneSchema,
  deploy: DeploySchema,
  budget: BudgetSchema,
});

export type CampaignSpec = z.infer<typeof CampaignSpecSchema>;
/** What a user may write: defaults not yet applied. */
export type CampaignSpecInput = z.input<typeof CampaignSpecSchema>;
