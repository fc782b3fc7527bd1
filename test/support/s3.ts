/**
 * A real S3-compatible server for tests: moto's server (PyPI `moto[server]`, installed into
 * .venv-s3 by infra/s3/install.sh, which .ci/run calls), started on a free port through
 * infra/s3/start.sh and stopped on close. No server, no test: startS3Server throws with the fix.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { findFreePort } from '../../infra/stack/ports';
import { REPO_ROOT } from './harness';

export interface S3Server {
  /** e.g. http://127.0.0.1:40123 */
  endpoint: string;
  /** What a worker needs to reach it: endpoint, region and (throw-away) credentials. */
  env: Record<string, string>;
  client: S3Client;
  createBucket(name: string): Promise<void>;
  /** Every key in the bucket, sorted. */
  keys(bucket: string): Promise<string[]>;
  close(): Promise<void>;
}

export async function startS3Server(): Promise<S3Server> {
  const server = path.join(REPO_ROOT, '.venv-s3', 'bin', 'moto_server');
  if (!existsSync(server)) {
    throw new Error(
      `the S3-compatible test server is not installed (${server} is missing): run bash infra/s3/install.sh`,
    );
  }
  const port = await findFreePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn('bash', [path.join(REPO_ROOT, 'infra', 's3', 'start.sh'), String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the S3 test server exited (${child.exitCode}):\n${output}`);
    const up = await fetch(`${endpoint}/`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the S3 test server did not answer on ${endpoint} within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  const env = {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'meteor-test',
    AWS_SECRET_ACCESS_KEY: 'meteor-test-secret',
  };
  const client = new S3Client({
    endpoint,
    forcePathStyle: true,
    region: env.AWS_REGION,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  });
  return {
    endpoint,
    env,
    client,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async keys(bucket) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async close() {
      client.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
