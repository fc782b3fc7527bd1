/**
 * A campaign whose artifact store is an S3 bucket (`artifacts.uri: s3://…` in the spec), on a
 * real S3-compatible server process (moto's, test/support/s3.ts) and the `local` fine-tune
 * backend: distill → fine-tune → assess → fine-tune. Datasets and adapters land in the bucket,
 * the database holds s3:// URIs for them, the second fine-tune starts from its parent adapter
 * fetched back from the bucket, and nothing under the worker's own folder is recorded as an
 * artifact's home (the job folder there is the trainer's scratch, named as such in job_dir).
 */
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  exampleQuestions,
  launch,
  meteorctl,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';
import { startS3Server, type S3Server } from '../support/s3';

const BUCKET = 'meteor-e2e';
const PREFIX = 'campaigns/2026';
const TRAIN = 6;

let s3: S3Server;
let h: Harness;

beforeAll(async () => {
  s3 = await startS3Server();
  await s3.createBucket(BUCKET);
  h = await startHarness({ workerEnv: s3.env });
}, 180_000);

afterAll(async () => {
  await h?.close();
  await s3?.close();
});

async function object(key: string): Promise<Buffer> {
  const out = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(
    await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
}

function keyOf(uri: string): string {
  const prefix = `s3://${BUCKET}/`;
  expect(uri.startsWith(prefix), `${uri} is in s3://${BUCKET}`).toBe(true);
  return uri.slice(prefix.length);
}

describe('a campaign whose artifacts go to an S3 bucket', () => {
  it('keeps datasets and adapters in the bucket and records only s3:// URIs for them', async () => {
    const train = await writeQuestions(h.tmp, 's3-train.jsonl', await exampleQuestions(TRAIN));
    const spec = await writeSpec(h, {
      name: 's3-artifacts',
      questions: { train },
      artifacts: { uri: `s3://${BUCKET}/${PREFIX}` },
      stages: {
        distill: { batchSize: 3 },
        assess: { enabled: true, iterations: 1, maxRounds: 1, batchSize: 3 },
      },
    });
    const { campaignId } = await launch(h, spec);
    const status = await waitDone(h, campaignId, 150_000);
    expect(status.state).toBe('completed');
    const { db } = h.clients;

    // Datasets: every format of both training stages, in the bucket, bytes as recorded.
    const datasets = await db
      .selectFrom('datasets')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(datasets.map((d) => `${d.stage}-${d.iteration}.${d.format}`).sort()).toEqual([
      'assess-1.llamafactory',
      'assess-1.openai',
      'assess-1.trl',
      'distill-1.llamafactory',
      'distill-1.openai',
      'distill-1.trl',
    ]);
    for (const d of datasets) {
      const key = keyOf(d.uri);
      expect(key).toBe(`${PREFIX}/${campaignId}/${d.stage}-${d.iteration}/${d.kind}.${d.format}.jsonl`);
      const bytes = await object(key);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(d.sha256);
      expect(bytes.length).toBe(Number(d.bytes));
      expect(
        bytes
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      ).toHaveLength(d.rows);
    }

    // Adapters: each fine-tune's output uploaded; jobs and model versions point at the bucket.
    const jobs = await db
      .selectFrom('finetune_jobs')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .orderBy('created_at')
      .execute();
    expect(jobs.map((j) => [j.stage, j.status])).toEqual([
      ['distill', 'succeeded'],
      ['assess', 'succeeded'],
    ]);
    const keys = await s3.keys(BUCKET);
    for (const j of jobs) {
      const key = keyOf(j.checkpoint_uri ?? '');
      expect(key).toBe(`${PREFIX}/${campaignId}/finetune/${j.stage}-${j.iteration}/output`);
      expect(keys).toContain(`${key}/adapter.json`);
    }
    const models = await db
      .selectFrom('model_versions')
      .select(['label', 'checkpoint_uri', 'finetune_job_id'])
      .where('campaign_id', '=', campaignId)
      .orderBy('label')
      .execute();
    expect(models.map((m) => m.label)).toEqual(['M0', 'M1', 'M2']);
    expect(models[0]?.checkpoint_uri).toBeNull();
    for (const m of models.slice(1)) {
      expect(m.checkpoint_uri).toBe(jobs.find((j) => j.id === m.finetune_job_id)?.checkpoint_uri);
    }

    // M2 was trained from M1 fetched back from the bucket: its adapter is of generation 2 and
    // holds M1's examples; the job read the parent from the copy staged in its own folder.
    const [distillJob, assessJob] = jobs as [(typeof jobs)[0], (typeof jobs)[0]];
    expect(distillJob.parent_checkpoint).toBeNull();
    expect(assessJob.parent_checkpoint).toBe(path.join(assessJob.job_dir_remote ?? '', 'parent'));
    const m1 = JSON.parse(
      (await object(`${keyOf(distillJob.checkpoint_uri ?? '')}/adapter.json`)).toString(),
    ) as {
      generation: number;
      examples: Array<{ question: string }>;
    };
    const m2 = JSON.parse(
      (await object(`${keyOf(assessJob.checkpoint_uri ?? '')}/adapter.json`)).toString(),
    ) as {
      generation: number;
      examples: Array<{ question: string }>;
    };
    expect(m1.generation).toBe(1);
    expect(m2.generation).toBe(2);
    expect(m2.examples.length).toBeGreaterThanOrEqual(m1.examples.length);
    const staged = await db
      .selectFrom('finetune_events')
      .select('message')
      .where('job_id', '=', assessJob.id)
      .where('message', 'like', 'parent adapter s3://%staged%')
      .execute();
    expect(staged).toHaveLength(1);

    // Nothing recorded as an artifact's home is a file, and the datasets staged on their way to
    // the bucket are gone from the worker's folder.
    const homes = [
      ...datasets.map((d) => d.uri),
      ...jobs.map((j) => j.checkpoint_uri),
      ...models.map((m) => m.checkpoint_uri),
    ];
    expect(homes.filter((u) => u !== null && !u.startsWith('s3://'))).toEqual([]);
    const staging = path.join(h.artifactsDir, '.staging');
    const left = await readdir(staging, { recursive: true, withFileTypes: true }).catch(() => []);
    expect(left.filter((e) => e.isFile()).map((e) => e.name)).toEqual([]);
    // The report goes to the bucket too, by URI.
    const reportKey = `${PREFIX}/reports/${campaignId}.html`;
    const report = await meteorctl(
      h,
      ['campaign', 'report', campaignId, '--html', `s3://${BUCKET}/${reportKey}`],
      {
        env: s3.env,
      },
    );
    expect(report.code, report.stderr).toBe(0);
    expect(report.stderr).toContain(`HTML report written to s3://${BUCKET}/${reportKey}`);
    expect((await object(reportKey)).toString('utf8')).toMatch(/^<!doctype html>/i);

    process.stderr.write(
      `[artifacts-s3] ${keys.length} objects in s3://${BUCKET}; ${datasets.length} datasets, ${jobs.length} checkpoints\n`,
    );
  });
});
