/**
 * Validation of a Batch API input file (JSONL, one request a line), as OpenAI does it while a
 * batch is `validating`: every faulty line is reported with its 1-based line number, and one
 * faulty line fails the whole batch. Request bodies themselves are not checked here: like
 * OpenAI, a body the endpoint rejects is answered 400 inside the batch (the error file).
 */
import type { BatchError } from 'openai/resources/batches';

/** OpenAI's limit of requests per batch. */
export const MAX_BATCH_REQUESTS = 50_000;

export interface BatchRequestLine {
  /** 1-based line of the input file. */
  line: number;
  customId: string;
  body: Record<string, unknown>;
}

export type BatchInput =
  { ok: true; requests: BatchRequestLine[]; model: string } | { ok: false; errors: BatchError[] };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const lineError = (line: number, code: string, message: string, param: string | null = null): BatchError => ({
  code,
  line,
  message,
  param,
});

/** Reads `content` as requests to `endpoint` (e.g. '/v1/chat/completions'). */
export function readBatchInput(content: string, endpoint: string): BatchInput {
  const lines = content.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  // A trailing newline (or several) is not a line; a blank line in the middle is not JSON.
  while (lines.length > 0 && lines[lines.length - 1]?.trim() === '') lines.pop();
  if (lines.length === 0)
    return {
      ok: false,
      errors: [{ code: 'empty_file', line: null, message: 'The input file is empty.', param: null }],
    };
  if (lines.length > MAX_BATCH_REQUESTS) {
    const message = `The input file has ${lines.length} requests; a batch can hold at most ${MAX_BATCH_REQUESTS}.`;
    return { ok: false, errors: [{ code: 'too_many_tasks', line: null, message, param: null }] };
  }

  const errors: BatchError[] = [];
  const requests: BatchRequestLine[] = [];
  const seen = new Set<string>();
  let model: string | undefined;
  lines.forEach((text, i) => {
    const checked = checkLine(text, i + 1, endpoint, seen, model);
    if ('error' in checked) return errors.push(checked.error);
    seen.add(checked.request.customId);
    // OpenAI runs a batch on one model: the first line's; checkLine rejects the others.
    model ??= checked.model;
    requests.push(checked.request);
  });
  if (errors.length > 0 || model === undefined) return { ok: false, errors };
  return { ok: true, requests, model };
}

/** One line: its request (and model), or the first thing wrong with it. */
function checkLine(
  text: string,
  line: number,
  endpoint: string,
  seen: ReadonlySet<string>,
  model: string | undefined,
): { error: BatchError } | { request: BatchRequestLine; model: string } {
  const bad = (code: string, message: string, param: string | null = null) => ({
    error: lineError(line, code, message, param),
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch {
    parsed = undefined;
  }
  if (!isObject(parsed)) return bad('invalid_json_line', 'This line is not parseable as valid JSON.');
  const missing = (param: string) =>
    bad('missing_required_parameter', `Missing required parameter: '${param}'.`, param);
  const { custom_id: customId, method, url, body } = parsed;
  if (typeof customId !== 'string' || customId === '') return missing('custom_id');
  if (typeof method !== 'string') return missing('method');
  if (method.toUpperCase() !== 'POST')
    return bad('invalid_method', `Invalid method '${method}': batch requests use POST.`, 'method');
  if (typeof url !== 'string') return missing('url');
  if (url !== endpoint)
    return bad(
      'url_mismatch',
      `The URL provided for this request ('${url}') does not match the batch endpoint ('${endpoint}').`,
      'url',
    );
  if (!isObject(body)) return missing('body');
  const bodyModel = body['model'];
  if (typeof bodyModel !== 'string') return missing('body.model');
  if (seen.has(customId))
    return bad(
      'duplicate_custom_id',
      `The custom_id '${customId}' is a duplicate of another request's: it must be unique within a batch.`,
      'custom_id',
    );
  if (model !== undefined && bodyModel !== model)
    return bad(
      'model_mismatch',
      `The model '${bodyModel}' differs from the batch's ('${model}'): a batch uses one model.`,
      'body.model',
    );
  return { request: { line, customId, body }, model: bodyModel };
}
