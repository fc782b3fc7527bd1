/**
 * POST /v1/chat/completions: validation, fault injection, latency, then the simulated models'
 * reply with OpenAI's response shape and usage (tokens ≈ characters / 4), with the prompt tokens a
 * simulated prompt cache serves (prompt-cache.ts) as `prompt_tokens_details.cached_tokens`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Behaviour } from './behaviour';
import type { FaultInjector } from './faults';
import { generate } from './generate';
import { HttpError, badRequest, readJson, sendJson } from './http';
import type { KnowledgeBase } from './knowledge';
import type { ModelRegistry } from './models';
import type { PromptCache } from './prompt-cache';
import type { ChatCompletionBody } from './protocol';
import { ChatCompletionBody as ChatCompletionSchema, messageText } from './protocol';
import type { PromptSchema, Quirks } from './quirks';
import { promptSchema, quirkRejection, withUnstorable } from './quirks';
import type { SimRequestRecord, StatsRecorder } from './stats';
import { requestHash } from './request-hashes';
import type { ResponseFormatInput } from './tasks';
import { readTask } from './tasks';
import { tokenCount } from './text';

export interface CompletionDeps {
  registry: ModelRegistry;
  kb: KnowledgeBase;
  stats: StatsRecorder;
  faults: FaultInjector;
  /** Judge bias and malformed structured replies. */
  behaviour: Behaviour;
  rejectBeamSearch: boolean;
  /** Request parameters each served model refuses, as real providers do (quirks.ts). */
  quirks: Quirks;
  /** The server's prompt cache: every route answering for its models shares it. */
  promptCache: PromptCache;
  latencyMs(): number;
  /** Waits `ms`; false when the server closed meanwhile (the request is then dropped). */
  hold(ms: number): Promise<boolean>;
}

export async function handleChatCompletion(
  deps: CompletionDeps,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { registry, kb, stats, faults } = deps;
  const rec: SimRequestRecord = {
    at: new Date().toISOString(),
    model: 'unknown',
    status: 400,
    task: 'invalid',
  };
  let raw: unknown;
  try {
    raw = await readJson(req);
  } catch (err) {
    stats.record(rec);
    throw err;
  }
  rec.hash = requestHash(raw);
  const parsed = ChatCompletionSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    stats.record(rec);
    // OpenAI names the field at fault in `param` (e.g. an unknown reasoning_effort).
    const field = issue?.path[0];
    throw badRequest(
      `Invalid request body: ${issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'malformed'}`,
      null,
      typeof field === 'string' ? field : null,
    );
  }
  const body = parsed.data;
  // The schema in the prompt counts only where the request states none the usual way.
  const inPrompt = body.response_format?.type === 'json_schema' ? undefined : promptSchema(body.messages);
  describe(rec, body, inPrompt);
  // In flight until the answer is sent or the connection dropped ('close' fires for both).
  res.once('close', stats.begin(body.model));
  const fail = (err: HttpError): never => {
    rec.status = err.status;
    stats.record(rec);
    throw err;
  };
  if (body.stream)
    fail(
      badRequest(
        'stream=true is not supported by the simulator; send a non-streaming request.',
        'unsupported_parameter',
      ),
    );
  const model = registry.get(body.model);
  if (!model)
    fail(
      new HttpError(
        404,
        `The model \`${body.model}\` does not exist or you do not have access to it.`,
        'invalid_request_error',
        'model_not_found',
      ),
    );
  const quirks = deps.quirks.of(body.model);
  const refused = quirkRejection(quirks, body);
  if (refused) fail(refused);
  if (body.use_beam_search && deps.rejectBeamSearch) {
    fail(
      badRequest(
        'use_beam_search is not supported by this server (simulated server without beam search).',
        'unsupported_parameter',
      ),
    );
  }
  const n = body.n ?? 1;
  if (body.best_of != null && body.best_of < n)
    fail(badRequest(`best_of must be greater than or equal to n, got n=${n} and best_of=${body.best_of}.`));
  // A schema in the prompt is answered as the json_schema request it stands for, read from the
  // prompt without the marker (json_object, guided_json or no structured mode at all).
  const format: ResponseFormatInput = inPrompt
    ? { type: 'json_schema', json_schema: { name: inPrompt.name, schema: inPrompt.schema } }
    : body.response_format;
  const task = readTask(inPrompt?.messages ?? body.messages, format);
  rec.task = task.kind;
  if (deps.behaviour.rejected(body.messages.map(messageText).join('\n')) !== undefined) {
    fail(
      badRequest(
        "This model's maximum context length is 4096 tokens. However, your messages resulted in more " +
          'tokens. Please reduce the length of the messages. (simulated rejection)',
        'context_length_exceeded',
      ),
    );
  }

  const fault = faults.decide();
  if (fault) {
    stats.fault(fault);
    if (fault === 'timeout') {
      rec.status = 0;
      stats.record(rec);
      await deps.hold(faults.config.hangMs);
      req.socket.destroy();
      return;
    }
    if (fault === '429') {
      fail(
        new HttpError(
          429,
          `Rate limit reached for ${body.model} (simulated fault). Please try again in ${faults.config.retryAfter}.`,
          'requests',
          'rate_limit_exceeded',
          {
            'retry-after': faults.config.retryAfter,
          },
        ),
      );
    }
    fail(
      new HttpError(
        500,
        'The server had an error while processing your request (simulated fault).',
        'server_error',
        'server_error',
      ),
    );
  }

  // Looked up (and remembered) as the request is taken on, before the latency: which requests hit
  // then depends on arrival order alone, not on how their answers overlap.
  const cachedTokens = deps.promptCache.lookup(body.model, body.messages);
  const latencyMs = deps.latencyMs();
  if (latencyMs > 0 && !(await deps.hold(faults.jitter(latencyMs)))) {
    req.socket.destroy();
    return;
  }
  if (!model) return;
  const generated = generate(
    model,
    task,
    kb,
    {
      temperature: body.temperature ?? 1,
      seed: body.seed ?? 0,
      n,
      beam: body.use_beam_search === true,
    },
    { judgeSide: deps.behaviour.judgeSide() },
  );
  const choices = malformReplies(deps, rec, task.schemaName, task.schema, body, generated);
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
  const structured = !['answer', 'guideline', 'step', 'rstar'].includes(task.kind) ? true : task.jsonObject;
  const out = choices.map((content, index) => {
    // Plain text is cut at max_tokens like a real server; JSON replies are left whole so they parse.
    const cut = !structured && maxTokens !== undefined && tokenCount(content) > maxTokens;
    const text = cut ? content.slice(0, maxTokens * 4) : content;
    return {
      index,
      message: { role: 'assistant', content: structured ? text : withUnstorable(text, quirks) },
      logprobs: null,
      finish_reason: cut ? 'length' : 'stop',
    };
  });
  const prompt = body.messages.reduce((sum, m) => sum + tokenCount(messageText(m)) + 4, 0);
  const completion = out.reduce((sum, c) => sum + tokenCount(c.message.content), 0);
  rec.status = 200;
  stats.record(rec, { prompt, completion });
  sendJson(res, 200, {
    id: `chatcmpl-sim-${randomUUID().replace(/-/g, '').slice(0, 24)}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    system_fingerprint: 'meteor-simulator',
    choices: out,
    usage: {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      // As OpenAI reports it: always present, 0 on a miss.
      prompt_tokens_details: { cached_tokens: cachedTokens },
    },
  });
}

/** Replaces the share of json_schema replies that SimOptions.malformedRate asks for, and counts them. */
function malformReplies(
  deps: CompletionDeps,
  rec: SimRequestRecord,
  schemaName: string | undefined,
  schema: Record<string, unknown> | undefined,
  body: ChatCompletionBody,
  choices: string[],
): string[] {
  if (schemaName === undefined) return choices;
  const req = schema?.['required'];
  const required = Array.isArray(req) ? req.filter((k): k is string => typeof k === 'string') : undefined;
  const key = `${body.model}\u0000${JSON.stringify(body.messages)}`;
  let malformed = 0;
  const out = choices.map((c, i) => {
    const bad = deps.behaviour.malform(schemaName, c, `${key}\u0000${i}`, required);
    if (bad === undefined) return c;
    malformed++;
    return bad;
  });
  if (malformed > 0) {
    rec.malformed = malformed;
    deps.stats.malformed(schemaName, malformed);
  }
  return out;
}

function describe(rec: SimRequestRecord, body: ChatCompletionBody, inPrompt: PromptSchema | undefined): void {
  rec.model = body.model;
  if (body.n != null) rec.n = body.n;
  if (body.temperature != null) rec.temperature = body.temperature;
  if (body.use_beam_search != null) rec.use_beam_search = body.use_beam_search;
  if (body.best_of != null) rec.best_of = body.best_of;
  if (body.length_penalty != null) rec.length_penalty = body.length_penalty;
  if (body.max_tokens != null) rec.max_tokens = body.max_tokens;
  if (body.max_completion_tokens != null) rec.max_completion_tokens = body.max_completion_tokens;
  if (body.reasoning_effort != null) rec.reasoning_effort = body.reasoning_effort;
  const rf = body.response_format;
  if (inPrompt) {
    // How the schema travelled besides the prompt: json_object mode, vLLM's guided_json, or nothing.
    const mode =
      rf?.type === 'json_object' ? 'json_object' : body.guided_json != null ? 'guided_json' : 'prompt';
    rec.responseFormat = `${mode}:${inPrompt.name}`;
  } else if (rf)
    rec.responseFormat = rf.type === 'json_schema' ? `json_schema:${rf.json_schema.name}` : rf.type;
}
