/**
 * Upgrades: the workflow histories released versions left behind (test/fixtures/histories/<version>/,
 * recorded by scripts/record-histories.sh from a tag) replay against the current workflow code, so
 * a change that would break a campaign running across an upgrade fails here, naming the history.
 * A deliberately changed copy of the workflows fails the same replay: the check can fail.
 * Replay needs no server, only the workflow bundle.
 */
import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { historyFromJSON, type History } from '@temporalio/common/lib/proto-utils';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { beforeAll, describe, expect, it } from 'vitest';
import { installDevRuntime } from '../../workers/runtime';
import { WORKFLOWS_PATH, workflowBundle } from '../../workers/worker';
import { bundleWorkflowsInChild } from '../../workers/workflow-bundle';
import { REPO_ROOT } from '../support/harness';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'histories');

/** What scripts/record-histories.ts writes to index.json (the fields read here). */
interface FixtureEntry {
  file: string;
  workflowType: string;
  /** Replay needs the original id: the campaign derives its children's ids from it. */
  workflowId: string;
  covers: string[];
}
interface FixtureIndex {
  version: string;
  commit: string;
  histories: FixtureEntry[];
}

/** Read at collection time: one describe block per recorded version. */
const VERSIONS = existsSync(FIXTURES)
  ? readdirSync(FIXTURES, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort()
  : [];

async function readIndex(version: string): Promise<FixtureIndex> {
  return JSON.parse(await readFile(path.join(FIXTURES, version, 'index.json'), 'utf8')) as FixtureIndex;
}

async function readHistory(version: string, entry: FixtureEntry): Promise<History> {
  return historyFromJSON(JSON.parse(await readFile(path.join(FIXTURES, version, entry.file), 'utf8')));
}

/** Replays the entries one after another on one replay worker; returns `file: error` per failure. */
async function replayAll(
  bundle: WorkflowBundleWithSourceMap,
  version: string,
  entries: FixtureEntry[],
): Promise<string[]> {
  const histories = await Promise.all(
    entries.map(async (e) => ({ workflowId: e.workflowId, history: await readHistory(version, e) })),
  );
  const failures: string[] = [];
  let i = 0;
  // Results come in the order the histories went in (the replay worker takes one at a time).
  for await (const result of Worker.runReplayHistories({ workflowBundle: bundle }, histories)) {
    const entry = entries[i++] as FixtureEntry;
    if (result.error)
      failures.push(`${version}/${entry.file}: ${result.error.name}: ${result.error.message}`);
  }
  expect(i, 'every history replayed').toBe(entries.length);
  return failures;
}

/**
 * What each recorded set must hold for the check to mean something: every workflow type, the
 * pause and continue-as-new paths, each of METEOR's stages, the manual deploy's wait, the line's
 * trained and skipped iterations.
 */
const REQUIRED: Array<[string, (e: FixtureEntry) => boolean]> = [
  ['a campaign paused and resumed', (e) => isRun(e, 'campaignWorkflow', 'signal:pause', 'signal:resume')],
  ['a campaign continuing as new', (e) => isRun(e, 'campaignWorkflow', 'continued-as-new')],
  ['a campaign run continued from another', (e) => isRun(e, 'campaignWorkflow', 'from-continue-as-new')],
  ['a stage paused and resumed', (e) => isRun(e, 'stageWorkflow', 'signal:pause', 'signal:resume')],
  ['a stage continuing as new', (e) => isRun(e, 'stageWorkflow', 'continued-as-new')],
  ...['distill', 'assess', 'contrast', 'evaluate'].map((stage): [string, (e: FixtureEntry) => boolean] => [
    `the ${stage} stage`,
    (e) => isRun(e, 'stageWorkflow', `stage:${stage}-1`),
  ]),
  ['a fine-tune polling its job', (e) => isRun(e, 'fineTuneWorkflow', 'timer', 'completed')],
  ['a fine-tune waiting for model register', (e) => isRun(e, 'fineTuneWorkflow', 'signal:modelRegistered')],
  ['a line iteration that trained', (e) => isRun(e, 'lineIterationWorkflow', 'line:completed')],
  ['a line iteration with nothing new', (e) => isRun(e, 'lineIterationWorkflow', 'line:skipped')],
];

function isRun(e: FixtureEntry, type: string, ...covers: string[]): boolean {
  return e.workflowType === type && covers.every((c) => e.covers.includes(c));
}

describe('committed histories of released versions', () => {
  let bundle: WorkflowBundleWithSourceMap;
  beforeAll(async () => {
    installDevRuntime();
    bundle = await workflowBundle();
  });

  it('has at least one recorded version', () => {
    expect(VERSIONS).toContain('v0.1.0');
  });

  describe.each(VERSIONS)('%s', (version) => {
    it('lists every history file in its index, and covers what an upgrade must survive', async () => {
      const index = await readIndex(version);
      expect(index.version).toBe(version);
      const files = readdirSync(path.join(FIXTURES, version))
        .filter((f) => f !== 'index.json')
        .sort();
      expect(index.histories.map((e) => e.file).sort()).toEqual(files);
      const missing = REQUIRED.filter(([, found]) => !index.histories.some(found)).map(([what]) => what);
      expect(missing, 'kinds of run the recorded set lacks').toEqual([]);
    });

    it('replays every history against the current workflow code', async () => {
      const index = await readIndex(version);
      expect(await replayAll(bundle, version, index.histories)).toEqual([]);
    });
  });
});

/** A change to a copy of workflows/: `from` must occur exactly once in `file`. */
interface Change {
  what: string;
  file: string;
  from: string;
  to: string;
}

const CHANGES: Change[] = [
  {
    // Today's question count per step, as if it had been added without its patch.
    what: "countStageQuestions without patched('count-questions-per-step')",
    file: 'campaign.ts',
    from: "patched('count-questions-per-step')",
    to: 'true',
  },
  {
    what: 'one more activity call before the plan is loaded',
    file: 'campaign.ts',
    from: '    const plan = input.resume?.plan ?? ',
    to: "    await acts.setCampaignState({ campaignId, state: 'running' });\n    const plan = input.resume?.plan ?? ",
  },
];

/** Bundles a copy of workflows/ with `change` made, as a worker would bundle it. */
async function bundleChanged(change: Change): Promise<WorkflowBundleWithSourceMap> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meteor-changed-workflows-'));
  try {
    // The bundler resolves packages from the copy upwards: give it this checkout's.
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    await cp(WORKFLOWS_PATH, path.join(dir, 'workflows'), { recursive: true });
    const file = path.join(dir, 'workflows', change.file);
    const source = await readFile(file, 'utf8');
    expect(source.split(change.from).length - 1, `workflows/${change.file} holds "${change.from}" once`).toBe(
      1,
    );
    await writeFile(file, source.replace(change.from, change.to));
    return await bundleWorkflowsInChild(path.join(dir, 'workflows'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('a workflow whose commands changed without a patch', () => {
  /** v0.1.0's first campaign run: it loads the plan, is paused and resumed, runs distill. */
  async function firstCampaignRun(): Promise<{ history: History; workflowId: string }> {
    const index = await readIndex('v0.1.0');
    const first = index.histories.find(
      (e) => e.workflowType === 'campaignWorkflow' && !e.covers.includes('from-continue-as-new'),
    );
    if (!first) throw new Error('v0.1.0 has no first campaign run');
    return { history: await readHistory('v0.1.0', first), workflowId: first.workflowId };
  }

  beforeAll(() => {
    installDevRuntime();
  });

  it('replays v0.1.0’s campaign from an unchanged copy (the copy and its bundle are sound)', async () => {
    const { history, workflowId } = await firstCampaignRun();
    const copy = await bundleChanged({
      what: 'nothing',
      file: 'campaign.ts',
      from: 'patched(',
      to: 'patched(',
    });
    await expect(
      Worker.runReplayHistory({ workflowBundle: copy }, history, workflowId),
    ).resolves.toBeUndefined();
  });

  it.each(CHANGES)('fails to replay v0.1.0’s campaign: $what', async (change) => {
    const { history, workflowId } = await firstCampaignRun();
    const changed = await bundleChanged(change);
    const error = await Worker.runReplayHistory({ workflowBundle: changed }, history, workflowId).then(
      () => null,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(DeterminismViolationError);
    // The added activity command is what no longer matches the recorded events.
    expect((error as DeterminismViolationError).message).toMatch(/Nondeterminism error: Activity/);
  });
});
