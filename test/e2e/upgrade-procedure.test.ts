/**
 * The upgrade procedure of the README, end to end (issue 11, part 4): a campaign launched by the
 * previous release (v0.1.0, its own CLI and worker from a git worktree, on a database its own
 * migrations made) and paused mid-stage, then this version's worker started beside it (it
 * migrates the database while the old worker still runs, and — the deployment's first version —
 * makes itself current), the old worker stopped, the campaign resumed with this version's CLI. It
 * completes on the new build with one record per question, and the model server answered no
 * request twice: nothing done before the upgrade was done again.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeDeployment, packageBuildId } from '../../core/worker-deployment';
import {
  adminQuery,
  countRows,
  distillRecordCounts,
  exampleQuestions,
  meteorctl,
  services,
  sleep,
  startHarness,
  waitDone,
  waitFor,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';
import {
  checkoutPreviousVersion,
  previousMeteorctl,
  type PreviousVersion,
} from '../support/previous-version';
import {
  exited,
  spawnHarnessWorker,
  spawnWorkerProcess,
  stopProcesses,
  workerProcessEnv,
} from '../support/worker-process';

const PREVIOUS = 'v0.1.0';
const TRAIN_QUESTIONS = 24;
const children: ChildProcess[] = [];
let h: Harness;
let prev: PreviousVersion;
let databaseUrl: string;
let dbName: string;
const deployment = `meteor-upgrade-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  // A database of its own: the shared one is at this version's schema, which v0.1.0 refuses.
  dbName = `meteor_upgrade_${randomBytes(4).toString('hex')}`;
  await adminQuery(`create database ${dbName}`);
  const url = new URL(services().databaseUrl);
  url.pathname = `/${dbName}`;
  databaseUrl = url.toString();
  prev = await checkoutPreviousVersion(PREVIOUS);
  h = await startHarness({ services: { ...services(), databaseUrl }, latencyMs: 200, worker: false });
});

afterAll(async () => {
  await stopProcesses(children, 'SIGKILL');
  await h?.close();
  await prev?.remove();
  if (dbName) await adminQuery(`drop database if exists ${dbName} with (force)`);
});

describe(`upgrading from ${PREVIOUS} while a campaign is paused mid-stage`, () => {
  it('resumes on the new build and completes with one record per question, nothing redone', async () => {
    const steps: string[] = [];
    const t0 = Date.now();
    const step = (what: string) => steps.push(`${((Date.now() - t0) / 1000).toFixed(1)} s  ${what}`);
    const env = { DATABASE_URL: databaseUrl, METEOR_TASK_QUEUE: h.taskQueue };
    // v0.1.0's own example campaign, on the simulator, Stage 1 and its fine-tune only.
    const specPath = await writeSpec(
      h,
      {
        name: 'upgrade',
        questions: {
          train: await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(TRAIN_QUESTIONS)),
        },
        models: { weak: { concurrency: 2 }, strong: { concurrency: 2 } },
        // One batch of 4 at a time: the pause lands with most of the stage still to do.
        stages: { distill: { batchSize: 4, parallelBatches: 1 } },
      },
      path.join(prev.dir, 'examples', 'kubernetes-ops', 'campaign.yaml'),
    );

    const old = await spawnWorkerProcess(
      ['--task-queue', h.taskQueue, '--queues', `${h.taskQueue},${h.taskQueue}-gpu`],
      workerProcessEnv({ ...env, METEOR_ARTIFACTS_DIR: h.artifactsDir }),
      { cwd: prev.dir, label: `${PREVIOUS} worker` },
    );
    children.push(old.child);
    step(`${PREVIOUS} worker started (it migrated the empty database to its schema)`);
    const launched = await previousMeteorctl(prev, ['campaign', 'launch', '-f', specPath, '--json'], env);
    expect(launched.stderr).toBe('');
    const { campaignId, workflowId } = JSON.parse(launched.stdout) as {
      campaignId: string;
      workflowId: string;
    };
    h.launched.push(workflowId);
    step(`campaign ${campaignId} launched with ${PREVIOUS}'s meteorctl`);

    await waitFor(
      '4 distill records',
      async () => (await countRows(h, 'distill_records', campaignId)) >= 4,
      60_000,
      50,
    );
    // The `pause` signal v0.1.0's `campaign pause` sends, sent from here: its CLI takes seconds to
    // start on a busy machine, and the stage would be over by then.
    await h.clients.temporal.workflow.getHandle(workflowId).signal('pause');
    // The batches in flight finish; then nothing moves until resumed.
    let before = -1;
    await waitFor(
      'the paused campaign to settle',
      async () => {
        const n = await countRows(h, 'distill_records', campaignId);
        const settled = n === before;
        before = n;
        return settled;
      },
      60_000,
      1_500,
    );
    const status = JSON.parse(
      (await previousMeteorctl(prev, ['campaign', 'status', campaignId, '--json'], env)).stdout,
    ) as { state: string };
    expect(status.state).toBe('paused');
    expect(before).toBeLessThan(TRAIN_QUESTIONS);
    const recordsBefore = await h.clients.db
      .selectFrom('distill_records')
      .select(['question_id', 'created_at'])
      .where('campaign_id', '=', campaignId)
      .orderBy('question_id')
      .execute();
    step(`paused mid-stage with ${before} of ${TRAIN_QUESTIONS} distill records`);

    // Upgrade: the new worker beside the old one, on the same database and queues.
    const fresh = await spawnHarnessWorker(h, {
      DATABASE_URL: databaseUrl,
      METEOR_DEPLOYMENT_NAME: deployment,
    });
    children.push(fresh.child);
    step('new worker started: it migrated the database on while the old worker ran');
    await waitFor('the new build to be current', async () => {
      const d = await describeDeployment(
        h.clients.temporal.workflowService,
        h.clients.services.namespace,
        deployment,
      );
      return d?.currentBuildId === packageBuildId();
    });
    step(`build ${packageBuildId()} made itself current (the deployment's first version)`);
    old.child.kill('SIGTERM');
    await exited(old.child);
    step(`${PREVIOUS} worker stopped`);
    await sleep(500);
    expect(await countRows(h, 'distill_records', campaignId)).toBe(before);

    const resumed = await meteorctl(h, ['campaign', 'resume', campaignId], {
      env: { DATABASE_URL: databaseUrl },
    });
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain(`resume sent to ${campaignId}`);
    step("resumed with this version's meteorctl");
    const done = await waitDone(h, campaignId);
    step(`campaign ${done.state}`);
    process.stderr.write(`[upgrade] steps:\n  ${steps.join('\n  ')}\n`);
    expect(done.state).toBe('completed');

    expect(await distillRecordCounts(h, campaignId)).toEqual({
      n: TRAIN_QUESTIONS,
      distinct: TRAIN_QUESTIONS,
    });
    // The records v0.1.0 wrote are the ones there now: none written again.
    const recordsAfter = await h.clients.db
      .selectFrom('distill_records')
      .select(['question_id', 'created_at'])
      .where('campaign_id', '=', campaignId)
      .where(
        'question_id',
        'in',
        recordsBefore.map((r) => r.question_id),
      )
      .orderBy('question_id')
      .execute();
    expect(recordsAfter).toEqual(recordsBefore);
    expect(await countRows(h, 'finetune_jobs', campaignId)).toBe(1);
    // Counted at the model server: no request answered twice across the upgrade.
    expect(await paidTwice(h, [campaignId])).toEqual([]);
    // The campaign and its stage moved from unversioned to the new build, and stay pinned there.
    const d = await h.clients.temporal.workflow.getHandle(workflowId).describe();
    const info = d.raw.workflowExecutionInfo?.versioningInfo;
    expect([info?.behavior, info?.deploymentVersion?.buildId]).toEqual([1, packageBuildId()]);
  });
});
