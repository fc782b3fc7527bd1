import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { classifyLlmError } from '../../core/llm/errors';
import { createHttpTransport, type HttpTransport } from '../../core/llm/http-transport';

/** A local OpenAI-shaped server whose behaviour each test picks by the request's model name. */
let server: http.Server;
let baseURL: string;
const connections: { count: number } = { count: 0 };
const seen: {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  socket: number;
}[] = [];
let transport: HttpTransport;

const completion = (content: string) =>
  JSON.stringify({
    id: 'c1',
    object: 'chat.completion',
    created: 0,
    model: 'm',
    choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content } }],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  });

beforeAll(async () => {
  const socketIds = new WeakMap<object, number>();
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const socket = socketIds.get(req.socket) ?? -1;
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, socket });
      const model = body ? (JSON.parse(body) as { model?: string }).model : undefined;
      const json = { 'content-type': 'application/json' };
      if (req.url === '/no-content') {
        res.writeHead(204).end();
      } else if (req.url === '/headers') {
        res
          .writeHead(200, 'Fine', [
            ['Content-Type', 'application/json'],
            ['X-Multi', 'a'],
            ['x-multi', 'b'],
            ['Set-Cookie', 's=1'],
            ['Set-Cookie', 't=2'],
            ['Retry-After', '3'],
          ])
          .end('{"a":[1,2]}');
      } else if (req.url === '/moved/headers') {
        res.writeHead(307, { location: '/headers' }).end();
      } else if (req.url === '/moved/chat/completions') {
        res.writeHead(200, json).end(completion(`after redirect with ${req.method}`));
      } else if (model === 'redirect-307') {
        res.writeHead(307, { location: '/moved/chat/completions' }).end();
      } else if (model === 'limited') {
        res
          .writeHead(429, { ...json, 'retry-after': '7' })
          .end(JSON.stringify({ error: { message: 'slow down' } }));
      } else if (model === 'not-served') {
        res
          .writeHead(404, json)
          .end(JSON.stringify({ error: { message: 'The model `not-served` does not exist.' } }));
      } else if (model === 'gzip') {
        res
          .writeHead(200, { ...json, 'content-encoding': 'gzip' })
          .end(zlib.gzipSync(completion('unzipped')));
      } else if (model === 'hang') {
        res.writeHead(200, json);
        res.write('{"id":'); // and never the rest: the client's timeout must still end the call
      } else if (model === 'truncated') {
        res.writeHead(200, { ...json, 'content-length': '1000' });
        res.write('{"id":');
        setTimeout(() => req.socket.destroy(), 20);
      } else if (model === 'reset-if-reused' && seen.filter((s) => s.socket === socket).length > 1) {
        req.socket.destroy(); // as a server closing an idle connection the client just reused
      } else {
        const content = JSON.parse(body).messages[0].content as string;
        res.writeHead(200, json).end(completion(`echo: ${content}`));
      }
    });
  });
  server.on('connection', (socket) => socketIds.set(socket, ++connections.count));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

afterEach(() => {
  transport.close();
  seen.length = 0;
});

function client(timeout = 5_000): OpenAI {
  transport = createHttpTransport();
  return new OpenAI({ baseURL, apiKey: 'sk-test-key', maxRetries: 0, timeout, fetch: transport.fetch });
}

const ask = (c: OpenAI, model: string, content = 'hi') =>
  c.chat.completions.create({ model, messages: [{ role: 'user', content }] });

describe('the gateway HTTP transport, through the openai client', () => {
  it('sends the request as fetch would and reads the JSON answer', async () => {
    const reply = await ask(client(), 'm', 'grüße — ✓');
    expect(reply.choices[0]?.message.content).toBe('echo: grüße — ✓');
    const request = seen[0]!;
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/v1/chat/completions');
    expect(request.headers.authorization).toBe('Bearer sk-test-key');
    expect(request.headers['content-type']).toBe('application/json');
    // Bytes, not characters: a wrong length would cut the body or hang the server.
    expect(Number(request.headers['content-length'])).toBe(Buffer.byteLength(request.body));
  });

  it('keeps the connection alive between calls', async () => {
    const c = client();
    const before = connections.count;
    for (let i = 0; i < 5; i++) await ask(c, 'm');
    await Promise.all([ask(c, 'm'), ask(c, 'm')]);
    expect(connections.count - before).toBe(2);
  });

  it('sends a call again on a fresh connection when the reused one was already closed', async () => {
    const c = client();
    await ask(c, 'm');
    const reply = await ask(c, 'reset-if-reused', 'again');
    expect(reply.choices[0]?.message.content).toBe('echo: again');
    expect(new Set(seen.map((s) => s.socket)).size).toBe(2);
  });

  it('decodes a gzip body and follows a 307 with the same method and body', async () => {
    const c = client();
    expect((await ask(c, 'gzip')).choices[0]?.message.content).toBe('unzipped');
    expect((await ask(c, 'redirect-307')).choices[0]?.message.content).toBe('after redirect with POST');
    expect(seen.at(-1)?.body).toBe(seen.at(-2)?.body);
  });

  it('ends a call whose body never finishes at the client timeout, as a timeout', async () => {
    await expect(ask(client(300), 'hang')).rejects.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
  });

  it('cancels on the caller’s signal', async () => {
    const c = client();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(
      c.chat.completions.create(
        { model: 'hang', messages: [{ role: 'user', content: 'x' }] },
        { signal: controller.signal },
      ),
    ).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
  });

  it('fails a cut-off body and a refused connection as connection errors that name the cause', async () => {
    const c = client();
    await expect(ask(c, 'truncated')).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refused = new OpenAI({
      baseURL: `http://127.0.0.1:${port}/v1`,
      apiKey: 'k',
      maxRetries: 0,
      fetch: transport.fetch,
    });
    const err = await ask(refused, 'm').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(err).not.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(((err as Error).cause as Error).message).toMatch(/^connect ECONNREFUSED/);
  });

  it('gives an error status and its body to the client, and a 204 without a body', async () => {
    const err = await ask(client(), 'not-served').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as Error).message).toContain('does not exist');
    const empty = await transport.fetch(baseURL.replace('/v1', '/no-content'));
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
  });
});

describe('the response the transport gives', () => {
  const read = async (r: Response) => ({
    status: r.status,
    ok: r.ok,
    statusText: r.statusText,
    url: r.url,
    redirected: r.redirected,
    isHeaders: r.headers instanceof Headers,
    // `date` and `keep-alive` are the server's of the moment, not the response's shape.
    headers: [...r.headers].filter(([name]) => name !== 'date' && name !== 'keep-alive'),
    retryAfter: r.headers.get('RETRY-AFTER'),
    multi: r.headers.get('x-multi'),
    cookies: r.headers.getSetCookie(),
    clone: await r.clone().json(),
    text: await r.text(),
    usedAfter: r.bodyUsed,
    again: await r.text().catch((e: unknown) => (e as Error).name),
  });

  it('reads as the global fetch’s does: headers, url, a body read once, a clone', async () => {
    transport = createHttpTransport();
    const url = baseURL.replace('/v1', '/moved/headers');
    const ours = await read(await transport.fetch(url));
    expect(ours).toEqual(await read(await fetch(url)));
    expect(ours).toMatchObject({ status: 200, statusText: 'Fine', redirected: true, again: 'TypeError' });
    expect(ours.multi).toBe('a, b');
    expect(ours.isHeaders).toBe(true);
    expect(ours.cookies).toEqual(['s=1', 't=2']);
  });

  it('gives the body as a stream to a caller that asks for one', async () => {
    transport = createHttpTransport();
    const r = await transport.fetch(baseURL.replace('/v1', '/headers'));
    const streamed = await new Response(r.body).text();
    expect(streamed).toBe('{"a":[1,2]}');
    expect(r.bodyUsed).toBe(true);
    await expect(r.json()).rejects.toThrow(TypeError);
  });

  it('gives a 429’s Retry-After to the gateway’s error classification', async () => {
    const err = await ask(client(), 'limited').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const failure = classifyLlmError(err, { role: 'weak', baseURL, model: 'limited' });
    expect(failure).toMatchObject({ retryable: true, httpStatus: 429, retryAfterSec: 7 });
  });
});
