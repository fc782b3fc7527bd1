/**
 * Both artifact stores against one contract: the filesystem store on a scratch folder, the S3
 * store against a real S3-compatible server process (moto's, see test/support/s3.ts) — never a
 * stubbed client. A missing server fails the file with the command that installs it.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  artifactsUriOf,
  createArtifactStores,
  openArtifactStore,
  parseArtifactUri,
  type ArtifactStore,
} from '../../core/artifacts';
import { ArtifactsSchema } from '../../core/spec';
import { startS3Server, type S3Server } from '../support/s3';

let tmp: string;
let s3: S3Server;
const BUCKET = 'meteor-unit';

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'meteor-artifacts-'));
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
}, 90_000);

afterAll(async () => {
  await s3?.close();
  await rm(tmp, { recursive: true, force: true });
});

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

const stores: Array<[string, () => Promise<ArtifactStore>, string]> = [
  ['file://', async () => await openArtifactStore(`file://${path.join(tmp, 'store')}`, {}), 'file://'],
  ['s3://', async () => await openArtifactStore(`s3://${BUCKET}/runs/a`, s3.env), `s3://${BUCKET}/runs/a/`],
];

describe.each(stores)('the %s artifact store', (_name, open, uriPrefix) => {
  it('puts bytes, strings and streams under keys and gets them back by URI', async () => {
    const store = await open();
    const a = await store.put('c1/distill-0/sft.openai.jsonl', '{"a":1}\n');
    const b = await store.put('c1/bytes.bin', new Uint8Array([0, 1, 2, 255]));
    const c = await store.put('c1/stream.txt', Readable.from(['hello ', 'stream']));
    expect(a).toBe(store.uri('c1/distill-0/sft.openai.jsonl'));
    for (const uri of [a, b, c]) expect(uri.startsWith(uriPrefix)).toBe(true);
    expect((await store.get(a)).toString()).toBe('{"a":1}\n');
    expect([...(await store.get(b))]).toEqual([0, 1, 2, 255]);
    expect((await store.get(c)).toString()).toBe('hello stream');
    expect(await store.exists(a)).toBe(true);
    expect(await store.exists(store.uri('c1/nothing-here'))).toBe(false);
    await expect(store.get(store.uri('c1/nothing-here'))).rejects.toThrow(/nothing-here/);
  });

  it('uploads a folder and downloads it elsewhere, file for file', async () => {
    const store = await open();
    const src = await mkdtemp(path.join(tmp, 'src-'));
    await mkdir(path.join(src, 'nested', 'deeper'), { recursive: true });
    await writeFile(path.join(src, 'adapter_config.json'), '{"peft_type":"LORA"}');
    await writeFile(path.join(src, 'nested', 'deeper', 'weights.bin'), Buffer.alloc(70_000, 7));
    const uri = await store.putDir('c1/finetune/distill-0/output', src);
    expect(uri).toBe(store.uri('c1/finetune/distill-0/output'));
    expect(await store.exists(uri)).toBe(true);
    const dst = path.join(tmp, `dst-${Math.random().toString(16).slice(2)}`);
    expect(await store.getDir(uri, dst)).toBe(2);
    expect(await listFiles(dst)).toEqual([
      'adapter_config.json',
      path.join('nested', 'deeper', 'weights.bin'),
    ]);
    expect(await readFile(path.join(dst, 'nested', 'deeper', 'weights.bin'))).toEqual(
      Buffer.alloc(70_000, 7),
    );
    const file = path.join(src, 'adapter_config.json');
    const fileUri = await store.putFile('c1/one.json', file);
    expect((await store.get(fileUri)).toString()).toBe('{"peft_type":"LORA"}');
  });

  it('refuses keys that climb out of the store', async () => {
    const store = await open();
    for (const key of ['../x', '/abs', 'a//b', 'a/./b', '']) {
      await expect(store.put(key, 'x')).rejects.toThrow(/relative path/);
    }
  });
});

describe('the S3 store', () => {
  it('keeps objects where the URI says (bucket, prefix, key) and writes nothing locally', async () => {
    const store = await openArtifactStore(`s3://${BUCKET}/p/q`, s3.env);
    expect(store.localPath('x')).toBeNull();
    await store.put('k/v.txt', 'v');
    expect(await s3.keys(BUCKET)).toContain('p/q/k/v.txt');
  });

  it('names the endpoint and the artifact when the bucket does not exist, as an error retries cannot fix', async () => {
    const store = await openArtifactStore('s3://no-such-bucket/x', s3.env);
    // A UserError: activities fail at once on it (workflows/retry.ts) instead of retrying.
    await expect(store.put('a.txt', 'a')).rejects.toMatchObject({ name: 'UserError' });
    await expect(store.put('a.txt', 'a')).rejects.toThrow(
      new RegExp(`artifact store at ${s3.endpoint}: put s3://no-such-bucket/x/a.txt failed: NoSuchBucket`),
    );
  });
});

describe('choosing the store', () => {
  it('takes the spec, then METEOR_ARTIFACTS_URI, then the worker folder', () => {
    const dir = '/var/lib/meteor/artifacts';
    expect(
      artifactsUriOf({ artifacts: { uri: 's3://b/p' } }, { METEOR_ARTIFACTS_URI: 'file:///x' }, dir),
    ).toBe('s3://b/p');
    expect(artifactsUriOf({}, { METEOR_ARTIFACTS_URI: 'file:///shared/m' }, dir)).toBe('file:///shared/m');
    expect(artifactsUriOf({}, {}, dir)).toBe('file:///var/lib/meteor/artifacts');
  });

  it('parses both kinds and rejects the rest, naming the field', () => {
    expect(parseArtifactUri('file:///shared/meteor')).toEqual({ kind: 'file', dir: '/shared/meteor' });
    expect(parseArtifactUri('s3://my-bucket/a/b/')).toEqual({
      kind: 's3',
      bucket: 'my-bucket',
      prefix: 'a/b',
    });
    expect(parseArtifactUri('s3://my-bucket')).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: '' });
    expect(() => parseArtifactUri('file://relative/x')).toThrow(/artifacts.uri: .*absolute file URI/);
    expect(() => parseArtifactUri('s3://Bad_Bucket/x')).toThrow(/not a valid S3 bucket name/);
    expect(() => parseArtifactUri('gs://b/x', 'METEOR_ARTIFACTS_URI')).toThrow(
      /^METEOR_ARTIFACTS_URI: 'gs:\/\/b\/x' is neither/,
    );
  });

  it('validates the spec field at launch', () => {
    expect(ArtifactsSchema.safeParse({ uri: 's3://meteor-artifacts/prod' }).success).toBe(true);
    expect(ArtifactsSchema.safeParse({ uri: 'file:///shared/meteor' }).success).toBe(true);
    for (const uri of ['gs://b/x', 'file://relative', 's3://Bad_Bucket', '/shared/meteor']) {
      const parsed = ArtifactsSchema.safeParse({ uri });
      expect(parsed.success, uri).toBe(false);
      expect(parsed.error?.issues[0]?.message).toBe('file:///<shared dir> or s3://<bucket>/<prefix>');
    }
  });

  it("opens one store per URI for a worker, and a file store on the worker's folder by default", async () => {
    const stores = createArtifactStores({ artifactsDir: path.join(tmp, 'worker'), env: s3.env });
    const byDefault = await stores.forCampaign({});
    expect(byDefault.rootUri).toBe(`file://${path.join(tmp, 'worker')}`);
    expect(byDefault.localPath('a/b')).toBe(path.join(tmp, 'worker', 'a', 'b'));
    const s3a = await stores.forCampaign({ artifacts: { uri: `s3://${BUCKET}/one` } });
    expect(await stores.forCampaign({ artifacts: { uri: `s3://${BUCKET}/one` } })).toBe(s3a);
    const uri = await s3a.put('x.txt', 'x');
    // Any artifact URI met in the database can be read back.
    expect((await (await stores.forUri(uri)).get(uri)).toString()).toBe('x');
  });
});
