/**
 * The campaign spec: the YAML a user writes to launch a campaign. This file is its only home —
 * the CLI validates with it, the workflows read the parsed form, and `npm run schema` writes
 * `schemas/campaign.schema.json` from it for editors (the `.describe()` texts are the hover help).
 *
 * Secrets never appear here: an endpoint names the environment variable holding its key.
 */
import { z } from 'zod';
import { DURATION_PATTERN } from './duration';

const positiveInt = z.number().int().positive();

/** Duration such as `30s`, `5m`, `2h` (Temporal's ms-style strings). */
const duration = z.string().regex(DURATION_PATTERN, 'a duration like "500ms", "30s", "5m", "2h" or "1d"');

export const EndpointSchema = z
  .strictObject({
    baseURL: z
      .url({ protocol: /^https?$/, error: 'an http(s) URL such as http://localhost:8000/v1' })
      .describe('OpenAI-compatible base URL, e.g. https://api.openai.com/v1 or http://vllm:8000/v1'),
    model: z.string().min(1).describe('Model name as the server knows it'),
    apiKeyEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name such as OPENAI_API_KEY')
      .optional()
      .describe(
        'Name of the environment variable holding the API key (never the key); omit for servers without auth',
      ),
    concurrency: positiveInt.max(1024).default(8).describe('Requests in flight at once, per worker process'),
    requestsPerMinute: positiveInt
      .optional()
      .describe('Requests per minute, per worker process; omit for no limit'),
    tokensPerMinute: positiveInt
      .optional()
      .describe(
        'Tokens per minute (prompt + completion, estimated before the call), per worker; omit for no limit',
      ),
    timeout: duration.default('120s').describe('Timeout of one request'),
    maxAttempts: positiveInt
      .max(20)
      .default(4)
      .describe('Attempts inside one activity for 429/5xx/timeouts before Temporal retries the activity'),
    pricing: z
      .strictObject({ inputPerMTok: z.number().nonnegative(), outputPerMTok: z.number().nonnegative() })
      .default({ inputPerMTok: 0, outputPerMTok: 0 })
      .describe('USD per million tokens, for the cost estimate in status, audit and the budget'),
    temperature: z
      .number()
      .min(0)
      .max(2)
      .default(0)
      .describe('Sampling temperature for free-text calls (guidelines); 0 = greedy'),
    maxTokens: positiveInt.optional().describe('max_tokens of each request; omit for the server default'),
  })
  .describe('An OpenAI-compatible model endpoint');
export type EndpointSpec = z.infer<typeof EndpointSchema>;

export const ROLES = ['weak', 'strong', 'judge'] as const;
export type Role = (typeof ROLES)[number];

const LocalBackendSchema = z
  .strictObject({
    type: z.literal('local'),
    command: z
      .string()
      .min(1)
      .describe(
        'Shell command that trains on the dataset. It gets METEOR_DATASET_PATH, METEOR_OUTPUT_DIR, ' +
          'METEOR_BASE_MODEL, METEOR_PARENT_ADAPTER, METEOR_JOB_KEY and METEOR_STAGE in its environment ' +
          'and must leave the checkpoint (or adapter) in METEOR_OUTPUT_DIR',
      ),
    cwd: z.string().optional().describe('Working directory of the command, relative to the spec file'),
    env: z
      .record(z.string(), z.string())
      .default({})
      .describe('Extra environment for the command (not secrets: name those in passEnv)'),
    passEnv: z
      .array(z.string())
      .default([])
      .describe("Environment variables passed through from the worker's environment"),
    pollInterval: duration.default('2s').describe('How often the workflow checks the job'),
    timeout: duration.default('24h').describe('Give up (and cancel the job) after this long'),
  })
  .describe('Run a command on the worker machine, detached, once per (campaign, stage, iteration)');

export const FineTuneSchema = z.discriminatedUnion('type', [LocalBackendSchema]);
export type FineTuneSpec = z.infer<typeof FineTuneSchema>;

export const DeploySchema = z
  .strictObject({
    type: z
      .enum(['vllm-lora', 'none'])
      .default('vllm-lora')
      .describe(
        'vllm-lora: load each checkpoint as a LoRA adapter on the weak endpoint (POST {baseURL}/load_lora_adapter) ' +
          "and call it by its adapter name; none: keep calling the weak endpoint's model (you deploy out of band)",
      ),
  })
  .default({ type: 'vllm-lora' })
  .describe('How a fine-tuned model is served to the next stage');

export const DistillStageSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    batchSize: positiveInt.max(500).default(25).describe('Questions per batch activity'),
    parallelBatches: positiveInt
      .max(200)
      .optional()
      .describe(
        "Batch activities in flight at once; the default fills the endpoints' concurrency twice over",
      ),
    includeGuidelineInSft: z
      .boolean()
      .default(false)
      .describe("Put the guideline in the SFT prompt (default: question → answer, as the paper's code)"),
  })
  .default({ enabled: true, batchSize: 25, includeGuidelineInSft: false })
  .describe('Stage 1: weak-to-strong guideline distillation');
export type DistillStageSpec = z.infer<typeof DistillStageSchema>;

export const BudgetSchema = z
  .strictObject({
    maxCostUsd: z
      .number()
      .positive()
      .optional()
      .describe(
        'Fail the campaign when its estimated spend (LLM calls at `pricing`) passes this; no new batch ' +
          "starts once a stage's progress shows it (about every 1% of the stage)",
      ),
  })
  .default({});

export const CampaignSpecSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,47}$/, 'lower-case letters, digits and dashes, at most 48 characters')
    .describe('Campaign name; campaign ids are <name>-<6 hex>'),
  domain: z
    .string()
    .min(3)
    .max(200)
    .describe('The expertise the campaign builds, used in prompts, e.g. "Kubernetes operations"'),
  description: z.string().optional(),
  questions: z
    .strictObject({
      train: z.string().min(1).describe('Training questions (JSONL), relative to the spec file'),
      eval: z.string().min(1).optional().describe('Held-out questions (JSONL), relative to the spec file'),
    })
    .describe('JSONL files with one {"question", "id"?, "title"?, "reference"?} per line'),
  models: z.strictObject({
    weak: EndpointSchema.describe('The model being evolved (e.g. vLLM with --enable-lora)'),
    strong: EndpointSchema.describe('Teacher and critic, GPT-4-class'),
    judge: EndpointSchema.optional().describe('Pairwise judge of the evaluation'),
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
