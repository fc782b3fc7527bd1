/**
 * Worker Versioning (issue 11): workers of two builds of one Worker Deployment on the same task
 * queues, as during an upgrade. A campaign started on build `a` and paused mid-stage stays on `a`
 * after `b` is promoted — its stage and fine-tune children with it — while a campaign launched
 * after the promotion runs on `b`. Real `meteorctl worker` processes and real `meteorctl
 * deployment` commands against the test's Temporal dev server.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeDeployment } from '../../core/worker-deployment';
import { pauseSignal, resumeSignal } from '../../workflows/messages';
import {
  countRows,
  distillRecordCounts,
  exampleQuestions,
  launch,
  meteorctl,
  startHarness,
  waitDone,
  waitFor,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';
import { spawnHarnessWorker, stopProcesses, type WorkerProcess } from '../support/worker-process';

const TRAIN_QUESTIONS = 24;
const children: ChildProcess[] = [];
let h: Harness;
// A deployment of this test's own: other tests' workers poll as "meteor".
const deployment = `meteor-versioning-${randomBytes(3).toString('hex')}`;

async function workerOfBuild(buildId: string): Promise<WorkerProcess> {
  const worker = await spawnHarnessWorker(h, {
    METEOR_DEPLOYMENT_NAME: deployment,
    METEOR_BUILD_ID: buildId,
  });
  children.push(worker.child);
  return worker;
}

/** The build each run of a campaign (the campaign, its stages, its fine-tunes) is pinned to. */
async function buildsOfRuns(workflowId: string): Promise<Record<string, string>> {
  const builds: Record<string, string> = {};
  const ids = [workflowId];
  for await (const wf of h.clients.temporal.workflow.list({ query: `RootWorkflowId = '${workflowId}'` })) {
    if (wf.workflowId !== workflowId) ids.push(wf.workflowId);
  }
  for (const id of ids) {
    const d = await h.clients.temporal.workflow.getHandle(id).describe();
    const info = d.raw.workflowExecutionInfo?.versioningInfo;
    builds[`${d.type} ${id}`] =
      `${info?.behavior === 1 ? 'pinned' : String(info?.behavior)} ${info?.deploymentVersion?.buildId}`;
  }
  return builds;
}

beforeAll(async () => {
  h = await startHarness({ latencyMs: 150, worker: false });
});

afterAll(async () => {
  await stopProcesses(children, 'SIGKILL');
  await h?.close();
});

describe('workers of two builds during an upgrade', () => {
  it('keeps a running campaign on the build it started on and starts new ones on the promoted build', async () => {
    const specPath = await writeSpec(h, {
      name: 'versioning',
      questions: {
        train: await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(TRAIN_QUESTIONS)),
      },
      models: { weak: { concurrency: 4 }, strong: { concurrency: 4 } },
      // One batch at a time: the pause lands with most of the stage still to do.
      stages: { distill: { batchSize: 4, parallelBatches: 1 } },
    });
    const a = await workerOfBuild('a');
    // The deployment's first version becomes current by itself: a fresh install needs no step.
    await waitFor('build a current', async () => {
      const d = await describeDeployment(
        h.clients.temporal.workflowService,
        h.clients.services.namespace,
        deployment,
      );
      return d?.currentBuildId === 'a';
    });
    const first = await launch(h, specPath);
    const handle1 = h.clients.temporal.workflow.getHandle(first.workflowId);
    await waitFor(
      '4 distill records',
      async () => (await countRows(h, 'distill_records', first.campaignId)) >= 4,
      60_000,
      50,
    );
    await handle1.signal(pauseSignal);

    // Build b polls the same queues; until promoted it takes nothing new.
    const b = await workerOfBuild('b');
    await waitFor(
      'b says it is not current',
      async () => b.output().includes('new campaigns start on build a'),
      30_000,
    );
    const refused = await meteorctl(h, ['deployment', 'promote', 'nosuch', '--deployment-name', deployment]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`No worker of ${deployment} build nosuch has polled yet`);
    const promoted = await meteorctl(h, ['deployment', 'promote', 'b', '--deployment-name', deployment]);
    expect(promoted.stderr).toBe('');
    expect(promoted.code).toBe(0);
    const status = await meteorctl(h, ['deployment', 'status', '--deployment-name', deployment]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/new campaigns start on: build b/);
    expect(status.stdout).toMatch(/^ {4}a +draining +pinned runs remain/m);

    const second = await launch(h, specPath);
    await handle1.signal(resumeSignal);
    const [done1, done2] = await Promise.all([waitDone(h, first.campaignId), waitDone(h, second.campaignId)]);
    expect([done1.state, done2.state]).toEqual(['completed', 'completed']);

    const builds1 = await buildsOfRuns(first.workflowId);
    const builds2 = await buildsOfRuns(second.workflowId);
    process.stderr.write(`[versioning] ${JSON.stringify({ builds1, builds2 })}\n`);
    // The campaign, its distill stage and its fine-tune: three runs each, every one pinned.
    expect(
      Object.keys(builds1)
        .map((k) => k.split(' ')[0])
        .sort(),
    ).toEqual(['campaignWorkflow', 'fineTuneWorkflow', 'stageWorkflow']);
    expect(new Set(Object.values(builds1))).toEqual(new Set(['pinned a']));
    expect(Object.keys(builds2)).toHaveLength(3);
    expect(new Set(Object.values(builds2))).toEqual(new Set(['pinned b']));

    for (const c of [first, second]) {
      expect(await distillRecordCounts(h, c.campaignId)).toEqual({
        n: TRAIN_QUESTIONS,
        distinct: TRAIN_QUESTIONS,
      });
      expect(await countRows(h, 'finetune_jobs', c.campaignId)).toBe(1);
    }
    // Pausing and moving builds redid nothing: the model server answered each request once.
    expect(await paidTwice(h, [first.campaignId, second.campaignId])).toEqual([]);
    expect(a.child.exitCode).toBeNull();
  });
});
