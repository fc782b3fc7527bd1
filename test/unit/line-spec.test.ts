/**
 * Line specs: loading LINE.yaml and its campaign, every refusal naming the file and the field,
 * and the Temporal Schedule options a spec turns into. No services needed.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { lineScheduleOptions } from '../../client/lines';
import { UserError } from '../../core/errors';
import { loadLineSpecFile } from '../../core/line-spec-file';
import { LineSpecSchema } from '../../core/line-spec';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const EXAMPLE_DIR = path.join(REPO_ROOT, 'examples', 'kubernetes-ops');
const EXAMPLE_SPEC = path.join(EXAMPLE_DIR, 'campaign.yaml');

let tmp: string;
let n = 0;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'meteor-line-spec-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The example campaign with `edit` applied, written to tmp with absolute question paths. */
async function campaignFile(
  edit: (spec: Record<string, unknown>) => void = () => undefined,
): Promise<string> {
  const spec = parse(await readFile(EXAMPLE_SPEC, 'utf8')) as Record<string, unknown>;
  spec.questions = {
    train: path.join(EXAMPLE_DIR, 'train.jsonl'),
    eval: path.join(EXAMPLE_DIR, 'eval.jsonl'),
  };
  edit(spec);
  const file = path.join(tmp, `campaign-${++n}.yaml`);
  await writeFile(file, stringify(spec));
  return file;
}

async function lineFile(spec: Record<string, unknown>, text?: string): Promise<string> {
  const file = path.join(tmp, `line-${++n}.yaml`);
  await writeFile(file, text ?? stringify(spec));
  return file;
}

const base = (over: Record<string, unknown> = {}) => ({
  name: 'unit-line',
  campaign: EXAMPLE_SPEC,
  schedule: { every: '1h' },
  ...over,
});

/** loadLineSpecFile must throw a UserError; returns its message. */
async function refused(file: string): Promise<string> {
  const err = await loadLineSpecFile(file).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'expected the line spec to be refused').toBeInstanceOf(UserError);
  return (err as UserError).message;
}

describe('loadLineSpecFile', () => {
  it('loads the example line, its campaign relative to the line file', async () => {
    const loaded = await loadLineSpecFile(path.join(REPO_ROOT, 'examples', 'lines', 'nightly.yaml'));
    expect(loaded.spec.name).toBe('k8s-ops-nightly');
    expect(loaded.campaign.file).toBe(EXAMPLE_SPEC);
    expect(loaded.dir).toBe(path.join(REPO_ROOT, 'examples', 'lines'));
    expect(loaded.spec.schedule).toMatchObject({ cron: '0 2 * * *', timezone: 'Europe/Berlin' });
  });

  it('fills in the defaults', async () => {
    const loaded = await loadLineSpecFile(await lineFile(base()));
    expect(loaded.spec).toMatchObject({
      overlap: 'skip',
      catchupWindow: '1h',
      pauseOnFailure: false,
      promotion: { dimensions: ['accuracy'], threshold: 0.5, minHeldOut: 10 },
      replay: { fraction: 0 },
    });
    const cron = LineSpecSchema.parse(base({ schedule: { cron: '0 2 * * *' } }));
    expect(cron.schedule).toEqual({ cron: '0 2 * * *', timezone: 'UTC' });
  });

  it('an unknown key: names it', async () => {
    const file = await lineFile(base({ overlapp: 'skip' }));
    const message = await refused(file);
    expect(message).toContain(`Invalid line spec ${file}`);
    expect(message).toContain('(top level): unknown key "overlapp"');
  });

  it.each([
    ['a NUL character', 'nightly\u0000', /description: must not contain a NUL character \(U\+0000\)/],
    ['half a surrogate pair', 'nightly \ud800', /description: must not contain half a UTF-16 surrogate pair/],
  ])('%s in the description (lines.spec is jsonb): names the field', async (_what, description, expected) => {
    const file = await lineFile(base({ description }));
    expect(await refused(file)).toMatch(expected);
  });

  it('invalid YAML: says so, with the line', async () => {
    const file = await lineFile({}, 'name: x\nschedule: {every: 1h\n');
    const message = await refused(file);
    expect(message).toContain(`Line spec ${file} is not valid YAML`);
    expect(message).toMatch(/at line \d+, column \d+/);
  });

  it('neither every nor cron (or both): names schedule and the two forms', async () => {
    for (const schedule of [{}, { every: '1h', cron: '0 * * * *' }]) {
      const message = await refused(await lineFile(base({ schedule })));
      expect(message).toMatch(
        /schedule: either `every: <duration>`.* or `cron: "<expression>"` with `timezone`/,
      );
    }
  });

  it('a bad duration or cron: names the field', async () => {
    expect(await refused(await lineFile(base({ schedule: { every: 'daily' } })))).toContain(
      'schedule.every: a duration like',
    );
    expect(await refused(await lineFile(base({ schedule: { cron: 'nightly' } })))).toContain(
      'schedule.cron: a cron expression',
    );
    expect(await refused(await lineFile(base({ catchupWindow: '1 hour' })))).toContain(
      'catchupWindow: a duration like',
    );
  });

  it('a threshold above 1 and an unknown dimension: names both', async () => {
    const message = await refused(
      await lineFile(base({ promotion: { threshold: 1.5, dimensions: ['accuracy', 'speed'] } })),
    );
    expect(message).toMatch(/promotion\.threshold: /);
    expect(message).toMatch(/promotion\.dimensions\.1: /);
  });

  it('a bad name: names the field', async () => {
    expect(await refused(await lineFile(base({ name: 'Nightly_Line' })))).toMatch(/^\s+- name: lower-case/m);
  });

  it('a missing campaign file: names the campaign field and the file', async () => {
    const message = await refused(await lineFile(base({ campaign: 'not-there.yaml' })));
    expect(message).toContain(`campaign: ${path.join(tmp, 'not-there.yaml')} cannot be used`);
    expect(message).toContain('no such file');
  });

  it("an invalid campaign spec: its own errors, under the line's campaign field", async () => {
    const campaign = await campaignFile((s) => {
      s.concurency = 8;
    });
    const message = await refused(await lineFile(base({ campaign })));
    expect(message).toContain(`campaign: ${campaign} cannot be used`);
    expect(message).toContain('(top level): unknown key "concurency"');
  });

  it('a campaign without the evaluation: names campaign', async () => {
    const campaign = await campaignFile((s) => {
      (s.stages as Record<string, Record<string, unknown>>).evaluate = { enabled: false };
    });
    const message = await refused(await lineFile(base({ campaign })));
    expect(message).toMatch(/campaign: .*stages\.evaluate\.enabled: false.*promotion gate/);
  });

  it('a campaign without held-out questions: names campaign', async () => {
    const campaign = await campaignFile((s) => {
      (s.stages as Record<string, Record<string, unknown>>).evaluate = { enabled: false };
      s.questions = { train: path.join(EXAMPLE_DIR, 'train.jsonl') };
    });
    const message = await refused(await lineFile(base({ campaign })));
    expect(message).toMatch(/campaign: .*no held-out questions \(questions\.eval\)/);
  });

  it('fewer held-out questions than promotion.minHeldOut: names it', async () => {
    const message = await refused(await lineFile(base({ promotion: { minHeldOut: 17 } })));
    expect(message).toContain('promotion.minHeldOut: 17 held-out questions needed');
    expect(message).toContain('has 16');
  });
});

describe('lineScheduleOptions', () => {
  it('every → an interval; overlap skip; catchup window and pause-on-failure', () => {
    const spec = LineSpecSchema.parse(base({ schedule: { every: '24h', offset: '2h', jitter: '5m' } }));
    const opts = lineScheduleOptions(spec, 'q1');
    expect(opts.scheduleId).toBe('line-unit-line');
    expect(opts.spec).toEqual({ intervals: [{ every: 86_400_000, offset: 7_200_000 }], jitter: 300_000 });
    expect(opts.policies).toEqual({ overlap: 'SKIP', catchupWindow: 3_600_000, pauseOnFailure: false });
    expect(opts.action).toMatchObject({
      type: 'startWorkflow',
      args: [{ line: 'unit-line' }],
      taskQueue: 'q1',
    });
  });

  it('cron → a cron expression with its time zone; each overlap policy maps', () => {
    const spec = LineSpecSchema.parse(
      base({ schedule: { cron: '0 2 * * *', timezone: 'Europe/Berlin' }, overlap: 'buffer-one' }),
    );
    const opts = lineScheduleOptions(spec, 'q1');
    expect(opts.spec).toEqual({ cronExpressions: ['0 2 * * *'], timezone: 'Europe/Berlin' });
    expect(opts.policies?.overlap).toBe('BUFFER_ONE');
    const mapped = (['skip', 'buffer-one', 'buffer-all', 'cancel-other', 'allow-all'] as const).map(
      (overlap) => lineScheduleOptions(LineSpecSchema.parse(base({ overlap })), 'q').policies?.overlap,
    );
    expect(mapped).toEqual(['SKIP', 'BUFFER_ONE', 'BUFFER_ALL', 'CANCEL_OTHER', 'ALLOW_ALL']);
  });
});
