/** `meteorctl worker`: a worker for the configured Temporal and PostgreSQL. */
import path from 'node:path';
import { DEFAULT_STATE_DIR, resolveServices } from '../client/connect';
import { temporalConnectionOptions } from '../core/temporal-connection';
import { migrateToLatest } from '../core/db/migrate';
import { Connection } from '@temporalio/client';
import { ensureSearchAttributes } from '../infra/stack/search-attributes';
import { createMeteorWorker } from '../workers/worker';

export function artifactsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.METEOR_ARTIFACTS_DIR ?? path.join(env.METEOR_HOME ?? DEFAULT_STATE_DIR, 'artifacts');
}

export async function runWorker(opts: { taskQueue?: string }): Promise<void> {
  const services = await resolveServices();
  await migrateToLatest(services.databaseUrl);
  const connection = await Connection.connect(temporalConnectionOptions(services.temporalAddress));
  try {
    await ensureSearchAttributes(connection, services.namespace);
  } finally {
    await connection.close();
  }
  const taskQueue = opts.taskQueue ?? services.taskQueue;
  const w = await createMeteorWorker({
    temporalAddress: services.temporalAddress,
    namespace: services.namespace,
    taskQueue,
    databaseUrl: services.databaseUrl,
    artifactsDir: artifactsDir(),
  });
  process.stderr.write(
    `meteor worker on task queue "${taskQueue}" (${services.temporalAddress}, namespace ${services.namespace})\n`,
  );
  await w.run();
}
