/** Forward-only migration on start: the worker, `meteorctl dev` and the tests all call this. */
import { Migrator, sql, type Kysely, type Migration } from 'kysely';
import { migrations } from '../../migrations';
import { createDb } from './connection';
import type { Database } from './types';

/** Kysely's bookkeeping table (its default name). */
const MIGRATION_TABLE = 'kysely_migration';

/**
 * Brings the database up to this version's migrations. `known` is this version's list (a test
 * passes another version's). A database a newer version already migrated is left as it is: its
 * migrations are expand-only across one version (README, "Migrations across one version"), so
 * this version still runs on it — a worker of version N restarting while N+1 workers run must
 * start, where Kysely alone would call the unknown migrations "corrupted" and refuse.
 */
export async function migrateDb(
  db: Kysely<Database>,
  known: Record<string, Migration> = migrations,
): Promise<string[]> {
  const applied = await appliedMigrations(db);
  const unknown = applied.filter((name) => !(name in known));
  if (unknown.length > 0) {
    const missing = Object.keys(known).filter((name) => !applied.includes(name));
    // Newer migrations on top of all of ours: a newer version's database. Anything else (ours not
    // applied under theirs, or a branch's) is a database this code cannot reason about.
    if (missing.length === 0) return [];
    throw new Error(
      `Database migration failed: the database has migrations this version does not know ` +
        `(${unknown.join(', ')}) but lacks some of its own (${missing.join(', ')})`,
    );
  }
  const migrator = new Migrator({ db, provider: { getMigrations: async () => known } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    throw new Error(`Database migration failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Names of the migrations applied to the database (none on a fresh one). */
async function appliedMigrations(db: Kysely<Database>): Promise<string[]> {
  const { rows } = await sql<{ exists: boolean }>`
    select to_regclass(${MIGRATION_TABLE}) is not null as exists`.execute(db);
  if (!rows[0]?.exists) return [];
  const applied = await sql<{ name: string }>`select name from ${sql.table(MIGRATION_TABLE)}`.execute(db);
  return applied.rows.map((r) => r.name);
}

export async function migrateToLatest(databaseUrl: string): Promise<void> {
  const db = createDb(databaseUrl, { max: 1 });
  try {
    await migrateDb(db);
  } finally {
    await db.destroy();
  }
}
