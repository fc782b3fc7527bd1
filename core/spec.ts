/**
 * The campaign spec: the YAML a user writes to launch a campaign. This file is its only home —
 * the CLI validates with it, the workflows read the parsed form, and `npm run schema` writes
 * `schemas/campaign.schema.json` from it for editors (the `.describe()` texts are the hover help).
 *
 * Secrets never appear here: an endpoint names the environment variable holding its key.
 */
import { z } from 'zod';
import { ARTIFACTS_URI_PATTERN } from './artifacts/uri';
import { DURATION_PATTERN } from './duration';
import { FineTuneSchema } from './finetune-spec';
import { httpUrl } from './http-url';

export { FineTuneSchema, type FineTuneSpec } from './finetune-spec';

const positiveInt = z.number().int().positive();

/** Duration such as `30s`, `5m`, `2h` (Temporal's ms-style strings). */
const duration = z.string().regex(DURATION_PATTERN, 'a duration like "500ms", "30s", "5m", "2h" or "1d"');

export const EndpointSchema = z
  .strictObject({
    baseURL: httpUrl('http://localhost:8000/v1', 'apiKeyEnv').describe(
      'OpenAI-compatible base URL, e.g. https://api.openai.com/v1 or http://vllm:8000/v1',
    ),
    model: z.string().min(1).describe('Model name as the server knows it'),
    apiKeyEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name such as OPENAI_API_KEY')
      .optional()
      .describe(
        'Name of the environment variable holding the API key (never the key); omit for servers without auth',
      ),
    concurrency: positiveInt
      .max(1024)
      .default(8)
      .describe('Requests in flight at once, across all workers (the endpoint is baseURL + model)'),
    requestsPerMinute: positiveInt
      .optional()
      .describe('Requests per minute, across all workers (bursts of 10 s worth); omit for no limit'),
    tokensPerMinute: positiveInt
      .optional()
      .describe(
        'Tokens per minute across all workers (prompt + max_tokens × n, estimated before the call); omit for no limit',
      ),
    timeout: duration.default('120s').describe('Timeout of one request'),
    maxAttempts: positiveInt
      .max(20)
      .default(4)
      .describe(
        'Attempts inside one activity for 429/5xx/timeouts before Temporal retries the activity; while the ' +
          'endpoint answers nobody they do not run out (see outage.pauseAfter)',
      ),
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

/** The weak model's endpoint also names the weights its fine-tunes start from. */
export const WeakEndpointSchema = EndpointSchema.extend({
  weights: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Weights the trainer starts from: a Hugging Face id (meta-llama/Llama-3.1-8B-Instruct) or a folder ' +
        'the trainer sees; default: `model` (what vLLM serves under the id it loaded)',
    ),
}).describe('The model being evolved (e.g. vLLM with --enable-lora)');
export type WeakEndpointSpec = z.infer<typeof WeakEndpointSchema>;

export const ROLES = ['weak', 'strong', 'judge'] as const;
export type Role = (typeof ROLES)[number];

export const DeploySchema = z
  .strictObject({
    type: z
      .enum(['vllm-lora', 'manual', 'none'])
      .default('vllm-lora')
      .describe(
        'vllm-lora: load each checkpoint as a LoRA adapter on the weak endpoint (POST {baseURL}/load_lora_adapter) ' +
          'and call it by its adapter name; manual: after each fine-tune the campaign waits until you serve the ' +
          'checkpoint yourself and name it with `meteorctl model register CAMPAIGN_ID LABEL --served-model NAME`; ' +
          "none: keep calling the weak endpoint's model (no evaluation: every version would be M0)",
      ),
    pathMap: z
      .array(
        z.strictObject({
          from: z
            .string()
            .regex(/^\//, 'an absolute path prefix')
            .describe('Prefix of the adapter path as jobs write it'),
          to: z
            .string()
            .regex(/^\//, 'an absolute path prefix')
            .describe('The same folder as the vLLM host sees it'),
        }),
      )
      .default([])
      .describe('Adapter paths as the vLLM host sees them: the first matching prefix is replaced'),
  })
  .default({ type: 'vllm-lora', pathMap: [] })
  .describe('How a fine-tuned model is served to the next stage');

/** Share of a stage's questions that may fail for good before the stage fails (`maxFailedFraction`). */
export const DEFAULT_MAX_FAILED_FRACTION = 0.02;

/** Options every batched stage has. */
const batching = {
  enabled: z.boolean().default(true),
  // 100 for distill: per-batch orchestration (activity task, heartbeats, history events) is then
  // spread over enough calls to be small beside them; pause still lands between batches.
  batchSize: positiveInt.max(500).default(100).describe('Questions per batch activity'),
  parallelBatches: positiveInt
    .max(200)
    .optional()
    .describe("Batch activities in flight at once; the default fills the endpoints' concurrency twice over"),
  maxCostUsd: z
    .number()
    .positive()
    .optional()
    .describe(
      'Budget of this stage in USD (all its iterations): no new call starts once its spend reaches this ' +
        'and the campaign pauses; raise it with `meteorctl campaign resume ID --max-cost-usd N --stage S`',
    ),
  maxFailedFraction: z
    .number()
    .min(0)
    .max(1)
    // Optional rather than defaulted, so the stages' own defaults need not repeat it.
    .optional()
    .describe(
      "Share of the stage's questions that may be given up on (rejected 400/413/422, retries exhausted, " +
        'replies that never parse) before the stage fails; default 0.02',
    ),
};

export const DistillStageSchema = z
  .strictObject({
    ...batching,
    includeGuidelineInSft: z
      .boolean()
      .default(false)
      .describe("Put the guideline in the SFT prompt (default: question → answer, as the paper's code)"),
  })
  .default({ enabled: true, batchSize: 100, includeGuidelineInSft: false })
  .describe('Stage 1: weak-to-strong guideline distillation');
export type DistillStageSpec = z.infer<typeof DistillStageSchema>;

export const AssessStageSchema = z
  .strictObject({
    ...batching,
    batchSize: positiveInt.max(500).default(10).describe('Questions per batch activity'),
    iterations: positiveInt
      .max(20)
      .default(1)
      .describe('Assess → fine-tune rounds; each uses the model the last one made'),
    maxRounds: positiveInt
      .max(10)
      .default(3)
      .describe("Answers per question at most: the first, then re-answers after the critic's feedback"),
    includeCritiques: z
      .boolean()
      .default(false)
      .describe(
        'Also train on critique examples (answer → verdict and feedback), the self-assessment ability',
      ),
    unsolved: z
      .enum(['drop', 'distilled-answer'])
      .default('drop')
      .describe('Questions never answered correctly: leave out, or train on the Stage-1 strong answer'),
    verdictAttempts: positiveInt
      .max(5)
      .default(3)
      .describe('Asks of the critic before a verdict counts as unparseable'),
  })
  .default({
    enabled: true,
    batchSize: 10,
    iterations: 1,
    maxRounds: 3,
    includeCritiques: false,
    unsolved: 'drop',
    verdictAttempts: 3,
  })
  .describe('Stage 2: self-assessment with the strong model as critic');
export type AssessStageSpec = z.infer<typeof AssessStageSchema>;

export const PREFERENCE_LOSSES = ['dpo', 'simpo', 'orpo', 'kto', 'margin-ranking'] as const;

export const ContrastStageSchema = z
  .strictObject({
    ...batching,
    batchSize: positiveInt.max(500).default(10).describe('Questions per batch activity'),
    iterations: positiveInt.max(20).default(1).describe('Contrast → fine-tune rounds'),
    method: z
      .enum(['beam', 'best-of-n'])
      .default('beam')
      .describe(
        "High-compute decode: vLLM beam search, or best-of-N sampling ranked by the model's own critique",
      ),
    beamWidth: positiveInt.max(64).default(10),
    lengthPenalty: z.number().default(1),
    samples: positiveInt.max(64).default(8).describe('N of best-of-N'),
    sampleTemperature: z.number().min(0).max(2).default(0.8),
    maxSimilarity: z
      .number()
      .min(0)
      .max(1)
      .default(0.9)
      .describe(
        'Pairs whose chosen and rejected outputs are at least this similar (token Jaccard) are dropped',
      ),
    requireSelfCritique: z
      .boolean()
      .default(false)
      .describe("Keep only pairs the model's own critique agrees with (chosen better than rejected)"),
    loss: z
      .enum(PREFERENCE_LOSSES)
      .default('dpo')
      .describe(
        "Preference loss for the trainer: DPO, SimPO, ORPO, KTO, or the official code's margin ranking",
      ),
  })
  .default({
    enabled: true,
    batchSize: 10,
    iterations: 1,
    method: 'beam',
    beamWidth: 10,
    lengthPenalty: 1,
    samples: 8,
    sampleTemperature: 0.8,
    maxSimilarity: 0.9,
    requireSelfCritique: false,
    loss: 'dpo',
  })
  .describe('Stage 3: self-improvement by contrasting high-compute and greedy decodes');
export type ContrastStageSpec = z.infer<typeof ContrastStageSchema>;

export const EvaluateStageSchema = z
  .strictObject({
    ...batching,
    batchSize: positiveInt.max(500).default(8).describe('Held-out questions per batch activity'),
    bootstrapResamples: positiveInt.min(100).max(100_000).default(2000),
    seed: z.number().int().default(20241118).describe('Seed of the bootstrap resampling'),
    judgeAttempts: positiveInt
      .max(5)
      .default(3)
      .describe('Asks of the judge before a judgment counts as unparseable'),
    selfCorrection: z
      .boolean()
      .default(true)
      .describe(
        "SCoRe's self-correction probe: each model revises its answer to every held-out question after an " +
          'instruction that does not say whether it was right, and the strong model judges both attempts ' +
          '(Acc@t1, Acc@t2, Δ, Δi→c, Δc→i in the report); 3 calls per model and question',
      ),
  })
  .default({
    enabled: true,
    batchSize: 8,
    bootstrapResamples: 2000,
    seed: 20241118,
    judgeAttempts: 3,
    selfCorrection: true,
  })
  .describe(
    "Pairwise evaluation of each stage's final model against the base model on the held-out questions",
  );
export type EvaluateStageSpec = z.infer<typeof EvaluateStageSchema>;

export const ArtifactsSchema = z
  .strictObject({
    uri: z
      .string()
      .regex(ARTIFACTS_URI_PATTERN, 'file:///<shared dir> or s3://<bucket>/<prefix>')
      .describe(
        'Where datasets and adapters are kept, the same for every worker: file:///<dir> on a filesystem every ' +
          'machine mounts at that path, or s3://<bucket>/<prefix> on an S3-compatible store (endpoint from ' +
          'AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, credentials from the standard AWS variables)',
      ),
  })
  .describe(
    "The artifact store; default: METEOR_ARTIFACTS_URI, else file:// under the worker's artifacts folder",
  );

export const BudgetSchema = z
  .strictObject({
    maxCostUsd: z
      .number()
      .positive()
      .optional()
      .describe(
        'Budget of the campaign in USD (LLM calls at `pricing`): no new call starts once the spend reaches ' +
          'it (calls in flight finish) and the campaign pauses; raise it with `meteorctl campaign resume ID ' +
          '--max-cost-usd N`',
      ),
  })
  .default({});

export const OutageSchema = z
  .strictObject({
    pauseAfter: duration
      .default('10m')
      .describe(
        'An endpoint that keeps failing (connection refused, 429, 5xx, timeouts) without one success for this ' +
          'long pauses the campaign, with the endpoint and the last error as the reason',
      ),
    probeEvery: duration
      .default('30s')
      .describe(
        'While paused for an outage, the endpoint is probed (GET /models) this often, backing off to ' +
          'ten times as long; the campaign resumes once it answers (or on `meteorctl campaign resume`)',
      ),
  })
  .default({ pauseAfter: '10m', probeEvery: '30s' })
  .describe('What an endpoint that stays down does to the campaign');

export const CampaignSpecSchema = z
  .strictObject({
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
      weak: WeakEndpointSchema,
      strong: EndpointSchema.describe('Teacher and critic, GPT-4-class'),
      judge: EndpointSchema.optional().describe('Pairwise judge of the evaluation'),
    }),
    stages: z
      .strictObject({
        distill: DistillStageSchema,
        assess: AssessStageSchema,
        contrast: ContrastStageSchema,
        evaluate: EvaluateStageSchema,
      })
      .default({
        distill: DistillStageSchema.parse(undefined),
        assess: AssessStageSchema.parse(undefined),
        contrast: ContrastStageSchema.parse(undefined),
        evaluate: EvaluateStageSchema.parse(undefined),
      }),
    fineTune: FineTuneSchema,
    deploy: DeploySchema,
    budget: BudgetSchema,
    outage: OutageSchema,
    artifacts: ArtifactsSchema.optional(),
  })
  .superRefine((spec, ctx) => {
    // The evaluation needs a judge and held-out questions; say so at launch, not days later.
    if (!spec.stages.evaluate.enabled) return;
    if (spec.deploy.type === 'none') {
      // Every version would be called by the weak model's own name: M0 judged against itself.
      ctx.addIssue({
        code: 'custom',
        path: ['deploy', 'type'],
        message:
          "'none' serves every model version under models.weak.model, so the evaluation would compare M0 " +
          "with itself: use vllm-lora, or 'manual' (register each version's served name with `meteorctl model " +
          'register`), or set stages.evaluate.enabled: false',
      });
    }
    if (!spec.models.judge) {
      ctx.addIssue({
        code: 'custom',
        path: ['models', 'judge'],
        message: 'required while stages.evaluate is enabled (or set stages.evaluate.enabled: false)',
      });
    }
    if (!spec.questions.eval) {
      ctx.addIssue({
        code: 'custom',
        path: ['questions', 'eval'],
        message: 'required while stages.evaluate is enabled (or set stages.evaluate.enabled: false)',
      });
    }
  });

export type CampaignSpec = z.infer<typeof CampaignSpecSchema>;
/** What a user may write: defaults not yet applied. */
export type CampaignSpecInput = z.input<typeof CampaignSpecSchema>;
