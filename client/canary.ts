/**
 * The launch's canary (issue 14): before anything is created, one minimal real request per kind
 * of request each enabled stage sends to each role — the structured-reply schema, temperature,
 * token-limit field, `n`, beam fields, shaped exactly as the stages' requests will be
 * (core/llm/request-shape.ts). A provider that refuses a parameter is caught here, at launch,
 * with the role, the stage, the parameter, the provider's words (scrubbed) and the spec field that
 * fixes it, instead of as a 400 deep inside the campaign. The answers are billed like any call and
 * logged with the campaign as stage `preflight`.
 */
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { classifyLlmError } from '../core/llm/errors';
import { loggedCompletion } from '../core/llm/completion-log';
import { callCost } from '../core/llm/pricing';
import { shapeRequest, shapingOf, type RequestBody } from '../core/llm/request-shape';
import { ROW_SCORE_SCHEMA } from '../core/prompts/row-score';
import { maskKnownSecrets, scrubSecrets } from '../core/secrets';
import type { CampaignSpec, EndpointSpec, Role } from '../core/spec';
import { registeredStages } from '../stages/registry';
import type { BaseStageOptions, StageRequest } from '../stages/stage';

const CANARY_PROMPT = 'This is a check before a campaign starts. Reply with the single word OK.';
/** Enough for a word; a structured reply may be cut short, which is no refusal. */
const CANARY_MAX_TOKENS = 16;
const CANARY_TIMEOUT_MS = 30_000;

/** One canary request: the stage that sends such requests, and the body as the endpoint gets it. */
export interface CanaryRequest {
  stage: string;
  request: StageRequest;
  body: RequestBody;
  hash: string;
}

/** A canary the endpoint answered, as it goes into `llm_calls` once the campaign exists. */
export interface CanaryCall {
  role: Role;
  stage: string;
  purpose: string;
  requestHash: string;
  baseUrl: string;
  model: string;
  request: string;
  response: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number | null;
  latencyMs: number;
  costUsd: number;
}

export interface CanaryOutcome {
  problems: string[];
  calls: CanaryCall[];
  ms: number;
}

/** What every enabled stage sends, per role, shaped for its endpoint; identical bodies once. */
export function canaryRequests(spec: CampaignSpec): CanaryRequest[] {
  const out = new Map<string, CanaryRequest>();
  const stages = spec.stages as unknown as Record<string, BaseStageOptions>;
  for (const def of registeredStages()) {
    const options = stages[def.name];
    if (!options?.enabled) continue;
    const requests: StageRequest[] = [...(def.requests as (o: BaseStageOptions) => StageRequest[])(options)];
    if (options.filter) {
      requests.push({
        role: options.filter.by === 'judge' ? 'judge' : 'weak',
        purpose: 'row-score',
        jsonSchema: ROW_SCORE_SCHEMA,
        temperature: 0,
        option: 'filter',
      });
    }
    for (const request of requests) {
      const ep = spec.models[request.role];
      if (!ep) continue;
      const body = shapeRequest(
        {
          ...shapingOf(ep),
          maxTokens: CANARY_MAX_TOKENS,
          extraBody: ep.extraBody,
          reasoningEffort: ep.reasoningEffort,
        },
        { ...request, model: ep.model, messages: [{ role: 'user', content: CANARY_PROMPT }] },
      );
      const hash = createHash('sha256')
        .update(JSON.stringify({ baseURL: ep.baseURL, body }))
        .digest('hex');
      if (!out.has(hash)) out.set(hash, { stage: def.name, request, body, hash });
    }
  }
  return [...out.values()];
}

/** The parameter a refusal is about: the provider's `param`, else the first one its text names. */
function refusedParam(err: InstanceType<typeof OpenAI.APIError>): string | null {
  if (typeof err.param === 'string' && err.param !== '') return err.param;
  const text = err.message;
  for (const p of [
    'max_completion_tokens',
    'max_tokens',
    'temperature',
    'response_format',
    'json_schema',
    'guided_json',
    'reasoning_effort',
    'use_beam_search',
    'length_penalty',
    'best_of',
  ]) {
    if (text.includes(p)) return p;
  }
  return /\bn\b/.test(text) ? 'n' : null;
}

/** The spec field that fixes a refused parameter. */
function advice(role: Role, stage: string, request: StageRequest, param: string | null): string {
  const field = `models.${role}`;
  switch (param) {
    case 'temperature':
      return `set ${field}.temperature: omit (the model takes only its default temperature)`;
    case 'max_tokens':
      return `set ${field}.tokenLimitField: max_completion_tokens`;
    case 'max_completion_tokens':
      return `set ${field}.tokenLimitField: max_tokens`;
    case 'response_format':
    case 'json_schema':
      return `set ${field}.structuredOutput: json_object (or guided_json on vLLM, or none)`;
    case 'guided_json':
      return `set ${field}.structuredOutput: json_object (or none)`;
    case 'reasoning_effort':
      return `remove ${field}.reasoningEffort`;
    case 'use_beam_search':
    case 'length_penalty':
      return `set stages.${stage}.method: best-of-n (the server has no beam search)`;
    case 'n':
    case 'best_of':
      return request.option
        ? `change stages.${stage}.${request.option} (the endpoint refuses n = ${request.n ?? 1})`
        : `the endpoint refuses n = ${request.n ?? 1}`;
    case null:
      return `check ${field}.provider, tokenLimitField, temperature, structuredOutput and extraBody`;
    default:
      return `leave ${param} out of ${field}.extraBody or change it, or name the endpoint's provider preset`;
  }
}

/**
 * Sends the canaries, all at once; a refusal names the role, the stage, the parameter, the
 * provider's message and the fix. `secrets` are masked in everything returned.
 */
export async function runCanaries(
  spec: CampaignSpec,
  env: NodeJS.ProcessEnv,
  secrets: readonly string[],
): Promise<CanaryOutcome> {
  const started = Date.now();
  const clients = new Map<string, OpenAI>();
  const clientFor = (ep: EndpointSpec): OpenAI => {
    const key = `${ep.baseURL}|${ep.apiKeyEnv ?? ''}`;
    let c = clients.get(key);
    if (!c) {
      c = new OpenAI({
        baseURL: ep.baseURL,
        apiKey: ep.apiKeyEnv ? (env[ep.apiKeyEnv] ?? 'none') : 'none',
        timeout: CANARY_TIMEOUT_MS,
        maxRetries: 2,
      });
      clients.set(key, c);
    }
    return c;
  };
  const problems: string[] = [];
  const calls: CanaryCall[] = [];
  await Promise.all(
    canaryRequests(spec).map(async ({ stage, request, body, hash }) => {
      const role = request.role;
      const ep = spec.models[role];
      if (!ep) return;
      const what = `models.${role}: the request stage ${stage} sends (${request.purpose})`;
      const sent = Date.now();
      try {
        const completion = await clientFor(ep).chat.completions.create(
          body as unknown as ChatCompletionCreateParamsNonStreaming,
        );
        const { promptTokens, completionTokens, cachedTokens, response } = loggedCompletion(completion);
        calls.push({
          role,
          stage,
          purpose: `canary:${stage}:${request.purpose}`,
          requestHash: hash,
          baseUrl: scrubSecrets(ep.baseURL, secrets),
          model: ep.model,
          request: maskKnownSecrets(JSON.stringify(body), secrets),
          response: maskKnownSecrets(JSON.stringify(response), secrets),
          promptTokens,
          completionTokens,
          cachedTokens,
          latencyMs: Date.now() - sent,
          costUsd: callCost(ep.pricing, 'online', { promptTokens, cachedTokens, completionTokens }),
        });
      } catch (err) {
        if (err instanceof OpenAI.APIError && (err.status === 400 || err.status === 422)) {
          const param = refusedParam(err);
          problems.push(
            `${what} was refused${param ? ` for ${param}` : ''} (${err.status}): ` +
              `"${scrubSecrets(err.message, secrets)}" — ${advice(role, stage, request, param)}`,
          );
          return;
        }
        const ref = { role, baseURL: ep.baseURL, model: ep.model, apiKeyEnv: ep.apiKeyEnv };
        problems.push(`${what} failed: ${classifyLlmError(err, ref, secrets).message}`);
      }
    }),
  );
  return { problems: problems.sort(), calls, ms: Date.now() - started };
}
