/**
 * Evolution line operations against the real Temporal dev server and Postgres: a refused line
 * spec creates nothing (no row, no schedule `line-<name>`); a created line has its Schedule as
 * specified; pause/unpause/trigger/delete act on it; `line status --json` reports it. Schedules
 * here run every hour, so nothing starts on its own during the test except through `trigger`.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ScheduleNotFoundError, type ScheduleDescription } from '@temporalio/client';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createLine, deleteLine } from '../../client/lines';
import { UserError } from '../../core/errors';
import { loadLineSpecFile } from '../../core/line-spec-file';
import { findFreePort } from '../../infra/stack/ports';
import {
  launch,
  startHarness,
  waitFor,
  writeSpec,
  meteorctl,
  type CliResult,
  type Harness,
} from '../support/harness';

let h: Harness;
/** A campaign spec on the harness's simulator, with the evaluation on (the gate needs it). */
let campaign: string;
let counter = 0;

/** meteorctl against this file's harness. */
const cli = (args: string[]) => meteorctl(h, args);

/** `meteorctl ...args` must succeed; returns stdout parsed when --json. */
async function ok(args: string[]): Promise<CliResult> {
  const r = await cli(args);
  expect(r.code, `meteorctl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/** Writes a LINE.yaml (every 1h on the harness's campaign unless overridden) and returns its path. */
async function writeLine(over: Record<string, unknown> = {}): Promise<{ file: string; name: string }> {
  const name = typeof over.name === 'string' ? over.name : uniqueName('line');
  const spec = { name, campaign, schedule: { every: '1h' }, ...over };
  const file = path.join(h.tmp, `line-${++counter}.yaml`);
  await writeFile(file, stringify(spec));
  return { file, name };
}

async function describeSchedule(name: string): Promise<ScheduleDescription | null> {
  return h.clients.temporal.schedule
    .getHandle(`line-${name}`)
    .describe()
    .catch((err: unknown) => {
      if (err instanceof ScheduleNotFoundError) return null;
      throw err;
    });
}

async function lineRows(name: string): Promise<number> {
  const row = await h.clients.db
    .selectFrom('lines')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('name', '=', name)
    .executeTakeFirstOrThrow();
  return row.n;
}

async function heldOutRows(name: string): Promise<number> {
  const row = await h.clients.db
    .selectFrom('line_heldout')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('line', '=', name)
    .executeTakeFirstOrThrow();
  return row.n;
}

async function expectNothingCreated(name: string): Promise<void> {
  expect(await lineRows(name)).toBe(0);
  expect(await heldOutRows(name)).toBe(0);
  expect(await describeSchedule(name)).toBeNull();
}

/** `line create -f file --json` must fail: non-zero exit, nothing on stdout, nothing created. */
async function refusedByCli(file: string, name: string): Promise<string> {
  const r = await cli(['line', 'create', '-f', file, '--json', '--no-preflight']);
  expect(r.code, `expected a refusal, got exit 0 with ${r.stdout}`).not.toBe(0);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^meteorctl: /);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  await expectNothingCreated(name);
  return r.stderr;
}

/** loadLineSpecFile + createLine must throw a UserError and create nothing. */
async function refusedDirectly(file: string, name: string, preflight = false): Promise<string> {
  const err = await loadLineSpecFile(file)
    .then((loaded) => createLine(h.clients, loaded, { preflight }))
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(err, 'expected the line to be refused').toBeInstanceOf(UserError);
  await expectNothingCreated(name);
  return (err as UserError).message;
}

interface StatusJson {
  name: string;
  state: string;
  scheduleId: string;
  champion: unknown;
  iterations: Array<{
    iteration: number;
    campaignId: string | null;
    state: string;
    promoted: boolean | null;
  }>;
  nextRunAt: string | null;
}

async function statusOf(name: string): Promise<StatusJson> {
  return JSON.parse((await ok(['line', 'status', name, '--json'])).stdout) as StatusJson;
}

beforeAll(async () => {
  h = await startHarness();
  campaign = await writeSpec(h, { stages: { evaluate: { enabled: true } } });
});

afterAll(async () => {
  // Leave no schedules behind on the shared Temporal server.
  const rows = await h?.clients.db
    .selectFrom('lines')
    .select('name')
    .where('deleted_at', 'is', null)
    .execute();
  for (const r of rows ?? []) await deleteLine(h.clients, r.name).catch(() => undefined);
  await h?.close();
});

// Independent cases (each its own line name): run together, so that the CLI processes' start-up
// (seconds of CPU each) overlaps instead of adding up.
describe.concurrent('line create refuses bad specs, creating nothing', () => {
  it('an unknown key (CLI): names it', async () => {
    const { file, name } = await writeLine({ overlapp: 'skip' });
    expect(await refusedByCli(file, name)).toContain('(top level): unknown key "overlapp"');
  });

  it('neither every nor cron, or a bad duration (CLI): names schedule', async () => {
    const neither = await writeLine({ schedule: { timezone: 'UTC' } });
    const badEvery = await writeLine({ schedule: { every: 'hourly' } });
    const [neitherErr, badEveryErr] = await Promise.all([
      refusedByCli(neither.file, neither.name),
      refusedByCli(badEvery.file, badEvery.name),
    ]);
    expect(neitherErr).toMatch(/schedule: either `every: <duration>`/);
    expect(badEveryErr).toContain('schedule.every: a duration like');
  });

  it('a cron expression the server refuses: names schedule, leaves no row', async () => {
    const { file, name } = await writeLine({ schedule: { cron: '99 * * * *' } });
    expect(await refusedDirectly(file, name)).toMatch(/schedule: /);
  });

  it('a threshold above 1: names promotion.threshold', async () => {
    const { file, name } = await writeLine({ promotion: { threshold: 1.2 } });
    expect(await refusedDirectly(file, name)).toMatch(/promotion\.threshold: /);
  });

  it('an unknown dimension: names promotion.dimensions', async () => {
    const { file, name } = await writeLine({ promotion: { dimensions: ['fluency'] } });
    expect(await refusedDirectly(file, name)).toMatch(/promotion\.dimensions\.0: /);
  });

  it('a missing campaign file (CLI): names campaign and the file', async () => {
    const { file, name } = await writeLine({ campaign: 'no-such-campaign.yaml' });
    const stderr = await refusedByCli(file, name);
    expect(stderr).toContain(`campaign: ${path.join(h.tmp, 'no-such-campaign.yaml')} cannot be used`);
    expect(stderr).toContain('no such file');
  });

  it('a campaign without held-out questions: names campaign', async () => {
    const noEval = await writeSpec(h, { questions: { eval: undefined } });
    const { file, name } = await writeLine({ campaign: noEval });
    expect(await refusedDirectly(file, name)).toMatch(/campaign: .*no held-out questions/);
  });

  it('fewer held-out questions than promotion.minHeldOut: names it', async () => {
    const { file, name } = await writeLine({ promotion: { minHeldOut: 100 } });
    expect(await refusedDirectly(file, name)).toContain(
      'promotion.minHeldOut: 100 held-out questions needed',
    );
  });

  it('a campaign endpoint that does not answer: preflight refuses', async () => {
    const url = `http://127.0.0.1:${await findFreePort()}/v1`;
    const dead = await writeSpec(h, {
      stages: { evaluate: { enabled: true } },
      models: { weak: { baseURL: url } },
    });
    const { file, name } = await writeLine({ campaign: dead });
    const message = await refusedDirectly(file, name, true);
    expect(message).toContain('Preflight failed; nothing was created');
    expect(message).toContain(`models.weak: cannot reach weak endpoint ${url}`);
  });

  it('a duplicate name (CLI): names name, the first line untouched', async () => {
    const first = await writeLine();
    await ok(['line', 'create', '-f', first.file, '--json', '--no-preflight']);
    const second = await writeLine({ name: first.name, schedule: { every: '2h' } });
    const r = await cli(['line', 'create', '-f', second.file, '--json', '--no-preflight']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`name: a line named ${first.name} already exists`);
    expect(await lineRows(first.name)).toBe(1);
    expect((await describeSchedule(first.name))?.spec.intervals).toEqual([{ every: 3_600_000, offset: 0 }]);
  });
});

describe('a line through its life: create, status, pause, unpause, trigger, delete', () => {
  let name: string;

  it('create makes the rows and the schedule as specified', async () => {
    const line = await writeLine({ catchupWindow: '30m' });
    name = line.name;
    const created = JSON.parse((await ok(['line', 'create', '-f', line.file, '--json'])).stdout) as unknown;
    expect(created).toEqual({ name, scheduleId: `line-${name}` });

    expect(await lineRows(name)).toBe(1);
    expect(await heldOutRows(name)).toBe(16);
    const d = await describeSchedule(name);
    expect(d).not.toBeNull();
    expect(d?.spec.intervals).toEqual([{ every: 3_600_000, offset: 0 }]);
    expect(d?.policies).toEqual({ overlap: 'SKIP', catchupWindow: 1_800_000, pauseOnFailure: false });
    expect(d?.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'lineIterationWorkflow',
      workflowId: `line-${name}`,
      taskQueue: h.taskQueue,
      args: [{ line: name }],
    });
    expect(d?.state.paused).toBe(false);
  });

  it('a cron schedule keeps its expression and time zone', async () => {
    const line = await writeLine({
      schedule: { cron: '30 2 * * 1-5', timezone: 'Europe/Berlin' },
      overlap: 'buffer-one',
    });
    await createLine(h.clients, await loadLineSpecFile(line.file), { preflight: false });
    const d = await describeSchedule(line.name);
    // The server keeps a cron expression as the calendar it compiles it to.
    expect(d?.spec.timezone).toBe('Europe/Berlin');
    expect(d?.spec.calendars).toEqual([
      expect.objectContaining({
        minute: [{ start: 30, end: 30, step: 1 }],
        hour: [{ start: 2, end: 2, step: 1 }],
        dayOfWeek: [{ start: 'MONDAY', end: 'FRIDAY', step: 1 }],
      }),
    ]);
    expect(d?.policies.overlap).toBe('BUFFER_ONE');
    await deleteLine(h.clients, line.name);
  });

  it('status --json and list --json report it active, no champion, no iterations', async () => {
    const [s, list] = await Promise.all([statusOf(name), ok(['line', 'list', '--json'])]);
    expect(s).toMatchObject({
      name,
      state: 'active',
      scheduleId: `line-${name}`,
      champion: null,
      iterations: [],
    });
    expect(Date.parse(s.nextRunAt ?? '')).toBeGreaterThan(Date.now());
    const all = JSON.parse(list.stdout) as StatusJson[];
    expect(all.find((l) => l.name === name)).toMatchObject({ state: 'active' });
  });

  it('pause pauses the schedule; unpause makes it active again', async () => {
    const paused = await ok(['line', 'pause', name]);
    expect(paused.stderr).toContain(`line ${name} paused`);
    expect((await describeSchedule(name))?.state).toMatchObject({
      paused: true,
      note: 'paused via meteorctl',
    });
    expect(await statusOf(name)).toMatchObject({ state: 'paused', nextRunAt: null });

    await ok(['line', 'unpause', name]);
    expect((await describeSchedule(name))?.state.paused).toBe(false);
    expect((await statusOf(name)).state).toBe('active');
  });

  it('trigger starts a lineIterationWorkflow run now', async () => {
    await ok(['line', 'trigger', name]);
    const action = await waitFor('the triggered action', async () => {
      const d = await describeSchedule(name);
      return d?.info.recentActions[0];
    });
    const workflowId = action.action.workflow.workflowId;
    h.launched.push(workflowId);
    expect(workflowId.startsWith(`line-${name}`)).toBe(true);
    const run = await h.clients.temporal.workflow.getHandle(workflowId).describe();
    expect(run.type).toBe('lineIterationWorkflow');
    expect(run.taskQueue).toBe(h.taskQueue);
  });

  it('delete removes the schedule and keeps the rows; status says deleted', async () => {
    const r = await ok(['line', 'delete', name]);
    expect(r.stderr).toContain(`line ${name} deleted`);
    await waitFor('the schedule to be gone', async () => (await describeSchedule(name)) === null);
    expect(await lineRows(name)).toBe(1);
    expect(await heldOutRows(name)).toBe(16);
    // Both after the delete, neither changes anything: asked together.
    const [status, again] = await Promise.all([statusOf(name), cli(['line', 'trigger', name])]);
    expect(status.state).toBe('deleted');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`line ${name} was deleted`);
  });

  it('an unknown line: exits non-zero and names it', async () => {
    const r = await cli(['line', 'status', 'no-such-line-42', '--json']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('no line named no-such-line-42');
  });
});

describe('pause --running and unpause reach the running iteration', () => {
  it('signals pause and resume to its campaign workflow', async () => {
    const url = `http://127.0.0.1:${await findFreePort()}/v1`;
    // A campaign stuck on a dead endpoint stays running for as long as the test needs.
    const stuck = await launch(
      h,
      await writeSpec(h, { name: 'line-stuck', models: { weak: { baseURL: url } } }),
      {
        preflight: false,
      },
    );
    const { file, name } = await writeLine();
    await createLine(h.clients, await loadLineSpecFile(file), { preflight: false });
    // What the iteration workflow records while it runs a campaign.
    await h.clients.db
      .insertInto('line_iterations')
      .values({
        line: name,
        iteration: 1,
        workflow_id: `line-${name}-test`,
        campaign_id: stuck.campaignId,
        state: 'running',
      })
      .execute();

    const paused = await ok(['line', 'pause', name, '--running']);
    expect(paused.stderr).toContain(`pause sent to its running campaign ${stuck.campaignId}`);
    await ok(['line', 'unpause', name]);

    const handle = h.clients.temporal.workflow.getHandle(stuck.workflowId);
    // The user's signals; the stage's progress reports (a pause drains it at once) come between.
    const signals = (await handle.fetchHistory()).events
      ?.map((e) => e.workflowExecutionSignaledEventAttributes?.signalName)
      .filter((s): s is string => s === 'pause' || s === 'resume');
    expect(signals).toEqual(['pause', 'resume']);

    const s = await statusOf(name);
    expect(s.iterations).toEqual([
      expect.objectContaining({
        iteration: 1,
        campaignId: stuck.campaignId,
        state: 'running',
        promoted: null,
      }),
    ]);
  });
});
