/**
 * The artifact store on any S3-compatible service (AWS S3, MinIO, Ceph, R2, …) through the AWS
 * SDK v3: a custom endpoint and path-style addressing where one is set, credentials from the
 * standard AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
 * AWS_PROFILE, …) — read by the SDK, never stored by meteor.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as S3Sdk from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { UserError } from '../errors';
import type { ArtifactBody, ArtifactStore } from './store';
import { ArtifactUriError, checkKey, joinKey, parseArtifactUri } from './uri';

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix of this store inside the bucket ('' for the bucket's root). */
  prefix: string;
  /** The service's URL (e.g. http://minio:9000); omit for AWS itself. */
  endpoint?: string;
  region: string;
  /** Keys from the worker's environment; omit for the SDK's default chain (profile, instance role, …). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/**
 * The S3 options from the environment: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_REGION, and
 * AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN when set.
 */
export function s3OptionsFromEnv(
  env: NodeJS.ProcessEnv,
): Pick<S3StoreOptions, 'endpoint' | 'region' | 'credentials'> {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  return {
    ...(endpoint ? { endpoint } : {}),
    ...(accessKeyId && secretAccessKey
      ? {
          credentials: {
            accessKeyId,
            secretAccessKey,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
  };
}

type Sdk = typeof S3Sdk;

export class S3ArtifactStore implements ArtifactStore {
  readonly rootUri: string;
  private connected: Promise<{ sdk: Sdk; client: S3Client }> | null = null;
  constructor(private readonly opts: S3StoreOptions) {
    this.rootUri = `s3://${opts.bucket}${opts.prefix ? `/${opts.prefix}` : ''}`;
  }

  /** The SDK takes a while to load: loaded on first use, so commands that never touch S3 do not pay. */
  private sdk(): Promise<{ sdk: Sdk; client: S3Client }> {
    this.connected ??= import('@aws-sdk/client-s3').then((sdk) => ({
      sdk,
      client: new sdk.S3Client({
        region: this.opts.region,
        ...(this.opts.endpoint ? { endpoint: this.opts.endpoint, forcePathStyle: true } : {}),
        ...(this.opts.credentials ? { credentials: this.opts.credentials } : {}),
      }),
    }));
    return this.connected;
  }

  uri(key: string): string {
    return `s3://${this.opts.bucket}/${this.objectKey(key)}`;
  }

  localPath(): null {
    return null;
  }

  async put(key: string, body: ArtifactBody): Promise<string> {
    // A stream of unknown length is read whole: PutObject needs the length up front.
    const bytes = body instanceof Readable ? await readAll(body) : body;
    const input = { Bucket: this.opts.bucket, Key: this.objectKey(key), Body: bytes };
    const { sdk, client } = await this.sdk();
    await this.call('put', this.uri(key), () => client.send(new sdk.PutObjectCommand(input)));
    return this.uri(key);
  }

  async putFile(key: string, file: string): Promise<string> {
    const { size } = await stat(file);
    const input = {
      Bucket: this.opts.bucket,
      Key: this.objectKey(key),
      Body: createReadStream(file),
      ContentLength: size,
    };
    const { sdk, client } = await this.sdk();
    await this.call('put', this.uri(key), () => client.send(new sdk.PutObjectCommand(input)));
    return this.uri(key);
  }

  async putDir(key: string, dir: string): Promise<string> {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const file = path.join(entry.parentPath, entry.name);
      const rel = path.relative(dir, file).split(path.sep).join('/');
      await this.putFile(`${key}/${rel}`, file);
    }
    return this.uri(key);
  }

  async get(uri: string): Promise<Buffer> {
    const { bucket, key } = this.locate(uri);
    const { sdk, client } = await this.sdk();
    const out = await this.call('get', uri, () =>
      client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key })),
    );
    if (!out.Body) throw new Error(`artifact ${uri}: the store returned no body`);
    return Buffer.from(await out.Body.transformToByteArray());
  }

  async getDir(uri: string, dir: string): Promise<number> {
    const { bucket, key } = this.locate(uri);
    const prefix = `${key}/`;
    const { sdk, client } = await this.sdk();
    let files = 0;
    let token: string | undefined;
    do {
      const list = { Bucket: bucket, Prefix: prefix, ContinuationToken: token };
      const page = await this.call('list', uri, () => client.send(new sdk.ListObjectsV2Command(list)));
      for (const object of page.Contents ?? []) {
        const objectKey = object.Key;
        if (!objectKey || objectKey.endsWith('/')) continue;
        const rel = objectKey.slice(prefix.length);
        const target = path.join(dir, ...checkKey(rel).split('/'));
        await mkdir(path.dirname(target), { recursive: true });
        const got = await this.call('get', `${uri}/${rel}`, () =>
          client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: objectKey })),
        );
        if (!(got.Body instanceof Readable))
          throw new Error(`artifact ${uri}/${rel}: the store returned no body`);
        await pipeline(got.Body, createWriteStream(target));
        files++;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    if (files === 0) throw new Error(`artifact folder ${uri} is empty or missing in the store`);
    return files;
  }

  async exists(uri: string): Promise<boolean> {
    const { bucket, key } = this.locate(uri);
    const { sdk, client } = await this.sdk();
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (err) {
      if (!isNotFound(err)) throw this.wrap('head', uri, err);
    }
    // Not an object: a folder exists when some object lies below it.
    const list = { Bucket: bucket, Prefix: `${key}/`, MaxKeys: 1 };
    const page = await this.call('list', uri, () => client.send(new sdk.ListObjectsV2Command(list)));
    return (page.KeyCount ?? 0) > 0;
  }

  private objectKey(key: string): string {
    return joinKey(this.opts.prefix, checkKey(key));
  }

  private locate(uri: string): { bucket: string; key: string } {
    const location = parseArtifactUri(uri, 'artifact uri');
    if (location.kind !== 's3' || location.prefix === '') {
      throw new ArtifactUriError(`'${uri}' is not an s3://bucket/key artifact`);
    }
    return { bucket: location.bucket, key: location.prefix };
  }

  /** Sends a command; a failure names the artifact and the endpoint (never credentials). */
  private async call<T>(what: string, uri: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw this.wrap(what, uri, err);
    }
  }

  private wrap(what: string, uri: string, err: unknown): Error {
    const name = (err as { name?: string } | null)?.name ?? 'Error';
    const message = err instanceof Error ? err.message : String(err);
    const where = this.opts.endpoint ? ` at ${this.opts.endpoint}` : '';
    const text = `artifact store${where}: ${what} ${uri} failed: ${name}: ${message}`;
    // Configuration a retry cannot fix (no bucket, no access, no credentials): fail at once.
    return CONFIG_ERRORS.has(name) ? new UserError(text) : new Error(text);
  }
}

const CONFIG_ERRORS = new Set([
  'NoSuchBucket',
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'CredentialsProviderError',
]);

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}
