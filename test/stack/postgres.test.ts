import { readdirSync, readFileSync } from 'node:fs';
import { cp, chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolvePostgresBinaries } from '../../infra/stack/embedded-postgres-loader';
import { isProcessAlive } from '../../infra/stack/pids';
import { findFreePort } from '../../infra/stack/ports';
import { startPostgres } from '../../infra/stack/postgres';
import { permits, reachableBy, type UnixUser } from '../../infra/stack/postgres-placement';
import { pgCtlRestart } from '../support/pg-ctl';

const isRoot = process.getuid?.() === 0;
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'meteor-pg-test-'));
  // World-searchable: as root, the server's `postgres` user keeps its data and the binary cache here.
  await chmod(scratch, 0o755);
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('reachable by the postgres user', () => {
  const user: UnixUser = { uid: 101, gid: 104, groups: [104, 103] };

  it('reads owner, group and other bits like the kernel does', () => {
    expect(permits({ mode: 0o700, uid: 101, gid: 0 }, user, 1)).toBe(true);
    expect(permits({ mode: 0o070, uid: 101, gid: 104 }, user, 1)).toBe(false); // owner bits decide
    expect(permits({ mode: 0o710, uid: 0, gid: 103 }, user, 1)).toBe(true); // a supplementary group
    expect(permits({ mode: 0o701, uid: 0, gid: 104 }, user, 1)).toBe(false); // group bits decide
    expect(permits({ mode: 0o701, uid: 0, gid: 0 }, user, 1)).toBe(true);
    expect(permits({ mode: 0o700, uid: 5, gid: 5 }, { uid: 0, gid: 0, groups: [0] }, 1)).toBe(true);
  });

  it('needs search permission on every folder above the target', () => {
    const modes: Record<string, number> = {
      '/': 0o755,
      '/home': 0o755,
      '/home/me': 0o700,
      '/home/me/repo': 0o755,
    };
    const stat = (p: string) => ({ mode: modes[p] ?? 0o755, uid: 1000, gid: 1000 });
    expect(reachableBy('/home/me/repo/node_modules/x', user, stat)).toBe(false);
    expect(reachableBy('/home/other/x', user, stat)).toBe(true);
    modes['/home/me'] = 0o701;
    expect(reachableBy('/home/me/repo/node_modules/x', user, stat)).toBe(true);
  });

  it('decides on the real folders of this machine', async () => {
    const locked = await mkdtemp(path.join(scratch, 'locked-'));
    await chmod(locked, 0o700);
    const other: UnixUser = { uid: 65534, gid: 65534, groups: [65534] };
    expect(reachableBy(path.join(locked, 'a', 'b'), other)).toBe(false);
    expect(reachableBy(path.join(scratch, 'a'), other)).toBe(true);
  });
});

describe('startPostgres', () => {
  it.runIf(isRoot)(
    'as root, runs binaries and keeps data from a private (0700) folder the postgres user cannot enter',
    async () => {
      // A private checkout in miniature: the native tree and the data dir inside a 0700 folder.
      const original = resolvePostgresBinaries();
      const privateDir = await mkdtemp(path.join(scratch, 'private-'));
      await chmod(privateDir, 0o700);
      const nativeDir = path.join(privateDir, 'native');
      await cp(original.nativeDir, nativeDir, { recursive: true, verbatimSymlinks: true });
      const dataDir = path.join(privateDir, '.meteor', 'postgres');
      const cacheDir = path.join(scratch, 'cache');
      const dataHome = path.join(scratch, 'data-home');
      const lines: string[] = [];

      const start = () =>
        startPostgres({
          dataDir,
          port,
          binaries: { nativeDir, version: 'test' },
          cacheDir,
          dataHome,
          log: (line) => lines.push(line),
        });
      const port = await findFreePort();
      const first = await start();
      try {
        expect(first.binDir).toBe(path.join(cacheDir, 'postgres-test', 'bin'));
        expect(first.dataDir.startsWith(dataHome)).toBe(true);
        expect((await lstat(dataDir)).isSymbolicLink()).toBe(true);
        expect(lines.join('\n')).toContain(`keeping the cluster in ${first.dataDir}`);
        await query(first.url, 'create table kept (x int)');
      } finally {
        await first.stop();
      }

      // The second run reuses the copy and the relocated cluster.
      lines.length = 0;
      const second = await start();
      try {
        expect(second.dataDir).toBe(first.dataDir);
        expect(lines.join('\n')).not.toContain('copying');
        await query(second.url, 'select * from kept');
      } finally {
        await second.stop();
      }
      expect(await readdir(cacheDir)).toEqual(['postgres-test']);
    },
    180_000,
  );

  it('stops the postmaster that owns the data directory, also after a pg_ctl restart', async () => {
    const dataDir = path.join(scratch, 'restart', 'postgres');
    const server = await startPostgres({ dataDir, port: await findFreePort() });
    let restartedPid: number | null = null;
    try {
      await pgCtlRestart(server, 'fast');
      restartedPid = await postmasterPid(server.dataDir);
      expect(restartedPid).not.toBe(server.pid);
      expect(isProcessAlive(restartedPid)).toBe(true);
      await query(server.url, 'select 1');
    } finally {
      await server.stop();
    }
    expect(server.pid !== null && isProcessAlive(server.pid)).toBe(false);
    expect(restartedPid !== null && isProcessAlive(restartedPid)).toBe(false);
    expect(processesUsing(server.dataDir)).toEqual([]);
  }, 180_000);

  it('says which binary it could not run instead of crashing on a spawn error', async () => {
    const fakeNative = path.join(scratch, 'fake-native');
    await mkdir(path.join(fakeNative, 'bin'), { recursive: true });
    // A directory where the binary should be: spawn fails with EACCES whoever we are.
    for (const name of ['initdb', 'postgres'])
      await mkdir(path.join(fakeNative, 'bin', name), { mode: 0o755 });
    await expect(
      startPostgres({
        dataDir: path.join(scratch, 'never', 'postgres'),
        port: await findFreePort(),
        binaries: { nativeDir: fakeNative, version: 'fake' },
        cacheDir: path.join(scratch, 'fake-cache'),
      }),
    ).rejects.toThrow(/Could not run .*fake.*initdb.*EACCES/);
  });
});

async function query(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function postmasterPid(dataDir: string): Promise<number> {
  return Number.parseInt(
    (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0] ?? '',
    10,
  );
}

/** Live processes whose command line names the data directory (a postmaster started with -D). */
function processesUsing(dataDir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dataDir)) out.push(pid);
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}
