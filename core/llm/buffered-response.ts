/**
 * A fetch Response over a body already read whole (http-transport.ts), and the headers node:http
 * parsed for it. The `openai` client reads a response's status, a few headers and its JSON; made
 * from these bytes directly that skips undici's Response, its Headers validation and the body
 * stream it would read the bytes back through — per model call a large share of the worker's
 * CPU (issue #9's bench). What a caller could still ask of a Response that a buffer cannot give
 * cheaply (`body` as a stream, `formData()`) comes from a real Response made at that moment.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { inspect } from 'node:util';

type Entries = ReturnType<Headers['entries']>;
type Names = ReturnType<Headers['keys']>;

/**
 * The real Headers as the runtime base, so that `instanceof Headers` holds (the gateway reads an
 * APIError's Retry-After only from a Headers; openai's debug log lists one); typed as a plain
 * object because undici's types declare Headers' methods as properties, which a class's own
 * methods may not override. Every method is ReceivedHeaders' own, on `lists`.
 */
const HeadersBase = Headers as unknown as new () => object;

/**
 * Response headers as fetch's Headers show them — names lower-case, iterated in name order,
 * repeated values joined by ", " (Set-Cookie kept apart) — read from node:http's parsed record
 * instead of being validated and copied one by one. Mutable, like a Response's own headers.
 */
export class ReceivedHeaders extends HeadersBase implements Headers {
  private readonly lists = new Map<string, string[]>();

  constructor(received: IncomingHttpHeaders = {}) {
    super();
    for (const name in received) {
      const value = received[name];
      if (value === undefined) continue;
      this.lists.set(name, Array.isArray(value) ? [...value] : [value]);
    }
  }

  get(name: string): string | null {
    const list = this.lists.get(name.toLowerCase());
    return list === undefined ? null : list.join(', ');
  }
  has(name: string): boolean {
    return this.lists.has(name.toLowerCase());
  }
  set(name: string, value: string): void {
    this.lists.set(name.toLowerCase(), [String(value)]);
  }
  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const list = this.lists.get(key);
    if (list) list.push(String(value));
    else this.lists.set(key, [String(value)]);
  }
  delete(name: string): void {
    this.lists.delete(name.toLowerCase());
  }
  getSetCookie(): string[] {
    return [...(this.lists.get('set-cookie') ?? [])];
  }
  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    for (const [name, value] of this.entries()) callback.call(thisArg, value, name, this);
  }
  *entries(): Entries {
    const names = [...this.lists.keys()].sort();
    for (const name of names) {
      const list = this.lists.get(name) as string[];
      // fetch lists each Set-Cookie on its own, every other header once with its values joined.
      if (name === 'set-cookie') for (const v of list) yield [name, v];
      else yield [name, list.join(', ')];
    }
  }
  *keys(): Names {
    for (const [name] of this.entries()) yield name;
  }
  *values(): Names {
    for (const [, value] of this.entries()) yield value;
  }
  [Symbol.iterator](): Entries {
    return this.entries();
  }

  /** What a log shows of it (the base's own would show its empty list). */
  [inspect.custom](): string {
    return `Headers ${inspect(Object.fromEntries(this.entries()))}`;
  }

  copy(): ReceivedHeaders {
    const copy = new ReceivedHeaders();
    for (const [name, list] of this.lists) copy.lists.set(name, [...list]);
    return copy;
  }
}

export interface BufferedResponseInit {
  status: number;
  statusText: string;
  headers: ReceivedHeaders;
  /** The URL the response came from (after redirects). */
  url: string;
  redirected?: boolean;
}

/** A Response whose body is `bytes` (null: no body, e.g. a 204 or a HEAD). Read once, as fetch's. */
export class BufferedResponse implements Response {
  readonly status: number;
  readonly statusText: string;
  readonly headers: ReceivedHeaders;
  readonly url: string;
  readonly redirected: boolean;
  readonly type: Response['type'] = 'basic';
  private used = false;
  /** The real Response, once a caller asked for what only it gives (its body stream). */
  private streamed: Response | null = null;

  constructor(
    private readonly content: Buffer | null,
    init: BufferedResponseInit,
  ) {
    this.status = init.status;
    this.statusText = init.statusText;
    this.headers = init.headers;
    this.url = init.url;
    this.redirected = init.redirected ?? false;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get body(): ReadableStream<Uint8Array> | null {
    return this.real().body;
  }

  get bodyUsed(): boolean {
    return this.used || (this.streamed?.bodyUsed ?? false);
  }

  async text(): Promise<string> {
    if (this.streamed) return this.streamed.text();
    return this.take()?.toString('utf8') ?? '';
  }

  async json(): Promise<unknown> {
    if (this.streamed) return this.streamed.json();
    // JSON.parse of '' throws a SyntaxError, as fetch's json() of an empty body does.
    return JSON.parse(this.take()?.toString('utf8') ?? '') as unknown;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    if (this.streamed) return this.streamed.arrayBuffer();
    return new Uint8Array(this.take() ?? []).buffer;
  }

  async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    if (this.streamed) return new Uint8Array(await this.streamed.arrayBuffer());
    return new Uint8Array(this.take() ?? []);
  }

  async blob(): Promise<Blob> {
    if (this.streamed) return this.streamed.blob();
    const bytes = this.take();
    return new Blob(bytes ? [new Uint8Array(bytes)] : [], { type: this.headers.get('content-type') ?? '' });
  }

  async formData(): Promise<FormData> {
    return this.real().formData();
  }

  clone(): Response {
    if (this.bodyUsed) throw new TypeError('Response.clone: Body has already been consumed.');
    if (this.streamed) return this.streamed.clone();
    return new BufferedResponse(this.content, {
      status: this.status,
      statusText: this.statusText,
      headers: this.headers.copy(),
      url: this.url,
      redirected: this.redirected,
    });
  }

  /** The body, once: a second read fails as fetch's does. */
  private take(): Buffer | null {
    if (this.used) throw new TypeError('Body is unusable: Body has already been read');
    this.used = true;
    return this.content;
  }

  /** After the body was read, the real Response has none (as fetch's `body` is then spent). */
  private real(): Response {
    if (!this.streamed) {
      this.streamed = new Response(this.used ? null : this.content, {
        status: this.status,
        statusText: this.statusText,
        headers: [...this.headers.entries()],
      });
    }
    return this.streamed;
  }
}
