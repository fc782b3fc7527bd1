/** Forward-only migration on start: the worker, `meteorctl dev` and the tests all call this. */
import { Migrator, type Kysely } from 'kysely';
import { migrations } from '../../migrations';
import { createDb } from './connection';
import type { Database } from './types';

export async function migrateDb(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    throw new Error(`Database migration failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export async function migrateToLatest(databaseUrl: string): Promise<void> {
  const db = createDb(databaseUrl, { max: 1 });
  try {
    await migrateDb(db);
  } finally {
    await db.destroy();
  }
}
