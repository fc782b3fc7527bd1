/**
 * A key revoked mid-campaign at a provider that echoes it in its 401s (as OpenAI does:
 * "Incorrect API key provided: sk-…") fails the campaign, and the key is found nowhere: not in
 * any row of any table, not in the campaign's workflow histories (its own and its children's),
 * not in its status or failure, not in the worker's log. The key has no recognisable shape, so
 * only masking the known values of the key variables can catch it.
 */
import { randomBytes } from 'node:crypto';
import type { temporal } from '@temporalio/proto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, startHarness, waitDone, writeSpec, type Harness } from '../support/harness';

const KEY_VAR = 'METEOR_TEST_SECRETS_E2E_KEY';
const KEY = `opaque-${randomBytes(12).toString('hex')}`;

let h: Harness;
let previousKey: string | undefined;
/** Everything written to stdout and stderr while this file runs (the worker logs to stderr). */
let logged = '';
const restoreWrites: (() => void)[] = [];

function capture(stream: NodeJS.WriteStream): void {
  const original = stream.write.bind(stream);
  stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    logged += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return original(chunk, ...rest);
  }) as typeof stream.write;
  restoreWrites.push(() => {
    stream.write = original;
  });
}

/** JSON with payload bytes as text, so a key inside a payload or failure is greppable. */
function readable(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : typeof v === 'bigint' ? String(v) : v,
  );
}

/** The histories of a workflow and, recursively, of every child it started. */
async function histories(workflowId: string, seen = new Set<string>()): Promise<string[]> {
  if (seen.has(workflowId)) return [];
  seen.add(workflowId);
  const history: temporal.api.history.v1.IHistory = await h.clients.temporal.workflow
    .getHandle(workflowId)
    .fetchHistory();
  const out = [readable(history)];
  for (const e of history.events ?? []) {
    const child = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution?.workflowId;
    if (child) out.push(...(await histories(child, seen)));
  }
  return out;
}

/** Every row of every table in the public schema, as JSON. */
async function databaseDump(): Promise<string> {
  const { db } = h.clients;
  const tables = await sql<{ table_name: string }>`
    select table_name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE'`.execute(db);
  const dump: Record<string, unknown[]> = {};
  for (const { table_name } of tables.rows) {
    dump[table_name] = (await sql`select * from ${sql.table(table_name)}`.execute(db)).rows;
  }
  return readable(dump);
}

beforeAll(async () => {
  previousKey = process.env[KEY_VAR];
  // The harness worker reads its keys from process.env.
  process.env[KEY_VAR] = KEY;
  capture(process.stdout);
  capture(process.stderr);
  h = await startHarness({ latencyMs: 300, sim: { apiKey: KEY, echoKeyIn401: true } });
});

afterAll(async () => {
  await h?.close();
  for (const restore of restoreWrites) restore();
  if (previousKey === undefined) delete process.env[KEY_VAR];
  else process.env[KEY_VAR] = previousKey;
});

describe('secrets', () => {
  it('a key echoed in 401s mid-campaign is found nowhere', async () => {
    const spec = await writeSpec(h, {
      models: {
        weak: { apiKeyEnv: KEY_VAR },
        strong: { apiKeyEnv: KEY_VAR },
        judge: { apiKeyEnv: KEY_VAR },
      },
    });
    const { campaignId, workflowId } = await launch(h, spec);

    // Let some calls succeed with the key, then revoke it: every later call gets a 401 with the key in it.
    const deadline = Date.now() + 60_000;
    while (h.sim.stats().served < 3) {
      if (Date.now() > deadline) throw new Error('the simulator served nothing');
      await new Promise((r) => setTimeout(r, 20));
    }
    h.sim.setApiKey(`revoked-${randomBytes(8).toString('hex')}`);

    const status = await waitDone(h, campaignId, 90_000);
    expect(status.state).toBe('failed');
    // The test can fail: the worker did present the key, and the provider echoed it back.
    expect(h.sim.presentedKeys()).toContain(KEY);

    const failure = await h.clients.temporal.workflow
      .getHandle(workflowId)
      .result()
      .then(
        () => 'completed',
        (err: unknown) => {
          const parts: string[] = [];
          for (let e: unknown = err; e instanceof Error; e = e.cause)
            parts.push(`${e.message}\n${e.stack ?? ''}`);
          return parts.join('\n');
        },
      );
    expect(failure).toContain('rejected the API key (401)');
    expect(failure).toContain(`$${KEY_VAR}`);

    const dump = await databaseDump();
    const all = await histories(workflowId);

    const places: Record<string, string> = {
      'database dump': dump,
      'workflow histories': all.join('\n'),
      'campaign status': JSON.stringify(status),
      'workflow failure': failure,
      'worker log': logged,
    };
    for (const [where, text] of Object.entries(places)) {
      expect(text.includes(KEY), `the key leaked into the ${where}`).toBe(false);
    }
    // Where it would have leaked: the failed attempts were logged, scrubbed, and the failure
    // travelled through the stage's history into the campaign's.
    expect(dump).toContain('rejected the API key (401)');
    expect(dump).toContain('Incorrect API key provided: [redacted]');
    expect(all.length).toBeGreaterThan(1);
    expect(all.join('\n')).toContain('rejected the API key (401)');
  });
});
