/** Opening the database. One pool per process; pass the Kysely instance down, never a global. */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import Cursor from 'pg-cursor';
import type { Database } from './types';

// Return bigint (int8) as string and numeric sums as numbers where we ask for them explicitly.
export function createDb(
  databaseUrl: string,
  opts: {
    max?: number;
    /** Shown in pg_stat_activity: which process holds a connection (e.g. `meteor-worker:gpu-1`). */
    applicationName?: string;
  } = {},
): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: opts.max ?? 10,
    ...(opts.applicationName ? { application_name: opts.applicationName } : {}),
  });
  // A dropped idle connection must not crash the worker; the pool replaces it.
  pool.on('error', () => undefined);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool, cursor: Cursor }) });
}

export type Db = Kysely<Database>;
