import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStackFile, startLocalStack } from '../../infra/stack/local-stack';
import { isProcessAlive, waitForProcessExit } from '../../infra/stack/pids';
import { findFreePort } from '../../infra/stack/ports';
import { registeredNames } from '../../infra/stack/processes';
import { resolveTemporalBinary } from '../../infra/stack/temporal-binary';

// These tests are about the embedded path: hide any external services the run was given.
const HIDDEN = ['DATABASE_URL', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_CLI_PATH'] as const;
const saved = new Map<string, string | undefined>();
let scratch: string;

beforeAll(async () => {
  for (const name of HIDDEN) {
    saved.set(name, process.env[name]);
    delete process.env[name];
  }
  scratch = await mkdtemp(path.join(os.tmpdir(), 'meteor-stack-test-'));
  // As root, Postgres runs as the `postgres` user, which must be able to reach its data dir.
  await chmod(scratch, 0o755);
});

afterAll(async () => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await rm(scratch, { recursive: true, force: true });
});

describe('resolveTemporalBinary', () => {
  it('uses TEMPORAL_CLI_PATH when it points at an executable', async () => {
    const fake = path.join(scratch, 'my-temporal');
    await writeFile(fake, '#!/bin/sh\necho fake\n', { mode: 0o755 });
    process.env.TEMPORAL_CLI_PATH = fake;
    try {
      await expect(resolveTemporalBinary({ install: false })).resolves.toBe(fake);
    } finally {
      delete process.env.TEMPORAL_CLI_PATH;
    }
  });

  it('explains a TEMPORAL_CLI_PATH that does not exist or is not executable', async () => {
    const notExecutable = path.join(scratch, 'not-executable');
    await writeFile(notExecutable, 'data', { mode: 0o644 });
    try {
      process.env.TEMPORAL_CLI_PATH = path.join(scratch, 'missing');
      await expect(resolveTemporalBinary({ install: false })).rejects.toThrow(
        /TEMPORAL_CLI_PATH=.*does not exist/,
      );
      process.env.TEMPORAL_CLI_PATH = notExecutable;
      await expect(resolveTemporalBinary({ install: false })).rejects.toThrow(/is not executable/);
    } finally {
      delete process.env.TEMPORAL_CLI_PATH;
    }
  });
});

describe('startLocalStack', () => {
  it('starts Postgres and Temporal, keeps data across restarts, and leaves no process behind', async () => {
    const root = path.join(scratch, 'stack');
    const ports = {
      postgresPort: await findFreePort(),
      temporalPort: await findFreePort(),
      uiPort: await findFreePort(),
    };

    // First run: both services answer, stack.json advertises them, a table is created.
    const first = await startLocalStack({ root, ...ports });
    const firstPids = { postgres: postmasterPid(root), temporal: temporalChildPid(ports.temporalPort) };
    expect(firstPids.postgres).toBeGreaterThan(0);
    expect(firstPids.temporal).toBeGreaterThan(0);
    expect(first.databaseUrl).toBe(`postgres://postgres:meteor@127.0.0.1:${ports.postgresPort}/meteor`);
    expect(first.temporalAddress).toBe(`127.0.0.1:${ports.temporalPort}`);
    expect(first.namespace).toBe('default');
    expect(first.uiUrl).toBe(`http://127.0.0.1:${ports.uiPort}`);

    await expectTemporalHealthy(first.temporalAddress);
    await withDb(first.databaseUrl, async (db) => {
      expect((await db.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
      await db.query('create table kept_across_restarts (id int primary key)');
      await db.query('insert into kept_across_restarts values (42)');
    });

    const advertised = await readStackFile(root);
    expect(advertised).toMatchObject({
      pid: process.pid,
      databaseUrl: first.databaseUrl,
      temporalAddress: first.temporalAddress,
      namespace: 'default',
      uiUrl: first.uiUrl,
    });
    expect(JSON.parse(await readFile(path.join(root, 'stack.json'), 'utf8'))).toEqual(advertised);

    // A second stack on the same root is refused while the first runs.
    await expect(startLocalStack({ root, ...ports })).rejects.toThrow(/already running/);

    await first.stop();
    expect(isProcessAlive(firstPids.postgres)).toBe(false);
    expect(isProcessAlive(firstPids.temporal)).toBe(false);
    expect(existsSync(path.join(root, 'stack.json'))).toBe(false);
    expect(await readStackFile(root)).toBeNull();
    expect(registeredNames()).toEqual([]);

    // Simulate a killed run: a postmaster.pid naming a process that no longer exists.
    await writeFile(
      path.join(root, 'postgres', 'postmaster.pid'),
      `${await deadPid()}\n${path.join(root, 'postgres')}\n`,
    );

    // Second run on the same root: the table is still there.
    const second = await startLocalStack({ root, ...ports });
    try {
      await withDb(second.databaseUrl, async (db) => {
        expect((await db.query('select id from kept_across_restarts')).rows).toEqual([{ id: 42 }]);
      });
      await expectTemporalHealthy(second.temporalAddress);
    } finally {
      const pids = [postmasterPid(root), temporalChildPid(ports.temporalPort)];
      await second.stop();
      for (const pid of pids) expect(await waitForProcessExit(pid, 1_000)).toBe(true);
    }
  });

  it('names the port that is taken before starting anything', async () => {
    const blocker = net.createServer();
    const port = await findFreePort();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    try {
      const root = path.join(scratch, 'taken');
      await expect(startLocalStack({ root, postgresPort: port })).rejects.toThrow(
        new RegExp(`Port ${port} \\(Postgres\\) is already in use`),
      );
      expect(existsSync(path.join(root, 'postgres'))).toBe(false);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});

async function expectTemporalHealthy(address: string): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const health = await connection.healthService.check({});
    expect(health.status).toBe(1); // SERVING
  } finally {
    await connection.close();
  }
}

async function withDb(url: string, fn: (db: pg.Client) => Promise<void>): Promise<void> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await fn(db);
  } finally {
    await db.end();
  }
}

function postmasterPid(root: string): number {
  return Number.parseInt(
    readFileSync(path.join(root, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0] ?? '',
    10,
  );
}

/** The `temporal server start-dev` child of this process listening on `port`, found via /proc. */
function temporalChildPid(port: number): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number.parseInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '', 10);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (ppid === process.pid && cmdline.includes('start-dev') && cmdline.includes(String(port))) {
        return Number.parseInt(entry, 10);
      }
    } catch {
      // The process went away while we looked.
    }
  }
  return -1;
}

/** A pid no process has right now (spawned and reaped), as a killed run would leave behind. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid ?? 999_999;
}
