/**
 * Answers one request of a batch through the online chat-completion handler itself
 * (completions.ts), in process: the body goes in as an HTTP request that never touched a
 * socket, and the response is captured instead of sent. So a request answered in a batch gets
 * exactly what the online endpoint would answer, and is counted the same way in the stats
 * (requests, served, per-model tokens, request hashes: it is billed).
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { CompletionDeps } from './completions';
import { handleChatCompletion } from './completions';
import { asHttpError, sendError } from './http';

export interface CallResult {
  /** HTTP status the online endpoint would have answered. */
  status: number;
  /** Its JSON body: the chat completion, or OpenAI's `{error: {...}}`. */
  body: unknown;
}

/** Keeps what the handler writes; there is no socket to write it to. */
class CapturedResponse extends ServerResponse {
  captured: { status: number; text: string } | undefined;

  override end(chunk?: unknown, _encoding?: unknown, _cb?: unknown): this {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
    this.captured = { status: this.statusCode, text };
    return this;
  }
}

/**
 * The online answer to `body` under `deps`; undefined when the handler dropped the request
 * without answering (the server closing while it waited).
 */
export async function answerInProcess(deps: CompletionDeps, body: unknown): Promise<CallResult | undefined> {
  const req = new IncomingMessage(new Socket());
  req.method = 'POST';
  req.url = '/v1/chat/completions';
  req.headers = { 'content-type': 'application/json' };
  const res = new CapturedResponse(req);
  req.push(JSON.stringify(body));
  req.push(null);
  try {
    await handleChatCompletion(deps, req, res);
  } catch (err) {
    // What the server's router answers for an error thrown by a handler (server.ts).
    sendError(res, asHttpError(err));
  } finally {
    // The handler counts the request in flight until its response closes.
    res.emit('close');
  }
  const out = res.captured;
  if (!out) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(out.text) as unknown;
  } catch {
    parsed = out.text;
  }
  return { status: out.status, body: parsed };
}
