/**
 * The local environment: the stack (PostgreSQL, Temporal dev server), the model simulator and a
 * worker, all stopped together on Ctrl-C. `meteorctl dev` runs it in the foreground; the demo
 * starts the same thing around its campaign.
 */
import path from 'node:path';
import { DEFAULT_STATE_DIR, REPO_ROOT } from '../client/connect';
import { migrateToLatest } from '../core/db/migrate';
import { onShutdown, shutdown } from '../infra/stack/processes';
import { startLocalStack, type LocalStack } from '../infra/stack/local-stack';
import { startSimServer, type SimServer } from '../infra/sim/server';
import { DEFAULT_TASK_QUEUE } from '../workers/defaults';
import { createMeteorWorker } from '../workers/worker';
import { artifactsDir } from './worker';
import { installDevRuntime } from '../workers/runtime';

export const EXAMPLE_DIR = path.join(REPO_ROOT, 'examples', 'kubernetes-ops');
/** What the simulated strong model knows: both examples' questions and references. */
export const EXAMPLE_KNOWLEDGE = ['kubernetes-ops', 'ab-testing'].flatMap((example) => [
  path.join(REPO_ROOT, 'examples', example, 'train.jsonl'),
  path.join(REPO_ROOT, 'examples', example, 'eval.jsonl'),
]);

export interface DevOptions {
  worker: boolean;
  sim: boolean;
  simPort: number;
  simLatencyMs?: number;
  log?: (line: string) => void;
}

export interface DevEnvironment {
  stack: LocalStack;
  sim: SimServer | null;
  taskQueue: string;
  stop(): Promise<void>;
}

export async function startDevEnvironment(opts: DevOptions): Promise<DevEnvironment> {
  const sink = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // PostgreSQL's own chatter (initdb, checkpoints) goes to its log only; METEOR_VERBOSE=1 shows it.
  const log = (line: string) => {
    if (process.env.METEOR_VERBOSE || !line.startsWith('postgres: ') || /ready|error|fatal/i.test(line))
      sink(line);
  };
  installDevRuntime();
  const root = process.env.METEOR_HOME ?? DEFAULT_STATE_DIR;
  const stack = await startLocalStack({ root, log });
  onShutdown(() => stack.stop(), { name: 'local stack' });
  await migrateToLatest(stack.databaseUrl);

  let sim: SimServer | null = null;
  if (opts.sim) {
    sim = await startSimServer({
      port: opts.simPort,
      latencyMs: opts.simLatencyMs ?? 150,
      knowledgeFiles: EXAMPLE_KNOWLEDGE,
    });
    const s = sim;
    onShutdown(() => s.close(), { name: 'model simulator' });
    log(`model simulator (SIMULATION — not real models): ${sim.url}`);
  }

  const taskQueue = process.env.METEOR_TASK_QUEUE ?? DEFAULT_TASK_QUEUE;
  if (opts.worker) {
    const w = await createMeteorWorker({
      temporalAddress: stack.temporalAddress,
      namespace: stack.namespace,
      taskQueue,
      databaseUrl: stack.databaseUrl,
      artifactsDir: artifactsDir(),
      shutdownGraceTime: '10s',
    });
    const running = w.run();
    onShutdown(
      async () => {
        w.shutdown();
        await running;
      },
      { name: 'worker' },
    );
    log(`worker on task queues ${w.queues.map((q) => `"${q}"`).join(', ')}`);
  }
  return { stack, sim, taskQueue, stop: shutdown };
}

export async function runDev(opts: DevOptions): Promise<void> {
  const env = await startDevEnvironment(opts);
  const { stack } = env;
  process.stderr.write(
    [
      '',
      'meteor local stack is up (Ctrl-C stops everything):',
      `  PostgreSQL   ${stack.databaseUrl}`,
      `  Temporal     ${stack.temporalAddress} (namespace ${stack.namespace})`,
      `  Temporal UI  ${stack.uiUrl ?? '(external cluster)'}`,
      env.sim ? `  Simulator    ${env.sim.url}  (simulated models)` : '',
      '',
      'Try: npx meteorctl campaign launch -f examples/kubernetes-ops/campaign.yaml --wait',
      '',
    ]
      .filter((l) => l !== null)
      .join('\n'),
  );
  await new Promise<never>(() => undefined); // until a signal: the shutdown registry stops everything
}
