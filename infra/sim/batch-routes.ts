/**
 * HTTP routes of the simulated Files and Batch APIs, shaped as OpenAI's so the `openai` client
 * works against them unchanged: /v1/files (multipart upload, retrieve, content, delete, list),
 * /v1/batches (create, retrieve, list, cancel), and the sim's own /sim/batches controls.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { UPLOAD_PURPOSES } from './batch-files';
import type { BatchStore } from './batches';
import { HttpError, badRequest, readBody, readJson, sendJson } from './http';
import { parseMultipart } from './multipart';

const Metadata = z
  .record(z.string().min(1).max(64), z.string().max(512))
  .refine((m) => Object.keys(m).length <= 16, { message: 'at most 16 keys' });

const CreateBatchBody = z.object({
  input_file_id: z.string().min(1),
  endpoint: z.string().min(1),
  completion_window: z.string().min(1),
  metadata: Metadata.nullish(),
});

/** POST /sim/batches: BatchConfigUpdate. */
export const BatchConfigBody = z.object({
  validatingMs: z.number().min(0).optional(),
  inProgressMs: z.number().min(0).optional(),
  finalizingMs: z.number().min(0).optional(),
  failRate: z.number().min(0).max(1).optional(),
  expireAfterMs: z.number().min(0).optional(),
  failNext: z.number().int().min(0).optional(),
});

const invalid = (what: string, error: z.ZodError) => {
  const issue = error.issues[0];
  return badRequest(
    `Invalid ${what}: ${issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'malformed'}`,
  );
};

/** An integer query parameter in [min, max], or `fallback` when absent. */
function intParam(q: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = q.get(name);
  if (raw === null) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max)
    throw badRequest(`Invalid '${name}': expected an integer from ${min} to ${max}, got '${raw}'.`);
  return v;
}

function sendFileContent(res: ServerResponse, content: string): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': Buffer.byteLength(content),
  });
  res.end(content);
}

async function upload(store: BatchStore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const parts = parseMultipart(await readBody(req), req.headers['content-type'] ?? '');
  const purposeText = parts.find((p) => p.name === 'purpose' && p.filename === undefined)?.data;
  const file = parts.find((p) => p.name === 'file' && p.filename !== undefined);
  if (!file || file.filename === undefined) throw badRequest("Missing required parameter: 'file'.");
  if (purposeText === undefined) throw badRequest("Missing required parameter: 'purpose'.");
  const purpose = UPLOAD_PURPOSES.find((p) => p === purposeText);
  if (!purpose)
    throw badRequest(
      `Invalid value for 'purpose': '${purposeText}' (use one of ${UPLOAD_PURPOSES.join(', ')}).`,
    );
  if (purpose === 'batch' && !file.filename.toLowerCase().endsWith('.jsonl'))
    throw badRequest('Invalid file format for Batch API. Must be .jsonl');
  sendJson(res, 200, store.upload(file.filename, purpose, file.data));
}

/**
 * Answers the request when it is one of these routes; false otherwise (the caller goes on, and
 * answers 404 when nothing else matches). Auth of /v1/* is the caller's.
 */
export async function routeBatchApi(
  store: BatchStore,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
  path: string,
): Promise<boolean> {
  const query = new URL(req.url ?? '/', 'http://sim').searchParams;

  if (path === '/v1/files') {
    if (method === 'POST') return upload(store, req, res).then(() => true);
    if (method === 'GET') {
      const order = query.get('order') ?? 'desc';
      if (order !== 'asc' && order !== 'desc') throw badRequest(`Invalid 'order': '${order}'.`);
      const purpose = query.get('purpose') ?? undefined;
      const after = query.get('after') ?? undefined;
      const limit = intParam(query, 'limit', 10000, 1, 10000);
      sendJson(
        res,
        200,
        store.files.list({ order, limit, ...(purpose ? { purpose } : {}), ...(after ? { after } : {}) }),
      );
      return true;
    }
    return false;
  }
  const file = /^\/v1\/files\/([^/]+)(\/content)?$/.exec(path);
  if (file?.[1] !== undefined) {
    const id = decodeURIComponent(file[1]);
    if (method === 'GET' && file[2]) sendFileContent(res, store.files.get(id).content);
    else if (method === 'GET') sendJson(res, 200, store.files.get(id).file);
    else if (method === 'DELETE' && !file[2]) sendJson(res, 200, store.files.delete(id));
    else return false;
    return true;
  }

  if (path === '/v1/batches') {
    if (method === 'POST') {
      const body = CreateBatchBody.safeParse(await readJson(req));
      if (!body.success) throw invalid('batch', body.error);
      sendJson(res, 200, store.create(body.data));
      return true;
    }
    if (method === 'GET') {
      sendJson(res, 200, store.list(intParam(query, 'limit', 20, 1, 100), query.get('after') ?? undefined));
      return true;
    }
    return false;
  }
  const batch = /^\/v1\/batches\/([^/]+)(\/cancel)?$/.exec(path);
  if (batch?.[1] !== undefined) {
    const id = decodeURIComponent(batch[1]);
    if (method === 'GET' && !batch[2]) sendJson(res, 200, store.get(id));
    else if (method === 'POST' && batch[2]) sendJson(res, 200, store.cancel(id));
    else return false;
    return true;
  }

  if (path === '/sim/batches') {
    if (method === 'GET') sendJson(res, 200, store.getConfig());
    else if (method === 'POST') {
      const body = BatchConfigBody.safeParse(await readJson(req));
      if (!body.success) throw invalid('batch settings', body.error);
      sendJson(res, 200, store.setConfig(body.data));
    } else return false;
    return true;
  }
  const expire = /^\/sim\/batches\/([^/]+)\/expire$/.exec(path);
  if (expire?.[1] !== undefined && method === 'POST') {
    const id = decodeURIComponent(expire[1]);
    if (!store.expireNow(id)) {
      store.get(id); // 404 for an unknown batch
      throw new HttpError(
        409,
        `Batch '${id}' is not validating or in progress.`,
        'invalid_request_error',
        null,
      );
    }
    sendJson(res, 200, store.get(id));
    return true;
  }
  return false;
}
