/**
 * Exactly once under crashes, against the real dev Slurm: the submit activity is crashed at each
 * point of its boundary — after claiming the job row, after Slurm accepted the job but before
 * its id was recorded, after recording — and retried, 100 times over (cli) and 30 (rest); Slurm's
 * own accounting (`sacct --name`) then holds exactly one job per (campaign, stage, iteration).
 * Two concurrent attempts never both submit, and a cancel that races the submit cancels the job.
 */
import { execFileSync } from 'node:child_process';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createActivities, type Activities } from '../../activities';
import type { FineTuneCrashPoint } from '../../activities/context';
import { LlmGateway } from '../../core/llm/gateway';
import { launch, startHarness, waitFor, writeSpec, type Harness } from '../support/harness';
import { startDevSlurm, type DevSlurm } from '../support/slurm';

/**
 * Ten crashes for one job: nine alternating between "claimed, nothing submitted" and "Slurm holds
 * the job, its id not recorded" (the first of those submits it, the rest find it by name), then
 * one after the id is recorded. `first` says which of the two comes first.
 */
function crashPlan(first: 0 | 1): FineTuneCrashPoint[] {
  const two: FineTuneCrashPoint[] =
    first === 0 ? ['after-claim', 'before-record'] : ['before-record', 'after-claim'];
  return [...Array.from({ length: 9 }, (_, i) => two[i % 2] as FineTuneCrashPoint), 'after-record'];
}

let h: Harness;
let slurm: DevSlurm;
let crashAt: FineTuneCrashPoint | null = null;
let onPoint: ((point: FineTuneCrashPoint) => Promise<void>) | null = null;
let acts: Activities;
const jobIds: string[] = [];

/** A campaign on the dev Slurm with M0 and a (stand-in) dataset, its workflow never run. */
async function slurmCampaign(transport: 'cli' | 'rest'): Promise<{ campaignId: string; datasetId: string }> {
  const spec = await writeSpec(h, {
    fineTune: {
      type: 'slurm',
      transport,
      ...(transport === 'rest' ? { rest: { url: slurm.restUrl, userName: slurm.restUser } } : {}),
      // Long enough that a cancel meets a live job; every job is cancelled after the test.
      command: 'sleep 30',
      sharedDir: slurm.sharedDir,
      partition: 'debug',
      gpusPerNode: 0,
      timeLimit: '5',
      cwd: undefined,
      env: undefined,
    },
  });
  const { campaignId } = await launch(h, spec, { preflight: false });
  await acts.registerBaseModel({ campaignId });
  const ds = await h.clients.db
    .insertInto('datasets')
    .values({
      campaign_id: campaignId,
      stage: 'distill',
      iteration: 1,
      kind: 'sft',
      format: 'openai',
      uri: 'file:///dev/null',
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      rows: 0,
      bytes: 0,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { campaignId, datasetId: ds.id };
}

async function prepare(campaignId: string, datasetId: string, iteration: number): Promise<string> {
  const { jobId } = await acts.prepareFineTune({
    campaignId,
    stage: 'distill',
    iteration,
    datasetId,
    parentLabel: 'M0',
    kind: 'sft',
    loss: null,
  });
  jobIds.push(jobId);
  return jobId;
}

/** One attempt of the submit activity, as Temporal would run attempt number `attempt`. */
function submit(jobId: string, attempt: number): Promise<{ externalId: string }> {
  // Injected crashes are expected: the SDK's failure warnings would only bury the output.
  return new MockActivityEnvironment({ attempt }, { logger: new DefaultLogger('ERROR') }).run(
    acts.submitFineTune,
    { jobId },
  );
}

/** Slurm's accounting (and its queue) for a job name: the ids it knows. */
function slurmJobsNamed(name: string): string[] {
  const acct = execFileSync(
    'sacct',
    ['-X', '-n', '-P', '-a', '-S', '2020-01-01', '--name', name, '-o', 'JobID'],
    { env: slurm.env, encoding: 'utf8' },
  );
  const queue = execFileSync('squeue', ['-h', '--name', name, '-o', '%i'], {
    env: slurm.env,
    encoding: 'utf8',
  });
  const ids = new Set(
    `${acct}\n${queue}`
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== ''),
  );
  return [...ids];
}

async function jobRow(jobId: string) {
  return h.clients.db
    .selectFrom('finetune_jobs')
    .selectAll()
    .where('id', '=', jobId)
    .executeTakeFirstOrThrow();
}

beforeAll(async () => {
  slurm = startDevSlurm();
  process.env.SLURM_CONF = slurm.conf;
  h = await startHarness({ worker: false });
  acts = createActivities({
    db: h.clients.db,
    llm: new LlmGateway(h.clients.db),
    artifactsDir: h.artifactsDir,
    env: { ...slurm.env, SLURM_JWT: slurm.jwt },
    hostId: 'test-host',
    crashPoint: async (point) => {
      if (onPoint) await onPoint(point);
      if (point === crashAt) throw new Error(`injected crash at ${point}`);
    },
  });
}, 180_000);

beforeEach(() => {
  crashAt = null;
  onPoint = null;
});

afterAll(async () => {
  crashAt = null;
  onPoint = null;
  // Free the single node for the tests after this one.
  for (const jobId of jobIds)
    await acts?.cancelFineTune({ jobId, reason: 'test done' }).catch(() => undefined);
  await h?.close();
});

describe('fine-tune submit exactly once on Slurm', () => {
  for (const [transport, keys] of [
    ['cli', 10],
    ['rest', 3],
  ] as const) {
    it(`${transport}: ${keys * 10} crashes at the submit boundary leave exactly one Slurm job per key`, async () => {
      const { campaignId, datasetId } = await slurmCampaign(transport);
      let crashes = 0;
      for (let k = 0; k < keys; k++) {
        const jobId = await prepare(campaignId, datasetId, 100 + k);
        const plan = crashPlan(k % 2 === 0 ? 0 : 1);
        for (const [i, point] of plan.entries()) {
          crashAt = point;
          await expect(submit(jobId, i + 1), `attempt ${i + 1} (${point})`).rejects.toThrow(/injected crash/);
          crashes++;
        }
        crashAt = null;
        const { externalId } = await submit(jobId, plan.length + 1);
        const row = await jobRow(jobId);
        expect(row.external_id).toBe(externalId);
        const ids = await waitFor(`sacct to list ${row.name}`, async () => {
          const found = slurmJobsNamed(row.name ?? '');
          return found.length > 0 ? found : undefined;
        });
        expect(ids).toEqual([externalId]);
      }
      expect(crashes).toBe(keys * 10);
    }, 180_000);
  }

  it('two concurrent attempts submit once', async () => {
    const { campaignId, datasetId } = await slurmCampaign('cli');
    const jobId = await prepare(campaignId, datasetId, 200);
    const results = await Promise.allSettled([submit(jobId, 1), submit(jobId, 1)]);
    const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.externalId] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const reason of refused) expect(reason).toMatch(/being submitted by another attempt/);
    const row = await jobRow(jobId);
    expect(new Set(ok)).toEqual(new Set([row.external_id]));
    expect(slurmJobsNamed(row.name ?? '')).toEqual([row.external_id]);
  }, 60_000);

  // Before Slurm has the job, only the submit's read-back of the cancel flag can stop it; after,
  // the cancel finds it by name.
  for (const [when, point] of [
    ['before Slurm has the job', 'after-claim'],
    ['after Slurm accepted it, before its id is recorded', 'before-record'],
  ] as const) {
    it(`a cancel that lands ${when} cancels the Slurm job`, async () => {
      const { campaignId, datasetId } = await slurmCampaign('cli');
      const jobId = await prepare(campaignId, datasetId, point === 'after-claim' ? 300 : 301);
      onPoint = async (at) => {
        if (at !== point) return;
        onPoint = null;
        await acts.cancelFineTune({ jobId, reason: 'campaign cancelled' });
      };
      const { externalId } = await submit(jobId, 1);
      const state = await waitFor('Slurm to record the cancel', async () => {
        const out = execFileSync('sacct', ['-X', '-n', '-P', '-j', externalId, '-o', 'State'], {
          env: slurm.env,
          encoding: 'utf8',
        }).trim();
        return out.startsWith('CANCELLED') ? out : undefined;
      });
      expect(state).toMatch(/^CANCELLED/);
      expect((await jobRow(jobId)).status).toBe('cancelled');
    }, 60_000);
  }
});
