/**
 * Building a meteor worker: the campaign, stage and fine-tune workflows plus their activities on
 * one task queue. Entry points (`meteorctl worker`, `meteorctl dev`, the demo, tests) call this.
 */
import path from 'node:path';
import {
  NativeConnection,
  Worker,
  bundleWorkflowCode,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { createActivities } from '../activities';
import { createDb, type Db } from '../core/db/connection';
import { LlmGateway } from '../core/llm/gateway';
import { temporalConnectionOptions } from '../core/temporal-connection';

export const DEFAULT_TASK_QUEUE = 'meteor';
// A folder, not require.resolve('../workflows'): Node's resolver alone (vitest) does not know .ts;
// the bundler resolves the folder's index.ts itself.
export const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows');

export interface MeteorWorkerOptions {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  databaseUrl: string;
  artifactsDir: string;
  env?: NodeJS.ProcessEnv;
  /** Activities in flight at once; batch activities mostly wait on LLM endpoints. */
  maxConcurrentActivities?: number;
  /** How long in-flight activities may finish after a shutdown request (above the LLM timeout). */
  shutdownGraceTime?: string;
}

export interface MeteorWorker {
  worker: Worker;
  db: Db;
  /** Runs until shutdown() is called or the process is signalled; closes connections after. */
  run(): Promise<void>;
  shutdown(): void;
}

let bundle: Promise<WorkflowBundleWithSourceMap> | null = null;
/** Bundling the workflows takes seconds; do it once per process. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
  return bundle;
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};

export async function createMeteorWorker(opts: MeteorWorkerOptions): Promise<MeteorWorker> {
  const env = opts.env ?? process.env;
  const db = createDb(opts.databaseUrl, { max: 20 });
  const connection = await NativeConnection.connect(temporalConnectionOptions(opts.temporalAddress, env));
  const activities = createActivities({
    db,
    llm: new LlmGateway(db, env),
    artifactsDir: path.resolve(opts.artifactsDir),
    env,
  });
  const worker = await Worker.create({
    connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    workflowBundle: await workflowBundle(),
    activities,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivities ?? 200,
    shutdownGraceTime: opts.shutdownGraceTime ?? '2m',
  });
  return {
    worker,
    db,
    async run() {
      try {
        await worker.run();
      } finally {
        await connection.close();
        await db.destroy();
      }
    },
    shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
    },
  };
}
