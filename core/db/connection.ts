/** Opening the database. One pool per process; pass the Kysely instance down, never a global. */
import { Kysely, PostgresDialect, type PostgresPool } from 'kysely';
import pg from 'pg';
import Cursor from 'pg-cursor';
import type { Database } from './types';

export interface CreateDbOptions {
  max?: number;
  /** Shown in pg_stat_activity: which process holds a connection (e.g. `meteor-worker:gpu-1`). */
  applicationName?: string;
  /**
   * How long a new connection is tried again while the server is unreachable (a restart, a
   * failover), backing off up to 2 s, before the statement that wanted it fails. Only opening a
   * connection is retried: nothing was sent yet, so it is always safe. Default 0 (fail at once:
   * the CLI); a worker waits.
   */
  reconnectWithinMs?: number;
  /** Told of each failure that means the server is unreachable (for an outage log; see DependencyWatch). */
  onConnectionLost?: (err: unknown) => void;
}

export function createDb(databaseUrl: string, opts: CreateDbOptions = {}): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: opts.max ?? 10,
    ...(opts.applicationName ? { application_name: opts.applicationName } : {}),
  });
  const lost = (err: unknown) => {
    if (isConnectionLoss(err)) opts.onConnectionLost?.(err);
  };
  // A connection that drops while idle is reported on the pool, and one that drops while in use
  // on its client: without a listener there, pg's 'error' event kills the process. Either way the
  // pool replaces the connection, and the statement on it (if any) fails on its own.
  pool.on('error', lost);
  pool.on('connect', (client) => client.on('error', lost));
  const watched: PostgresPool = {
    // Nothing was sent on a connection not yet open: always safe to try again.
    connect: () =>
      retryOnConnectionLoss(
        () =>
          pool.connect().catch((err: unknown) => {
            lost(err);
            throw err;
          }),
        opts.reconnectWithinMs ?? 0,
      ),
    end: () => pool.end(),
  };
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: watched, cursor: Cursor }) });
}

export type Db = Kysely<Database>;

/** Socket-level failures of reaching a server: it is down, restarting, or the network is. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

function isNetworkFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'string' && NETWORK_CODES.has(code);
}

/**
 * Whether `err` says the server is unreachable or went away — a restart, failover or network
 * fault, which passes — rather than anything about the statement, the credentials or the data.
 */
export function isConnectionLoss(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (isNetworkFailure(err)) return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    // 08: connection exception; 57P01-03: admin or crash shutdown, server starting up or shutting down.
    if (code.startsWith('08') || ['57P01', '57P02', '57P03'].includes(code)) return true;
  }
  return /Connection terminated|connection error and is not queryable|timeout expired|Connection refused/i.test(
    err.message,
  );
}

/**
 * A data exception (SQLSTATE class 22): a value the column or its type refuses, e.g. text jsonb
 * cannot hold. It is about the values, so the same statement fails again however often it runs;
 * and in a statement many callers share (group commit), it is about one caller's row.
 */
export function isDataException(err: unknown): err is Error & { code: string } {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('22');
}

/**
 * A deadlock (40P01) or serialization failure (40001): PostgreSQL rolled the transaction back
 * whole, and running it again is what its documentation prescribes. Nobody's fault, least of all
 * one question's.
 */
export function isTransactionConflict(err: unknown): boolean {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return code === '40P01' || code === '40001';
}

/**
 * Runs `statement` again while it fails with a connection loss, for up to `withinMs` (backing off
 * up to 2 s): for work that must not be lost to a database restart, such as logging an answer
 * already paid for. A statement cut off mid-flight may have committed, so only statements that are
 * idempotent — or that are told they are a retry (`retried`) and check — may go through here.
 * A transaction conflict (a deadlock victim) is run again too: it surely did not commit.
 */
export async function retryOnConnectionLoss<T>(
  statement: (retried: boolean) => Promise<T>,
  withinMs: number,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (let attempt = 0, waitMs = 100; ; attempt++, waitMs = Math.min(waitMs * 2, 2_000)) {
    try {
      return await statement(attempt > 0);
    } catch (err) {
      if (!(isConnectionLoss(err) || isTransactionConflict(err)) || Date.now() + waitMs > deadline) throw err;
      await sleep(waitMs);
    }
  }
}
