/** `meteorctl worker`: a worker for the configured Temporal and PostgreSQL. */
import path from 'node:path';
import { DEFAULT_STATE_DIR, resolveServices } from '../client/connect';
import {
  isTemporalUnreachable,
  temporalConnectError,
  temporalFailureReason,
  temporalConnectionOptions,
} from '../core/temporal-connection';
import { migrateToLatest } from '../core/db/migrate';
import { Connection } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { ensureSearchAttributes } from '../infra/stack/search-attributes';
import { parseArtifactUri } from '../core/artifacts';
import { sql } from 'kysely';
import { createDb, isConnectionLoss } from '../core/db/connection';
import { waitUntilReachable } from '../core/dependency-watch';
import { errorMessage, UserError } from '../core/errors';
import { versionLabel, workerVersion } from '../core/worker-deployment';
import { installWorkerRuntime } from '../workers/runtime';
import { DEFAULT_DB_POOL_MAX, DEFAULT_FINETUNE_QUEUE } from '../workers/defaults';
import { createMeteorWorker, databaseHost } from '../workers/worker';

export function artifactsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.METEOR_ARTIFACTS_DIR || path.join(env.METEOR_HOME || DEFAULT_STATE_DIR, 'artifacts');
}

/**
 * Which queues a worker serves: `--queues` names them; the campaign queue (`--task-queue`)
 * among them gets workflows and LLM batches, every other one is a fine-tune queue.
 */
export function servedQueues(
  taskQueue: string,
  queues: string | undefined,
): { taskQueue: string | null; fineTuneQueues: string[] } {
  const names = (queues ?? `${taskQueue},${DEFAULT_FINETUNE_QUEUE}`)
    .split(',')
    .map((q) => q.trim())
    .filter((q) => q !== '');
  if (names.length === 0) throw new UserError('--queues: name at least one task queue');
  return {
    taskQueue: names.includes(taskQueue) ? taskQueue : null,
    fineTuneQueues: [...new Set(names.filter((q) => q !== taskQueue))],
  };
}

/** `--db-pool-max`, else METEOR_DB_POOL_MAX, else the default: a positive integer. */
export function dbPoolMax(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): number {
  const [source, raw] =
    flag !== undefined
      ? ['--db-pool-max', flag]
      : env.METEOR_DB_POOL_MAX
        ? ['METEOR_DB_POOL_MAX', env.METEOR_DB_POOL_MAX]
        : [null, null];
  if (source === null || raw === null) return DEFAULT_DB_POOL_MAX;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    throw new UserError(`${source}: '${raw}' is not a whole number of connections from 1 to 1000`);
  }
  return n;
}

/** `meteorctl worker`'s flags, as commander gives them. */
export interface WorkerFlags {
  taskQueue?: string;
  queues?: string;
  dbPoolMax?: string;
  deploymentName?: string;
  buildId?: string;
  unversioned?: boolean;
}

export async function runWorker(opts: WorkerFlags): Promise<void> {
  installWorkerRuntime();
  const poolMax = dbPoolMax(opts.dbPoolMax);
  const version = workerVersion(opts);
  // A store URI that cannot work stops the worker now, not its first fine-tune.
  const storeUri = process.env.METEOR_ARTIFACTS_URI;
  if (storeUri) parseArtifactUri(storeUri, 'METEOR_ARTIFACTS_URI');
  const services = await resolveServices();
  // Started before PostgreSQL or Temporal (a host booting, the whole stack restarting), the worker
  // waits for them; it exits only for what waiting cannot fix, saying what to fix.
  const log = (line: string) => Runtime.instance().logger.warn(line);
  const database = databaseHost(services.databaseUrl);
  await waitUntilReachable({
    name: `PostgreSQL at ${database}`,
    attempt: () => pingDatabase(services.databaseUrl),
    unreachable: isConnectionLoss,
    log,
  }).catch((err: unknown) => {
    throw isConnectionSetting(err)
      ? new UserError(`Cannot use PostgreSQL at ${database} (DATABASE_URL): ${errorMessage(err)}`)
      : err;
  });
  await migrateToLatest(services.databaseUrl);
  // Only "nothing listens yet" is waited for: a TLS or auth failure is for the operator to fix.
  await waitUntilReachable({
    name: `the Temporal server at ${services.temporalAddress}`,
    attempt: async () => {
      const probe = await NativeConnection.connect(temporalConnectionOptions(services.temporalAddress));
      await probe.close();
    },
    unreachable: isTemporalUnreachable,
    reason: temporalFailureReason,
    log,
  }).catch((err: unknown) => {
    throw temporalConnectError(services.temporalAddress, err);
  });
  let connection: Connection;
  try {
    connection = await Connection.connect(temporalConnectionOptions(services.temporalAddress));
  } catch (err) {
    throw temporalConnectError(services.temporalAddress, err);
  }
  try {
    await ensureSearchAttributes(connection, services.namespace);
  } finally {
    await connection.close();
  }
  const served = servedQueues(opts.taskQueue ?? services.taskQueue, opts.queues);
  const w = await createMeteorWorker({
    temporalAddress: services.temporalAddress,
    namespace: services.namespace,
    ...served,
    databaseUrl: services.databaseUrl,
    dbPoolMax: poolMax,
    artifactsDir: artifactsDir(),
    version,
  });
  process.stderr.write(
    `meteor worker on task queues ${w.queues.map((q) => `"${q}"`).join(', ')} (${services.temporalAddress}, namespace ${services.namespace}; ${version ? versionLabel(version) : 'unversioned'}; at most ${poolMax} PostgreSQL connections)\n`,
  );
  await w.run();
}

/** PostgreSQL refusing what DATABASE_URL says: a host that does not resolve, a login or database it does not know. */
function isConnectionSetting(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === 'ENOTFOUND' || code.startsWith('28') || code === '3D000');
}

/** One statement on a connection of its own: whether DATABASE_URL leads to a database that answers. */
async function pingDatabase(databaseUrl: string): Promise<void> {
  const db = createDb(databaseUrl, { max: 1 });
  try {
    await sql`select 1`.execute(db);
  } finally {
    await db.destroy();
  }
}
