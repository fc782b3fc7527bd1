/**
 * The `fetch` the gateway hands the `openai` client: plain `node:http`/`node:https` requests on
 * keep-alive agents, the whole body read before the Response is made.
 *
 * Why not Node's global fetch (undici): per model call it costs the worker about half a
 * millisecond of CPU more — WHATWG streams, Request/Headers validation, a body stream read chunk by
 * chunk — which at vLLM speeds (tens of ms a call, ~10⁶ calls a campaign) is a large share of
 * the orchestration cost (issue #9's bench). The client only sends JSON strings and reads whole
 * JSON bodies (the gateway does not stream), so nothing it uses is lost; anything else (a Request
 * object, a stream or form body) goes to the global fetch unchanged.
 *
 * What it keeps from fetch: abort through `init.signal` rejects with an `AbortError` (the client's
 * timeout and the activity's cancellation); redirects are followed (303 → GET; Authorization is
 * dropped across origins; a `redirect` mode other than `follow` goes to the global fetch);
 * gzip/deflate/br bodies are decoded; a failure is a `TypeError` — whose message here names the
 * socket error (`connect ECONNREFUSED …`), which the call log then shows instead of undici's bare
 * "fetch failed".
 *
 * The body is already whole when the client gets the response, so it is handed over as a
 * BufferedResponse (buffered-response.ts), read from those bytes rather than through undici's
 * Response and body stream.
 */
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import { BufferedResponse, ReceivedHeaders } from './buffered-response';

export interface HttpTransportOptions {
  /**
   * Idle keep-alive sockets are closed after this long. Below the 5 s that uvicorn (vLLM) and
   * Node servers keep an idle connection, so a reused socket is not one the server is closing.
   */
  idleSocketMs?: number;
  /** Redirects followed before the request fails; fetch's own limit is 20. */
  maxRedirects?: number;
}

export interface HttpTransport {
  fetch: typeof fetch;
  /** Closes the idle sockets (a worker shutting down); requests in flight finish. */
  close(): void;
}

const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

export function createHttpTransport(options: HttpTransportOptions = {}): HttpTransport {
  const idleSocketMs = options.idleSocketMs ?? 4_000;
  const maxRedirects = options.maxRedirects ?? 20;
  const agents = {
    'http:': new http.Agent({ keepAlive: true, timeout: idleSocketMs, scheduling: 'lifo' }),
    'https:': new https.Agent({ keepAlive: true, timeout: idleSocketMs, scheduling: 'lifo' }),
  };

  const transportFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const body = init?.body;
    const plainBody =
      body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
    const followsRedirects = init?.redirect === undefined || init.redirect === 'follow';
    if (input instanceof Request || !plainBody || !followsRedirects) return fetch(input, init);
    let url = new URL(input);
    let method = (init?.method ?? 'GET').toUpperCase();
    let payload = body ?? undefined;
    const headers = headerRecord(init?.headers);
    for (let redirects = 0; ; redirects++) {
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw failed(new Error(`unsupported protocol ${url.protocol}`));
      }
      const reply = await send({
        agent: agents[url.protocol],
        url,
        method,
        headers,
        body: payload,
        signal: init?.signal ?? undefined,
      });
      const location = reply.headers.get('location');
      if (!isRedirect(reply.status) || location === null) return reply.response(redirects > 0);
      if (redirects >= maxRedirects) {
        throw failed(new Error(`more than ${maxRedirects} redirects`));
      }
      const next = new URL(location, url);
      if (next.origin !== url.origin) delete headers['authorization'];
      if (reply.status === 303 || ((reply.status === 301 || reply.status === 302) && method === 'POST')) {
        if (method !== 'HEAD') method = 'GET';
        payload = undefined;
        delete headers['content-type'];
        delete headers['content-length'];
      }
      url = next;
    }
  };

  return {
    fetch: transportFetch as typeof fetch,
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}

interface Reply {
  status: number;
  headers: ReceivedHeaders;
  response(redirected: boolean): Response;
}

interface Outgoing {
  agent: http.Agent;
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: string | Uint8Array | undefined;
  signal: AbortSignal | undefined;
}

/**
 * One request. A socket reused from the pool that the server had already closed fails before any
 * byte of a response; Node's docs advise sending such a request again, on a fresh socket.
 */
async function send(out: Outgoing): Promise<Reply> {
  try {
    return await sendOnce(out, false);
  } catch (err) {
    if (!(err instanceof StaleSocketError)) throw err;
    return sendOnce(out, true);
  }
}

class StaleSocketError extends Error {}

function sendOnce(
  { agent, url, method, headers, body, signal }: Outgoing,
  freshSocket: boolean,
): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const requestHeaders = { ...headers };
    if (body !== undefined && requestHeaders['content-length'] === undefined) {
      requestHeaders['content-length'] = String(
        typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength,
      );
    }
    const request = (url.protocol === 'https:' ? https : http).request(url, {
      method,
      headers: requestHeaders,
      // A retry after a stale socket opens a new connection rather than trying the next idle one.
      agent: freshSocket ? false : agent,
    });
    let answered = false;
    const onAbort = () => {
      // Rejected here, not from the socket's error: once the response has begun, destroying the
      // request surfaces as the response stream's "aborted", which is not an AbortError.
      const err = abortError(signal);
      reject(err);
      request.destroy(err);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = () => signal?.removeEventListener('abort', onAbort);

    request.on('error', (err: NodeJS.ErrnoException) => {
      settle();
      if (err.name === 'AbortError') reject(err);
      else if (!answered && request.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE'))
        reject(new StaleSocketError());
      else reject(failed(err));
    });
    request.on('response', (res) => {
      answered = true;
      let ended = false;
      const chunks: Buffer[] = [];
      const decoded = decoder(res);
      decoded.on('data', (chunk: Buffer) => chunks.push(chunk));
      decoded.on('error', (err) => {
        settle();
        reject(err.name === 'AbortError' ? err : failed(err));
      });
      decoded.on('end', () => {
        ended = true;
        settle();
        if (!res.complete) {
          reject(failed(new Error('the connection closed before the whole response')));
          return;
        }
        const status = res.statusCode ?? 0;
        const responseHeaders = new ReceivedHeaders(res.headers);
        const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        resolve({
          status,
          headers: responseHeaders,
          response: (redirected) =>
            new BufferedResponse(NULL_BODY_STATUS.has(status) || method === 'HEAD' ? null : bytes, {
              status,
              statusText: res.statusMessage ?? '',
              headers: responseHeaders,
              url: url.href,
              redirected,
            }),
        });
      });
      // A body cut off may close the stream without 'error' or 'end'. After 'end' there is
      // nothing to do, and no error to build (its stack trace costs, on every call).
      decoded.on('close', () => {
        if (ended) return;
        settle();
        reject(failed(new Error('the connection closed before the whole response')));
      });
    });
    request.end(body);
  });
}

function decoder(res: http.IncomingMessage): NodeJS.ReadableStream & { destroy(err?: Error): void } {
  const encoding = (res.headers['content-encoding'] ?? '').trim().toLowerCase();
  const stream =
    encoding === 'gzip' || encoding === 'x-gzip'
      ? zlib.createGunzip()
      : encoding === 'deflate'
        ? zlib.createInflate()
        : encoding === 'br'
          ? zlib.createBrotliDecompress()
          : null;
  if (!stream) return res;
  res.on('error', (err) => stream.destroy(err));
  return res.pipe(stream);
}

function headerRecord(init: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  new Headers(init).forEach((value, name) => {
    out[name] = value;
  });
  return out;
}

/** fetch's TypeError, but saying what failed (undici's says "fetch failed" and hides it in `cause`). */
function failed(cause: Error): TypeError {
  return new TypeError(cause.message, { cause });
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  return new DOMException('This operation was aborted', 'AbortError');
}
