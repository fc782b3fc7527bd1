/**
 * What a request to an endpoint looks like on the wire: the one home of request shaping
 * (issue 14). Providers differ exactly in the parameters the stages send — OpenAI's reasoning
 * models refuse any `temperature` but the default and refuse `max_tokens`; some servers take
 * `json_object` but not `json_schema`, or want vLLM's `guided_json` — so each endpoint says how it
 * wants them (`tokenLimitField`, `temperature: omit`, `structuredOutput`, `extraBody`,
 * `reasoningEffort`), or names a `provider` preset that says it for it. Unstated, every request is
 * what it was before shaping existed, bit for bit (so logged calls are still found by their hash).
 */
import type { ChatMessage, JsonSchemaFormat } from './types';

export const PROVIDERS = ['openai', 'azure-openai', 'vllm', 'together', 'openrouter', 'ollama'] as const;
export type Provider = (typeof PROVIDERS)[number];

export const TOKEN_LIMIT_FIELDS = ['max_tokens', 'max_completion_tokens'] as const;
export type TokenLimitField = (typeof TOKEN_LIMIT_FIELDS)[number];

export const STRUCTURED_OUTPUTS = ['json_schema', 'json_object', 'guided_json', 'none'] as const;
export type StructuredOutput = (typeof STRUCTURED_OUTPUTS)[number];

export const REASONING_EFFORTS = ['minimal', 'low', 'medium', 'high'] as const;
export type ReasoningEffort = (typeof REASONING_EFFORTS)[number];

/** An endpoint's shaping, as the spec states it (every field optional). */
export interface ShapingInput {
  provider?: Provider | undefined;
  baseURL?: string | undefined;
  model: string;
  tokenLimitField?: TokenLimitField | undefined;
  temperature?: number | 'omit' | undefined;
  structuredOutput?: StructuredOutput | undefined;
}

/** An endpoint's shaping with the preset's and the platform's defaults applied. */
export interface Shaping {
  tokenLimitField: TokenLimitField;
  /** `omit`: no temperature in any request; greedy calls get the endpoint's default sampling. */
  temperature: number | 'omit';
  structuredOutput: StructuredOutput;
}

export interface Preset {
  /** The provider's base URL; null where it is the user's own (Azure's resource). */
  baseURL: string | null;
  /** Where baseURL is the user's, what it looks like. */
  baseURLExample: string;
  tokenLimitField: TokenLimitField;
  structuredOutput: StructuredOutput;
  /** Models that take only the default temperature (OpenAI's reasoning models). */
  omitsTemperature?: RegExp;
}

/** OpenAI's o-series and GPT-5 family: reasoning models, default temperature only. */
const OPENAI_REASONING = /^(o\d|gpt-5)/;

export const PRESETS: Readonly<Record<Provider, Preset>> = {
  openai: {
    baseURL: 'https://api.openai.com/v1',
    baseURLExample: 'https://api.openai.com/v1',
    tokenLimitField: 'max_completion_tokens',
    structuredOutput: 'json_schema',
    omitsTemperature: OPENAI_REASONING,
  },
  'azure-openai': {
    baseURL: null,
    baseURLExample: 'https://RESOURCE.openai.azure.com/openai/v1',
    tokenLimitField: 'max_completion_tokens',
    structuredOutput: 'json_schema',
    omitsTemperature: OPENAI_REASONING,
  },
  vllm: {
    baseURL: 'http://localhost:8000/v1',
    baseURLExample: 'http://vllm:8000/v1',
    tokenLimitField: 'max_tokens',
    structuredOutput: 'json_schema',
  },
  together: {
    baseURL: 'https://api.together.xyz/v1',
    baseURLExample: 'https://api.together.xyz/v1',
    tokenLimitField: 'max_tokens',
    structuredOutput: 'json_object',
  },
  openrouter: {
    baseURL: 'https://openrouter.ai/api/v1',
    baseURLExample: 'https://openrouter.ai/api/v1',
    tokenLimitField: 'max_tokens',
    structuredOutput: 'json_schema',
  },
  ollama: {
    baseURL: 'http://localhost:11434/v1',
    baseURLExample: 'http://localhost:11434/v1',
    tokenLimitField: 'max_tokens',
    structuredOutput: 'json_object',
  },
};

/** The platform's defaults, what every request was before shaping: no preset, nothing stated. */
const DEFAULT_SHAPING: Shaping = {
  tokenLimitField: 'max_tokens',
  temperature: 0,
  structuredOutput: 'json_schema',
};

/** The endpoint's shaping: what it states, else its preset's, else the platform's defaults. */
export function shapingOf(ep: ShapingInput): Shaping {
  const preset = ep.provider ? PRESETS[ep.provider] : undefined;
  return {
    tokenLimitField: ep.tokenLimitField ?? preset?.tokenLimitField ?? DEFAULT_SHAPING.tokenLimitField,
    temperature:
      ep.temperature ?? (preset?.omitsTemperature?.test(ep.model) ? 'omit' : DEFAULT_SHAPING.temperature),
    structuredOutput: ep.structuredOutput ?? preset?.structuredOutput ?? DEFAULT_SHAPING.structuredOutput,
  };
}

/** The endpoint's base URL: stated, or its preset's; null when neither (the spec refuses that). */
export function baseUrlOf(ep: ShapingInput): string | null {
  return ep.baseURL ?? (ep.provider ? PRESETS[ep.provider].baseURL : null);
}

/** What the platform asks of an endpoint in one call (the shape-independent part of a ChatRequest). */
export interface RequestParts {
  model: string;
  messages: ChatMessage[];
  jsonSchema?: JsonSchemaFormat | undefined;
  /** The method's temperature (0 for greedy calls); absent: the endpoint's (`temperature`). */
  temperature?: number | undefined;
  n?: number | undefined;
  maxTokens?: number | undefined;
  /** The stage's own server fields, e.g. vLLM's `use_beam_search`. */
  extraBody?: Record<string, unknown> | undefined;
}

/** An endpoint as request shaping needs it (resolved shaping, the spec's extras). */
export interface ShapedEndpoint extends Shaping {
  maxTokens?: number | undefined;
  extraBody?: Record<string, unknown> | undefined;
  reasoningEffort?: ReasoningEffort | undefined;
}

export interface RequestBody {
  model: string;
  messages: ChatMessage[];
  [field: string]: unknown;
}

/**
 * The schema in the prompt, for endpoints without `json_schema`: the last user message ends with
 * this line and the schema (the simulator reads it back the same way).
 */
export function schemaInPrompt(messages: ChatMessage[], format: JsonSchemaFormat): ChatMessage[] {
  const last = messages.map((m) => m.role).lastIndexOf('user');
  const note = `\n\nReply with only a JSON object conforming to the JSON Schema "${format.name}":\n${JSON.stringify(format.schema)}`;
  if (last < 0) return [...messages, { role: 'user', content: note.trimStart() }];
  return messages.map((m, i) => (i === last ? { ...m, content: `${m.content}${note}` } : m));
}

/** The body of a chat-completion request to the endpoint, shaped as it wants it. */
export function shapeRequest(ep: ShapedEndpoint, req: RequestParts): RequestBody {
  const schema = req.jsonSchema;
  const structured = schema ? ep.structuredOutput : null;
  const temperature = ep.temperature === 'omit' ? undefined : (req.temperature ?? ep.temperature);
  const maxTokens = req.maxTokens ?? ep.maxTokens;
  return {
    model: req.model,
    messages: schema && structured !== 'json_schema' ? schemaInPrompt(req.messages, schema) : req.messages,
    temperature,
    n: req.n,
    [ep.tokenLimitField]: maxTokens,
    response_format:
      schema && structured === 'json_schema'
        ? { type: 'json_schema', json_schema: { name: schema.name, schema: schema.schema, strict: true } }
        : structured === 'json_object'
          ? { type: 'json_object' }
          : undefined,
    ...(schema && structured === 'guided_json' ? { guided_json: schema.schema } : {}),
    ...(ep.reasoningEffort ? { reasoning_effort: ep.reasoningEffort } : {}),
    ...ep.extraBody,
    ...req.extraBody,
  };
}
