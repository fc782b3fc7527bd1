/**
 * Simulated provider quirks (a simulation of what real servers refuse, not of any model): per
 * served model name, the simulator can refuse the request parameters some providers do not take,
 * with the error those providers answer, so the platform's request shaping (issue 14) is tested
 * against each refusal. And the schema-in-prompt convention: for endpoints without `json_schema`,
 * the platform ends the last user message with a marker line and the schema; the simulator reads
 * it back and answers as it would the json_schema request.
 */
import { HttpError } from './http';
import type { ChatCompletionBody, ChatMessageBody } from './protocol';

/** What one served model refuses. Every quirk is off unless set. */
export interface ModelQuirks {
  /**
   * Any `temperature` but the default 1 is a 400 `unsupported_value`, as OpenAI's reasoning models
   * (o-series, gpt-5) answer.
   */
  refuseTemperature?: boolean;
  /** `max_tokens` is a 400 `unsupported_parameter` (use `max_completion_tokens`), as those models answer. */
  requireMaxCompletionTokens?: boolean;
  /** `response_format: {type: 'json_schema'}` is a 400 (`json_object` is still taken). */
  noJsonSchema?: boolean;
  /** vLLM's `guided_json` is a 400: a server without guided decoding. */
  noGuidedJson?: boolean;
  /**
   * Every plain-text reply carries a U+0000 after its first word: a model with byte-fallback tokens
   * can emit one, and PostgreSQL can store it in neither text nor jsonb. Not a refusal: a reply.
   */
  nulInReply?: boolean;
  /**
   * Every plain-text reply carries half a UTF-16 surrogate pair after its first word, escaped in
   * the response's JSON as `\ud800`: a server that splits a pair (Python's `surrogateescape` text,
   * a truncated emoji) sends one, and PostgreSQL's jsonb refuses it. Not a refusal: a reply.
   */
  loneSurrogateInReply?: boolean;
}

export const QUIRK_NAMES = [
  'refuseTemperature',
  'requireMaxCompletionTokens',
  'noJsonSchema',
  'noGuidedJson',
  'nulInReply',
  'loneSurrogateInReply',
] as const satisfies ReadonlyArray<keyof ModelQuirks>;

/** Quirks by served model name. */
export type QuirksByModel = Record<string, ModelQuirks>;

/** Only the quirks that are on: `{}` and all-false settings are the same as none. */
function cleanQuirks(q: ModelQuirks): ModelQuirks {
  const out: ModelQuirks = {};
  for (const name of QUIRK_NAMES) if (q[name] === true) out[name] = true;
  return out;
}

function cleanAll(all: Readonly<QuirksByModel>): QuirksByModel {
  const out: QuirksByModel = {};
  for (const [model, q] of Object.entries(all)) {
    const clean = cleanQuirks(q);
    if (Object.keys(clean).length > 0) out[model] = clean;
  }
  return out;
}

/**
 * The quirks in effect. `reset()` goes back to those given at start: a test suite that starts a
 * server playing some provider keeps it across resets, while a quirk set for one test does not
 * leak into the next.
 */
export class Quirks {
  private readonly initial: QuirksByModel;
  private current: QuirksByModel;

  constructor(init: Readonly<QuirksByModel> = {}) {
    this.initial = cleanAll(init);
    this.current = { ...this.initial };
  }

  /** Replaces one model's quirks; null (or none set) clears them. */
  set(model: string, quirks: ModelQuirks | null): void {
    const clean = quirks ? cleanQuirks(quirks) : {};
    const next = { ...this.current };
    if (Object.keys(clean).length > 0) next[model] = clean;
    else delete next[model];
    this.current = next;
  }

  of(model: string): ModelQuirks {
    return this.current[model] ?? {};
  }

  snapshot(): QuirksByModel {
    return Object.fromEntries(Object.entries(this.current).map(([m, q]) => [m, { ...q }]));
  }

  reset(): void {
    this.current = { ...this.initial };
  }
}

// Simulated refusals say so, as the simulator's other rejections do ("(simulated rejection)").
const SIMULATED = ' (simulated rejection)';

/** The 400 a server with these quirks answers to `body`, or undefined when it takes it. */
export function quirkRejection(quirks: ModelQuirks, body: ChatCompletionBody): HttpError | undefined {
  if (quirks.refuseTemperature && body.temperature != null && body.temperature !== 1) {
    return new HttpError(
      400,
      `Unsupported value: 'temperature' does not support ${String(body.temperature)} with this model. ` +
        `Only the default (1) value is supported.${SIMULATED}`,
      'invalid_request_error',
      'unsupported_value',
      {},
      'temperature',
    );
  }
  if (quirks.requireMaxCompletionTokens && body.max_tokens != null) {
    return new HttpError(
      400,
      "Unsupported parameter: 'max_tokens' is not supported with this model. " +
        `Use 'max_completion_tokens' instead.${SIMULATED}`,
      'invalid_request_error',
      'unsupported_parameter',
      {},
      'max_tokens',
    );
  }
  if (quirks.noJsonSchema && body.response_format?.type === 'json_schema') {
    return new HttpError(
      400,
      `Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.${SIMULATED}`,
      'invalid_request_error',
      null,
      {},
      'response_format',
    );
  }
  if (quirks.noGuidedJson && body.guided_json != null) {
    // What OpenAI answers for a field it does not know; a server without guided decoding.
    return new HttpError(
      400,
      `Unrecognized request argument supplied: guided_json${SIMULATED}`,
      'invalid_request_error',
      'unsupported_parameter',
      {},
      'guided_json',
    );
  }
  return undefined;
}

/** A plain-text reply as a model with the `nulInReply` and `loneSurrogateInReply` quirks writes it. */
export function withUnstorable(content: string, quirks: ModelQuirks): string {
  const odd = `${quirks.nulInReply ? '\u0000' : ''}${quirks.loneSurrogateInReply ? '\uD800' : ''}`;
  if (odd === '') return content;
  const space = content.indexOf(' ');
  return space < 0 ? `${content}${odd}` : `${content.slice(0, space)}${odd}${content.slice(space)}`;
}

/**
 * The platform's schema-in-prompt marker (core/llm/request-shape.ts `schemaInPrompt`): the last
 * user message ends with it, the schema's name in quotes and the schema as one line of JSON. At the
 * start of the content too, for a request that had no user message to append it to.
 */
const PROMPT_SCHEMA =
  /(?:^|\n\n)Reply with only a JSON object conforming to the JSON Schema "([^"\n]+)":\n([^\n]*)$/;

export interface PromptSchema {
  name: string;
  /** The schema in the prompt; undefined when its line is not a JSON object. */
  schema: Record<string, unknown> | undefined;
  /**
   * The messages with the marker cut off the last user message: the prompt the task is read
   * from, so label parsing (tasks.ts) does not take the schema for part of the last section.
   */
  messages: ChatMessageBody[];
}

function parseSchema(line: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The schema a request states in its prompt, when its last user message ends with the marker. */
export function promptSchema(messages: readonly ChatMessageBody[]): PromptSchema | undefined {
  const last = messages.map((m) => m.role).lastIndexOf('user');
  const msg = messages[last];
  if (!msg) return undefined;
  const cut = (text: string) => {
    const m = PROMPT_SCHEMA.exec(text);
    return m?.[1] !== undefined
      ? { name: m[1], schema: parseSchema(m[2] ?? ''), rest: text.slice(0, m.index) }
      : undefined;
  };
  let stripped: ChatMessageBody | undefined;
  let found: ReturnType<typeof cut>;
  if (typeof msg.content === 'string') {
    found = cut(msg.content);
    if (found) stripped = { ...msg, content: found.rest };
  } else if (Array.isArray(msg.content)) {
    // Text parts: the marker ends the last one that has text.
    const parts = msg.content;
    const i = parts.map((p) => p.text !== undefined).lastIndexOf(true);
    const text = parts[i]?.text;
    found = text !== undefined ? cut(text) : undefined;
    if (found) {
      const rest = found.rest;
      stripped = { ...msg, content: parts.map((p, j) => (j === i ? { ...p, text: rest } : p)) };
    }
  }
  if (!found || !stripped) return undefined;
  const replaced = stripped;
  return {
    name: found.name,
    schema: found.schema,
    messages: messages.map((m, i) => (i === last ? replaced : m)),
  };
}
