/**
 * Building a meteor worker: the campaign, stage and fine-tune workflows plus the LLM-bound
 * activities on the campaign task queue, and the fine-tune activities on the fine-tune (GPU
 * dispatch) queue and on this host's own queue for jobs only this host can reach. Entry points
 * (`meteorctl worker`, `meteorctl dev`, the demo, tests) call this.
 */
import os from 'node:os';
import path from 'node:path';
import { NativeConnection, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { sql } from 'kysely';
import { createActivities, type ActivityDeps } from '../activities';
import { hostQueue } from '../activities/finetune/backends';
import { createArtifactStores } from '../core/artifacts';
import { getCampaign } from '../core/campaigns';
import { DependencyWatch, type OutageLogger } from '../core/dependency-watch';
import { createDb, type Db } from '../core/db/connection';
import { adapterHealer } from '../core/llm/adapters';
import { databaseBudgetGuard } from '../core/llm/budget-guard';
import { databaseEndpointHealth } from '../core/llm/endpoint-health';
import { LlmGateway } from '../core/llm/gateway';
import { EndpointLimiter } from '../core/llm/limiter';
import { temporalConnectError, temporalConnectionOptions } from '../core/temporal-connection';
import {
  describeDeployment,
  promoteIfFirst,
  versionLabel,
  type WorkerVersion,
} from '../core/worker-deployment';
import { DEFAULT_DB_POOL_MAX, DEFAULT_FINETUNE_QUEUE } from './defaults';
import { bundleWorkflowsInChild } from './workflow-bundle';

/**
 * How long a statement waits for a connection while PostgreSQL is unreachable before it fails (and
 * its activity retries): a restart or a managed database's failover is over well within it.
 */
export const DB_RECONNECT_WITHIN_MS = 60_000;
/** How often the worker makes sure the Temporal server answers (the SDK retries its polls quietly). */
const TEMPORAL_CHECK_EVERY_MS = 3_000;
/** The SDK retries a call to an unreachable server for a long while; the probe gives up sooner. */
const TEMPORAL_PROBE_TIMEOUT_MS = 2_000;
// A folder, not require.resolve('../workflows'): Node's resolver alone (vitest) does not know .ts;
// the bundler resolves the folder's index.ts itself.
export const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows');

export interface MeteorWorkerOptions {
  temporalAddress: string;
  namespace: string;
  /** The campaign queue (workflows and LLM batches); null: serve fine-tune queues only. */
  taskQueue: string | null;
  /** Fine-tune queues served here, each with this host's own queue too (default: ['meteor-gpu']). */
  fineTuneQueues?: string[];
  /** Names this host's queues (default: METEOR_HOST_ID or the hostname). */
  hostId?: string;
  /** Test hook for the fine-tune submit (see ActivityDeps.crashPoint). */
  crashPoint?: ActivityDeps['crashPoint'];
  databaseUrl: string;
  /** A workflow bundle made already, from this code (the tests make one per run); default: made here. */
  workflowBundle?: WorkflowBundleWithSourceMap;
  /** PostgreSQL connections this worker opens at most (default DEFAULT_DB_POOL_MAX). */
  dbPoolMax?: number;
  /** The worker's `application_name` in pg_stat_activity (default `meteor-worker:<host id>`). */
  dbApplicationName?: string;
  /** This worker's own artifacts folder: the default store, and scratch for an object store. */
  artifactsDir: string;
  env?: NodeJS.ProcessEnv;
  /** Activities in flight at once; batch activities mostly wait on LLM endpoints. */
  maxConcurrentActivities?: number;
  /** How long in-flight activities may finish after a shutdown request (above the LLM timeout). */
  shutdownGraceTime?: string;
  /** Where outages of PostgreSQL and Temporal are told (default: the Temporal runtime's logger). */
  logOutage?: OutageLogger;
  /**
   * The Worker Deployment Version every queue here polls as (core/worker-deployment.ts); absent or
   * null: unversioned, as before Worker Versioning (tests, `meteorctl dev`).
   */
  version?: WorkerVersion | null;
  /** Make `version` current when its deployment's routing was never set (default true). */
  promoteIfFirst?: boolean;
}

export interface MeteorWorker {
  /** One Temporal worker per task queue served. */
  workers: Worker[];
  /** The task queues served, in the order of `workers`. */
  queues: string[];
  /** The Worker Deployment Version polled as; null when unversioned. */
  version: WorkerVersion | null;
  db: Db;
  /** Runs until shutdown() is called or the process is signalled; closes connections after. */
  run(): Promise<void>;
  shutdown(): void;
}

let bundle: Promise<WorkflowBundleWithSourceMap> | null = null;
/** Bundling the workflows takes seconds; do it once per process (in a child: workflow-bundle.ts). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowsInChild(WORKFLOWS_PATH);
  return bundle;
}

/** Makes a fresh deployment's first version current; says what it did or what to run. */
async function firstPromotion(
  connection: NativeConnection,
  namespace: string,
  version: WorkerVersion,
  hostId: string,
  signal: AbortSignal,
): Promise<void> {
  const logger = Runtime.instance().logger;
  const outcome = await promoteIfFirst(connection.workflowService, namespace, version, {
    identity: `meteor-worker@${hostId}`,
    signal,
  }).catch(() => (signal.aborted ? ('stopped' as const) : ('gave-up' as const)));
  if (outcome === 'stopped') return;
  if (outcome === 'promoted') {
    logger.info(`${versionLabel(version)} is the deployment's first version: made it current`);
  } else if (outcome === 'already-routed') {
    const d = await describeDeployment(connection.workflowService, namespace, version.deploymentName).catch(
      () => null,
    );
    if (d && d.currentBuildId !== version.buildId) {
      logger.info(
        `${versionLabel(version)} serves the runs pinned to it; new campaigns start on ${d.currentBuildId ? `build ${d.currentBuildId}` : 'unversioned workers'} until \`meteorctl deployment promote ${version.buildId}\``,
      );
    }
  } else {
    logger.warn(
      `could not make ${versionLabel(version)} current; until some version is, no campaign starts: run \`meteorctl deployment promote ${version.buildId}\``,
    );
  }
}

export async function createMeteorWorker(opts: MeteorWorkerOptions): Promise<MeteorWorker> {
  const env = opts.env ?? process.env;
  const hostId = opts.hostId ?? env.METEOR_HOST_ID ?? os.hostname();
  const logOutage = opts.logOutage ?? ((message: string) => Runtime.instance().logger.warn(message));
  // Each outage is told once, with what waits meanwhile, and again when it is over.
  const postgres = new DependencyWatch({
    name: `PostgreSQL at ${databaseHost(opts.databaseUrl)}`,
    waiting: `statements wait up to ${DB_RECONNECT_WITHIN_MS / 1000} s for it, activities retry after that`,
    probe: async () => void (await sql`select 1`.execute(db)),
    log: logOutage,
  });
  const db = createDb(opts.databaseUrl, {
    max: opts.dbPoolMax ?? DEFAULT_DB_POOL_MAX,
    applicationName: opts.dbApplicationName ?? `meteor-worker:${hostId}`,
    reconnectWithinMs: DB_RECONNECT_WITHIN_MS,
    onConnectionLost: (err) => postgres.lost(err),
  });
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(temporalConnectionOptions(opts.temporalAddress, env));
  } catch (err) {
    await db.destroy();
    throw temporalConnectError(opts.temporalAddress, err, env);
  }
  const temporal = new DependencyWatch({
    name: `the Temporal server at ${opts.temporalAddress}`,
    waiting: 'polls and activity results are retried until it is back; running activities go on',
    probe: async () => {
      await withTimeout(
        connection.workflowService.getSystemInfo({}),
        TEMPORAL_PROBE_TIMEOUT_MS,
        `no answer within ${TEMPORAL_PROBE_TIMEOUT_MS / 1000} s`,
      );
    },
    log: logOutage,
  });
  temporal.checkEvery(TEMPORAL_CHECK_EVERY_MS);
  const closeWatches = () => {
    postgres.close();
    temporal.close();
  };
  const artifactsDir = path.resolve(opts.artifactsDir);
  // Endpoint limits live in Postgres, shared with every other worker; this holds our leases.
  const limiter = new EndpointLimiter(db);
  const activities = createActivities({
    db,
    llm: new LlmGateway(
      db,
      env,
      adapterHealer(db, env, async (id) => (await getCampaign(db, id)).spec),
      limiter,
      { budget: databaseBudgetGuard(db), health: databaseEndpointHealth(db), outageLog: logOutage },
    ),
    artifactsDir,
    artifacts: createArtifactStores({ artifactsDir, env }),
    env,
    hostId,
    ...(opts.crashPoint ? { crashPoint: opts.crashPoint } : {}),
  });
  const shutdownGraceTime = opts.shutdownGraceTime ?? '2m';
  const version = opts.version ?? null;
  // Every workflow is PINNED: a run finishes on the build it started on, its stage and fine-tune
  // children with it, unless an operator moves it; a change running (or unversioned) runs must
  // take still needs a patched() marker. (Not declared per workflow with setWorkflowOptions: an
  // unversioned worker then fails every workflow task.) Every queue of this process polls as one
  // version, so a pinned campaign's fine-tune activities go to fine-tune workers of its build.
  const workerDeploymentOptions = version
    ? { useWorkerVersioning: true as const, version, defaultVersioningBehavior: 'PINNED' as const }
    : undefined;
  const workers: Worker[] = [];
  const queues: string[] = [];
  try {
    if (opts.taskQueue !== null) {
      workers.push(
        await Worker.create({
          connection,
          namespace: opts.namespace,
          taskQueue: opts.taskQueue,
          workflowBundle: opts.workflowBundle ?? (await workflowBundle()),
          activities,
          maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? 200,
          shutdownGraceTime,
          ...(workerDeploymentOptions ? { workerDeploymentOptions } : {}),
        }),
      );
      queues.push(opts.taskQueue);
    }
    for (const queue of (opts.fineTuneQueues ?? [DEFAULT_FINETUNE_QUEUE]).flatMap((q) => [
      q,
      hostQueue(q, hostId),
    ])) {
      // Fine-tune dispatch: activities only; they wait on clusters, not on LLM endpoints.
      workers.push(
        await Worker.create({
          connection,
          namespace: opts.namespace,
          taskQueue: queue,
          activities,
          maxConcurrentActivityTaskExecutions: 50,
          shutdownGraceTime,
          ...(workerDeploymentOptions ? { workerDeploymentOptions } : {}),
        }),
      );
      queues.push(queue);
    }
  } catch (err) {
    closeWatches();
    await connection.close();
    await limiter.close();
    await db.destroy();
    throw temporalConnectError(opts.temporalAddress, err, env);
  }
  return {
    workers,
    queues,
    version,
    db,
    async run() {
      const running = Promise.all(workers.map((w) => w.run()));
      const stopPromoting = new AbortController();
      if (version && (opts.promoteIfFirst ?? true)) {
        void firstPromotion(connection, opts.namespace, version, hostId, stopPromoting.signal);
      }
      try {
        await running;
      } finally {
        stopPromoting.abort();
        closeWatches();
        await connection.close();
        await limiter.close();
        await db.destroy();
      }
    },
    shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}

/** host:port/database of a PostgreSQL URL, for messages: never its user or password. */
export function databaseHost(databaseUrl: string): string {
  try {
    const u = new URL(databaseUrl);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'DATABASE_URL';
  }
}

/** `work`, or a rejection after `ms`: the SDK keeps retrying a call to an unreachable server. */
function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  work.catch(() => undefined); // may settle after the race is decided
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
