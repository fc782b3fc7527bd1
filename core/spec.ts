/**
 * The campaign spec: the YAML a user writes to launch a campaign. This file is its only home —
 * with each stage's own options in its folder (stages/<name>/options.ts) —
 * the CLI validates with it, the workflows read the parsed form, and `npm run schema` writes
 * `schemas/campaign.schema.json` from it for editors (the `.describe()` texts are the hover help).
 *
 * Secrets never appear here: an endpoint names the environment variable holding its key.
 */
import { z } from 'zod';
import { ARTIFACTS_URI_PATTERN } from './artifacts/uri';
import { DURATION_PATTERN } from './duration';
import { unstorableStrings } from './db/storable-text';
import { FineTuneSchema } from './finetune-spec';
import { httpUrl } from './http-url';
import {
  PRESETS,
  PROVIDERS,
  REASONING_EFFORTS,
  STRUCTURED_OUTPUTS,
  TOKEN_LIMIT_FIELDS,
  baseUrlOf,
  type Provider,
} from './llm/request-shape';
import { positiveInt } from '../stages/options';
import { stagesOptionsSchema, trainingStageNames } from '../stages/registry';
import type { BaseStageOptions } from '../stages/stage';

export { FineTuneSchema, type FineTuneSpec } from './finetune-spec';

/** Duration such as `30s`, `5m`, `2h` (Temporal's ms-style strings). */
const duration = z.string().regex(DURATION_PATTERN, 'a duration like "500ms", "30s", "5m", "2h" or "1d"');

/** USD per million tokens: a number ≥ 0 (zod 4 refuses Infinity and NaN). */
const pricePerMTok = z.number().nonnegative();

/** A cached-input price above the input price is a typo, not a provider's tariff: refuse it. */
function cachedAtMostInput(
  prices: { inputPerMTok: number; cachedInputPerMTok?: number | undefined },
  ctx: z.RefinementCtx,
): void {
  if (prices.cachedInputPerMTok !== undefined && prices.cachedInputPerMTok > prices.inputPerMTok) {
    ctx.addIssue({
      code: 'custom',
      path: ['cachedInputPerMTok'],
      message: `must not exceed inputPerMTok (${prices.inputPerMTok}): it is the price of prompt tokens read from the provider's cache`,
    });
  }
}

const cachedInputPerMTok = pricePerMTok.optional();

/**
 * What calls cost, per mode and token kind; core/llm/pricing.ts applies the defaults (one home:
 * stating them here as zod defaults would store derived prices in every spec).
 */
export const PricingSchema = z
  .strictObject({
    inputPerMTok: pricePerMTok.describe('USD per million prompt tokens'),
    outputPerMTok: pricePerMTok.describe('USD per million completion tokens'),
    cachedInputPerMTok: cachedInputPerMTok.describe(
      'USD per million prompt tokens the provider reports as read from its prompt cache (`usage.' +
        'prompt_tokens_details.cached_tokens`); default: inputPerMTok (no discount unless stated)',
    ),
    batch: z
      .strictObject({
        inputPerMTok: pricePerMTok.describe('USD per million prompt tokens in a batch'),
        outputPerMTok: pricePerMTok.describe('USD per million completion tokens in a batch'),
        cachedInputPerMTok: cachedInputPerMTok.describe(
          'USD per million cached prompt tokens in a batch; default: batch.inputPerMTok',
        ),
      })
      .superRefine(cachedAtMostInput)
      .optional()
      .describe(
        "Prices of calls sent through the provider's Batch API; default: half of every online price " +
          "(OpenAI's and Anthropic's 50% batch discount)",
      ),
  })
  .superRefine(cachedAtMostInput)
  .default({ inputPerMTok: 0, outputPerMTok: 0 })
  .describe(
    'USD per million tokens, for the cost of each call (`llm_calls.cost_usd`) that status, the report and the ' +
      'budget sum',
  );

/** How an endpoint in `mode: batch` sends its calls through the provider's Batch API. */
export const BatchModeSchema = z
  .strictObject({
    pollInterval: duration
      .default('1m')
      .describe('How often a submitted batch is polled, on a durable timer (no worker waits for it)'),
    maxRequests: positiveInt
      .max(50_000)
      .default(50_000)
      .describe("Requests per provider batch at most (OpenAI's limit is 50,000); more make several batches"),
    onFailure: z
      .enum(['online', 'batch'])
      .default('online')
      .describe(
        'A request a batch failed or left unanswered (expired, cancelled, an error line): online sends it ' +
          'as an online call (billed online); batch puts it in the next batch, up to maxAttempts, then online',
      ),
    maxAttempts: positiveInt
      .max(10)
      .default(2)
      .describe('Batches a request goes through (onFailure: batch) before it is sent online'),
  })
  .prefault({})
  .describe("Options of mode: batch (OpenAI's /v1/files and /v1/batches, completion window 24h)");

/** The fields of an endpoint; the schemas below add the base URL its preset implies. */
const endpointFields = {
  baseURL: httpUrl('http://localhost:8000/v1', 'apiKeyEnv')
    .optional()
    .describe(
      'OpenAI-compatible base URL, e.g. https://api.openai.com/v1 or http://vllm:8000/v1; default: the ' +
        "provider preset's (required without one, and with azure-openai)",
    ),
  provider: z
    .enum(PROVIDERS)
    .optional()
    .describe(
      'A preset for a common provider: its base URL and the request shaping it wants (tokenLimitField, ' +
        'structuredOutput, temperature for reasoning models); the fields below override it (README table)',
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
  pricing: PricingSchema,
  temperature: z
    .union([z.number().min(0).max(2), z.literal('omit')])
    .optional()
    .describe(
      'Sampling temperature for free-text calls (guidelines); 0 = greedy (default). omit: send no temperature ' +
        "at all (OpenAI's reasoning models take only the default) — greedy calls then get the endpoint's most " +
        'deterministic setting, its default, and the report says so',
    ),
  maxTokens: positiveInt
    .optional()
    .describe('Token limit of each request (sent as tokenLimitField); omit for the server default'),
  tokenLimitField: z
    .enum(TOKEN_LIMIT_FIELDS)
    .optional()
    .describe(
      'The field the token limit is sent in: max_tokens (default) or max_completion_tokens (OpenAI reasoning ' +
        'models refuse max_tokens)',
    ),
  structuredOutput: z
    .enum(STRUCTURED_OUTPUTS)
    .optional()
    .describe(
      'How structured replies (verdicts, judgments) are asked for: json_schema (response_format, default), ' +
        "json_object (JSON mode; the schema in the prompt), guided_json (vLLM's guided decoding), none (the " +
        'schema in the prompt only); every reply is validated against the schema either way',
    ),
  extraBody: z
    .record(z.string(), z.unknown())
    .optional()
    .describe('Provider-specific fields added to every request body (e.g. { top_k: 1 }); no secrets here'),
  reasoningEffort: z
    .enum(REASONING_EFFORTS)
    .optional()
    .describe('reasoning_effort of each request, for reasoning models that take it'),
  mode: z
    .enum(['online', 'batch'])
    .default('online')
    .describe(
      "online: each call is a chat completion. batch (strong and judge): a stage's calls to the endpoint are " +
        "collected and sent through the provider's Batch API at pricing.batch (half price by default), answered " +
        'within 24 h; the stage waits on durable timers and goes on with the answers',
    ),
  batch: BatchModeSchema,
};

/** Fills in the preset's base URL; without a stated or preset one, says which field to set. */
function withBaseUrl<
  T extends { baseURL?: string | undefined; provider?: Provider | undefined; model: string },
>(ep: T, ctx: z.RefinementCtx<T>): T & { baseURL: string } {
  const baseURL = baseUrlOf(ep);
  if (baseURL === null) {
    ctx.addIssue({
      code: 'custom',
      path: ['baseURL'],
      message: ep.provider
        ? `required with provider ${ep.provider}: your endpoint, such as ${PRESETS[ep.provider].baseURLExample}`
        : 'required (or name a provider preset that has one): an http(s) URL such as http://localhost:8000/v1',
    });
    return z.NEVER;
  }
  return { ...ep, baseURL };
}

export const EndpointSchema = z
  .strictObject(endpointFields)
  .transform(withBaseUrl)
  .describe('An OpenAI-compatible model endpoint');
export type EndpointSpec = z.infer<typeof EndpointSchema>;

/** The weak model's endpoint also names the weights its fine-tunes start from. */
export const WeakEndpointSchema = z
  .strictObject({
    ...endpointFields,
    weights: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Weights the trainer starts from: a Hugging Face id (meta-llama/Llama-3.1-8B-Instruct) or a folder ' +
          'the trainer sees; default: `model` (what vLLM serves under the id it loaded)',
      ),
  })
  .transform(withBaseUrl)
  .describe('The model being evolved (e.g. vLLM with --enable-lora)');
export type WeakEndpointSpec = z.infer<typeof WeakEndpointSchema>;

export const ROLES = ['weak', 'strong', 'judge', 'discriminator'] as const;
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
      discriminator: EndpointSchema.optional().describe(
        "rStar's discriminator (stages.contrast.method rstar): a second model that completes each " +
          'candidate trajectory cut at a random step; candidates whose answers agree are kept',
      ),
    }),
    // Lazy: the registry's definitions import the activities, which import this module.
    stages: z.lazy(() => stagesOptionsSchema()),
    fineTune: FineTuneSchema,
    deploy: DeploySchema,
    budget: BudgetSchema,
    outage: OutageSchema,
    artifacts: ArtifactsSchema.optional(),
  })
  .superRefine((spec, ctx) => {
    // Spec text reaches prompts, requests and the stored spec (jsonb), none of which take these.
    for (const issue of unstorableStrings(spec)) ctx.addIssue({ code: 'custom', ...issue });
    // The weak model answers from the version being trained, and rStar's discriminator inside a
    // tree search: both need answers in seconds, not within a batch's 24 h.
    for (const role of ['weak', 'discriminator'] as const) {
      if (spec.models[role]?.mode === 'batch') {
        ctx.addIssue({
          code: 'custom',
          path: ['models', role, 'mode'],
          message: `batch mode is for models.strong and models.judge; the ${role} model's calls are needed at once: use online`,
        });
      }
    }
    // rStar's mutual consistency needs its second model; say so at launch, not at stage 3.
    if (
      spec.stages.contrast.enabled &&
      spec.stages.contrast.method === 'rstar' &&
      !spec.models.discriminator
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['models', 'discriminator'],
        message:
          'required while stages.contrast.method is rstar: an endpoint (baseURL, model, like models.judge) ' +
          "whose model completes the generator's cut trajectories — a second model of about the weak " +
          "model's size; or set stages.contrast.method to best-of-n or beam",
      });
    }
    // A row filter scored by the judge needs one, whether or not the evaluation runs.
    const stages = spec.stages as Record<string, BaseStageOptions>;
    for (const name of trainingStageNames()) {
      const s = stages[name];
      if (s?.enabled && s.filter?.by === 'judge' && !spec.models.judge) {
        ctx.addIssue({
          code: 'custom',
          path: ['stages', name, 'filter', 'by'],
          message: "'judge' scores rows with models.judge, which is not set: add it, or use 'self'",
        });
      }
    }
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
