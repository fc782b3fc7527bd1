/**
 * Bad input is refused before anything is created: every case names its problem (the field, the
 * file and line, the id, the variable, the endpoint) and leaves no row in `campaigns` or
 * `questions`. Most cases go through the real CLI (`meteorctl campaign launch`), which must exit
 * non-zero with the message on stderr; the rest call loadSpecFile + launchCampaign directly.
 * Then the happy paths around them: `--no-preflight` launches despite a dead endpoint, `cancel`
 * ends the workflow cancelled, and `status`/`list` print JSON (or name an unknown id).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../core/errors';
import { startSimServer, type SimServer } from '../../infra/sim/server';
import { findFreePort } from '../../infra/stack/ports';
import {
  EXAMPLE_EVAL,
  EXAMPLE_TRAIN,
  exampleQuestions,
  launch,
  startHarness,
  waitFor,
  writeQuestions,
  writeSpec,
  meteorctl,
  type CliResult,
  type Harness,
} from '../support/harness';

const UNSET_VAR = 'METEOR_TEST_SURELY_UNSET_KEY';
const KEY_VAR = 'METEOR_TEST_SIM_KEY';
const RIGHT_KEY = 'sk-right-key-for-the-sim';
const WRONG_KEY = 'sk-wrong-key-do-not-print-me';

let h: Harness;
/** A simulator that wants `Authorization: Bearer RIGHT_KEY`. */
let keyedSim: SimServer;
/** A port nothing listens on. */
let closedPort: number;

/** meteorctl against this file's harness, without UNSET_VAR in its environment. */
function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
  return meteorctl(h, args, { env: extraEnv, unset: [UNSET_VAR] });
}

interface Counts {
  campaigns: number;
  questions: number;
}

async function counts(): Promise<Counts> {
  const { db } = h.clients;
  const [c, q] = await Promise.all([
    db
      .selectFrom('campaigns')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('questions')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow(),
  ]);
  return { campaigns: c.n, questions: q.n };
}

/** `campaign launch -f spec --json` must fail: non-zero exit, nothing on stdout, nothing created. Returns stderr. */
async function refusedByCli(specPath: string, extraEnv: Record<string, string> = {}): Promise<string> {
  const before = await counts();
  const r = await cli(['campaign', 'launch', '-f', specPath, '--json'], extraEnv);
  expect(r.code, `expected a refusal, got exit 0 with ${r.stdout}`).not.toBe(0);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^meteorctl: /);
  // Users get the message, not a stack trace.
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(await counts()).toEqual(before);
  return r.stderr;
}

/** loadSpecFile + launchCampaign must throw a UserError and create nothing. Returns its message. */
async function refusedDirectly(specPath: string): Promise<string> {
  const before = await counts();
  const err = await launch(h, specPath).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'expected the launch to be refused').toBeInstanceOf(UserError);
  expect(await counts()).toEqual(before);
  return (err as UserError).message;
}

/** A spec whose training questions are `lines` (written to `name` next to it). */
async function specWithTrain(name: string, lines: unknown[], overrides: Record<string, unknown> = {}) {
  const file = await writeQuestions(h.tmp, name, lines);
  return { file, spec: await writeSpec(h, { ...overrides, questions: { train: file, eval: EXAMPLE_EVAL } }) };
}

beforeAll(async () => {
  h = await startHarness();
  keyedSim = await startSimServer({ port: 0, apiKey: RIGHT_KEY, knowledgeFiles: [EXAMPLE_TRAIN] });
  closedPort = await findFreePort();
});

afterAll(async () => {
  await keyedSim?.close();
  await h?.close();
});

// The refusals are independent of each other and create nothing (each checks that the counts
// did not change around it), so they run together: the CLI processes' start-up (seconds of CPU
// each) overlaps instead of adding up. The launched campaign below runs after them, alone.
describe.concurrent('campaign launch refuses bad input through the CLI, creating nothing', () => {
  it('a spec field with an invalid value: names the field', async () => {
    const stderr = await refusedByCli(await writeSpec(h, { name: 'K8s-Ops' }));
    expect(stderr).toContain('Invalid campaign spec');
    expect(stderr).toMatch(/^\s+- name: lower-case letters, digits and dashes/m);
  });

  it('an unknown key at the top level: names the key', async () => {
    const stderr = await refusedByCli(await writeSpec(h, { concurency: 8 }));
    expect(stderr).toContain('(top level): unknown key "concurency"');
  });

  it('invalid YAML: says so, with the line', async () => {
    const file = path.join(h.tmp, 'broken.yaml');
    await writeFile(file, 'name: k8s-ops\nmodels: [weak, strong\ndomain: Kubernetes\n');
    const stderr = await refusedByCli(file);
    expect(stderr).toContain(`Campaign spec ${file} is not valid YAML`);
    expect(stderr).toMatch(/at line \d+, column \d+/);
  });

  it('a malformed JSONL line: names the file and the line number', async () => {
    const [q1, q2] = await exampleQuestions(2);
    const { file, spec } = await specWithTrain('malformed.jsonl', [
      q1,
      q2,
      '{"id": "x", "question": "unterminated',
    ]);
    const stderr = await refusedByCli(spec);
    expect(stderr).toContain(`train question file ${file} has 1 invalid line(s)`);
    expect(stderr).toContain(`${file}:3: not valid JSON`);
  });

  it('an unset API key variable: names the variable and the endpoint', async () => {
    const stderr = await refusedByCli(await writeSpec(h, { models: { strong: { apiKeyEnv: UNSET_VAR } } }));
    expect(stderr).toContain('Preflight failed; nothing was created');
    expect(stderr).toContain(`models.strong: environment variable ${UNSET_VAR} (its API key) is not set`);
  });

  it('an unreachable endpoint: names the role and the URL', async () => {
    const url = `http://127.0.0.1:${closedPort}/v1`;
    const stderr = await refusedByCli(await writeSpec(h, { models: { weak: { baseURL: url } } }));
    expect(stderr).toContain(`models.weak: cannot reach weak endpoint ${url}`);
    // The reachable endpoints are not blamed.
    expect(stderr).not.toContain('models.strong');
  });

  it('a wrong API key (401): names the key variable, never the key', async () => {
    const spec = await writeSpec(h, {
      models: {
        weak: { baseURL: keyedSim.url, apiKeyEnv: KEY_VAR },
        strong: { baseURL: keyedSim.url, apiKeyEnv: KEY_VAR },
        judge: { baseURL: keyedSim.url, apiKeyEnv: KEY_VAR },
      },
    });
    const stderr = await refusedByCli(spec, { [KEY_VAR]: WRONG_KEY });
    expect(stderr).toMatch(/models\.weak: .*rejected the API key \(401\)/);
    expect(stderr).toContain(`$${KEY_VAR}`);
    expect(stderr).not.toContain(WRONG_KEY);
  });

  it('a model the endpoint does not serve: names the model', async () => {
    const stderr = await refusedByCli(await writeSpec(h, { models: { strong: { model: 'gpt-9-turbo' } } }));
    expect(stderr).toContain('models.strong:');
    expect(stderr).toContain('does not serve model "gpt-9-turbo"');
  });
});

describe.concurrent('launchCampaign refuses bad input, creating nothing', () => {
  it('an unknown nested key: names the key and where it is', async () => {
    const message = await refusedDirectly(await writeSpec(h, { models: { weak: { temprature: 0.2 } } }));
    expect(message).toContain('models.weak: unknown key "temprature"');
  });

  it('a negative concurrency: names models.weak.concurrency', async () => {
    const message = await refusedDirectly(await writeSpec(h, { models: { weak: { concurrency: -4 } } }));
    expect(message).toMatch(/models\.weak\.concurrency: /);
  });

  it('an invalid baseURL: names the field and what is expected', async () => {
    const message = await refusedDirectly(
      await writeSpec(h, { models: { strong: { baseURL: 'localhost:8000' } } }),
    );
    expect(message).toContain('models.strong.baseURL: an http(s) URL');
  });

  it('a baseURL with a password: refused by the CLI, naming the field, never printing the password', async () => {
    const url = new URL(h.sim.url);
    url.username = 'svc';
    url.password = 'hunter2-do-not-store';
    const stderr = await refusedByCli(await writeSpec(h, { models: { strong: { baseURL: url.href } } }));
    expect(stderr).toContain('models.strong.baseURL: credentials in the URL');
    expect(stderr).toContain('apiKeyEnv');
    expect(stderr).not.toContain('hunter2');
  });

  it('text the database cannot store (U+0000, half a surrogate pair): names each field', async () => {
    // YAML's "\0" and "\ud800" escapes, as a spec file would carry them.
    const message = await refusedDirectly(
      await writeSpec(h, { domain: 'Kube\uD800rnetes operations', description: 'on-call\u0000 notes' }),
    );
    expect(message).toContain('domain: must not contain half a UTF-16 surrogate pair');
    expect(message).toContain('description: must not contain a NUL character (U+0000)');
  });

  it('a bad duration: names the field and the expected form', async () => {
    const message = await refusedDirectly(
      await writeSpec(h, { models: { weak: { timeout: '2 minutes' } }, fineTune: { pollInterval: '5' } }),
    );
    expect(message).toContain('models.weak.timeout: a duration like');
    expect(message).toContain('fineTune.pollInterval: a duration like');
  });

  it('a line without `question`: names the file, the line and the field', async () => {
    const [q1, q2] = await exampleQuestions(2);
    const { file, spec } = await specWithTrain('no-question.jsonl', [
      q1,
      { id: 'only-an-id', title: 'x' },
      q2,
    ]);
    const message = await refusedDirectly(spec);
    expect(message).toMatch(new RegExp(`${escape(file)}:2: question: `));
  });

  it('a duplicate id: names the id and both lines', async () => {
    const [q1, q2, q3] = await exampleQuestions(3);
    const { file, spec } = await specWithTrain('dupes.jsonl', [
      { ...q1, id: 'same-id' },
      q2,
      { ...q3, id: 'same-id' },
    ]);
    const message = await refusedDirectly(spec);
    expect(message).toContain(`${file}:3: duplicate id "same-id" (first on line 1)`);
  });

  it('an empty question file: says it holds no questions', async () => {
    const { file, spec } = await specWithTrain('empty.jsonl', []);
    const message = await refusedDirectly(spec);
    expect(message).toContain(`train question file ${file} holds no questions`);
  });

  it('a missing question file: names the file and says it does not exist', async () => {
    const spec = await writeSpec(h, { questions: { train: 'not-there.jsonl', eval: EXAMPLE_EVAL } });
    const message = await refusedDirectly(spec);
    expect(message).toContain('train question file not-there.jsonl');
    expect(message).toContain(path.join(h.tmp, 'not-there.jsonl'));
    expect(message).toContain('no such file');
  });

  it('a kubernetes backend without its kubeconfig: the CLI loads the backend and names the field', async () => {
    const stderr = await refusedByCli(
      await writeSpec(h, {
        fineTune: {
          type: 'kubernetes',
          namespace: 'ml',
          image: 'ghcr.io/acme/trainer:1',
          command: ['/opt/meteor/infra/trainer/run'],
          kubeconfig: path.join(h.tmp, 'no-such-kubeconfig'),
          sharedDir: path.join(h.tmp, 'shared'),
          cwd: undefined,
          env: undefined,
          pollInterval: undefined,
        },
      }),
    );
    expect(stderr).toContain('fineTune.kubeconfig:');
    expect(stderr).not.toContain('Cannot find module');
  });

  it('ids shared between the train and eval files: names the ids', async () => {
    const [q1, q2, q3] = await exampleQuestions(3);
    const train = await writeQuestions(h.tmp, 'shared-train.jsonl', [q1, q2]);
    const evalFile = await writeQuestions(h.tmp, 'shared-eval.jsonl', [{ ...q3, id: q2?.id }]);
    const message = await refusedDirectly(await writeSpec(h, { questions: { train, eval: evalFile } }));
    expect(message).toContain('Question ids appear in both the train and the eval file');
    expect(message).toContain(String(q2?.id));
    expect(message).not.toContain(String(q1?.id));
  });

  it('a fine-tune backend that does not exist: names fineTune.type', async () => {
    const message = await refusedDirectly(await writeSpec(h, { fineTune: { type: 'sagemaker' } }));
    expect(message).toMatch(/fineTune\.type: /);
  });
});

describe('the CLI around a launched campaign', () => {
  it('--no-preflight skips the endpoint check; status/list print JSON; cancel ends it cancelled', async () => {
    const url = `http://127.0.0.1:${closedPort}/v1`;
    const spec = await writeSpec(h, { name: 'no-preflight', models: { weak: { baseURL: url } } });
    const before = await counts();

    const launched = await cli(['campaign', 'launch', '-f', spec, '--no-preflight', '--json']);
    expect(launched.code, launched.stderr).toBe(0);
    const { campaignId, workflowId } = JSON.parse(launched.stdout) as {
      campaignId: string;
      workflowId: string;
    };
    h.launched.push(workflowId);
    expect(campaignId).toMatch(/^no-preflight-[0-9a-f]+$/);
    expect(workflowId).toBe(`campaign-${campaignId}`);
    expect(await counts()).toEqual({
      campaigns: before.campaigns + 1,
      questions: before.questions + 48 + 16,
    });

    const handle = h.clients.temporal.workflow.getHandle(workflowId);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    // It is stuck on the dead endpoint: the worker keeps retrying it.
    await waitFor('a failed call to the dead endpoint', async () => {
      const row = await h.clients.db
        .selectFrom('llm_calls')
        .select('error')
        .where('campaign_id', '=', campaignId)
        .where('status', '=', 'error')
        .executeTakeFirst();
      return row?.error ?? undefined;
    });

    const status = await cli(['campaign', 'status', campaignId, '--json']);
    expect(status.code, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout) as Record<string, unknown>;
    expect(s).toMatchObject({ campaignId, state: 'running', stage: 'distill' });
    expectStatusFields(s);

    const list = await cli(['campaign', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const all = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    expect(Array.isArray(all)).toBe(true);
    const mine = all.find((c) => c.campaignId === campaignId);
    expect(mine).toBeDefined();
    for (const c of all) expectStatusFields(c);

    const cancel = await cli(['campaign', 'cancel', campaignId]);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stderr).toContain(`cancel requested for ${campaignId}`);
    const outcome = await handle.result().then(
      () => 'completed',
      (err: unknown) => (err instanceof WorkflowFailedError ? err.cause?.name : String(err)),
    );
    expect(outcome).toBe('CancelledFailure');
    expect((await handle.describe()).status.name).toBe('CANCELLED');

    const after = await cli(['campaign', 'status', campaignId, '--json']);
    expect(after.code, after.stderr).toBe(0);
    expect(JSON.parse(after.stdout)).toMatchObject({
      campaignId,
      state: 'cancelled',
      error: 'cancelled by user',
    });
  });

  it('campaign status of an unknown id exits non-zero and names the id', async () => {
    const r = await cli(['campaign', 'status', 'no-such-campaign-42', '--json']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('"no-such-campaign-42"');
  });
});

function expectStatusFields(s: Record<string, unknown>): void {
  expect(typeof s.campaignId).toBe('string');
  expect(['running', 'paused', 'completed', 'failed', 'cancelled']).toContain(s.state);
  expect(s).toHaveProperty('stage');
  expect(Array.isArray(s.stages)).toBe(true);
  expect(typeof s.costUsd).toBe('number');
  expect(Array.isArray(s.lineage)).toBe(true);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
