import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { assertPortFree } from './ports';
import { onShutdown } from './processes';
import { devServerSearchAttributeFlags, ensureSearchAttributes } from './search-attributes';

/**
 * `temporal server start-dev` as a child process: SQLite-backed, so workflows survive restarts,
 * with the campaign search attributes registered. Output goes straight to `logFile` (the child
 * writes the file itself, so a chatty server never backs up a pipe).
 */
export interface TemporalDevServerOptions {
  binary: string;
  dbFile: string;
  port: number;
  uiPort: number;
  namespace?: string;
  logFile: string;
}

export interface TemporalDevServer {
  address: string;
  uiUrl: string;
  pid: number;
  stop(): Promise<void>;
}

// A busy 2-core machine can take a while; a healthy start takes about a second.
const HEALTH_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;

export async function startTemporalDevServer(opts: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const namespace = opts.namespace ?? 'default';
  const address = `127.0.0.1:${opts.port}`;
  await assertPortFree(opts.port, 'Temporal frontend');
  await assertPortFree(opts.uiPort, 'Temporal UI');
  await mkdir(path.dirname(opts.dbFile), { recursive: true });
  await mkdir(path.dirname(opts.logFile), { recursive: true });

  const args = [
    'server',
    'start-dev',
    '--db-filename',
    opts.dbFile,
    '--port',
    String(opts.port),
    '--ui-port',
    String(opts.uiPort),
    '--ip',
    '127.0.0.1',
    '--namespace',
    namespace,
    '--log-level',
    'warn',
    ...devServerSearchAttributeFlags(),
    // Workflows upsert the attributes right after we register them; do not wait on a cache.
    '--dynamic-config-value',
    'system.forceSearchAttributesCacheRefreshOnRead=true',
  ];

  const logFd = openSync(opts.logFile, 'a');
  const logStart = fstatSync(logFd).size; // a failed start shows only this run's lines
  writeSync(logFd, `\n--- ${new Date().toISOString()} ${opts.binary} ${args.join(' ')}\n`);
  const child = spawn(opts.binary, args, { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd); // the child holds its own copy

  let exitInfo: string | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exitInfo = `could not run ${opts.binary}: ${err.message}`;
      resolve();
    });
  });

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      unregister();
      if (exitInfo !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };
  const unregister = onShutdown(stop, {
    name: `temporal :${opts.port}`,
    // SIGTERM: the server shuts down cleanly on its own after we are gone.
    killNow: () => {
      if (exitInfo === null) child.kill('SIGTERM');
    },
  });

  try {
    await waitUntilServing(address, namespace, exited, () => exitInfo);
  } catch (err) {
    await stop();
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `Temporal dev server did not start: ${reason}\nLast lines of ${opts.logFile}:\n${tail(opts.logFile, logStart, 30)}`,
    );
  }

  return { address, uiUrl: `http://127.0.0.1:${opts.uiPort}`, pid: child.pid ?? -1, stop };
}

/**
 * Polls until the frontend answers a health check and the namespace exists (the health check
 * turns SERVING slightly before the namespace registry is loaded), then makes sure the search
 * attributes exist: start-dev registers them only on a fresh SQLite file. Each probe races the
 * child's exit, so a server that dies at once is reported at once.
 */
async function waitUntilServing(
  address: string,
  namespace: string,
  exited: Promise<void>,
  exitInfo: () => string | null,
): Promise<void> {
  const died = exited.then(() => {
    throw new Error(`the server exited early (${exitInfo() ?? 'unknown'})`);
  });
  died.catch(() => undefined); // observed through the races below
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let lastError = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      await Promise.race([probe(address, namespace), died]);
      return;
    } catch (err) {
      if (exitInfo() !== null) return died;
      lastError = err instanceof Error ? err.message : String(err);
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 250))]);
  }
  throw new Error(
    `no healthy answer from ${address} within ${HEALTH_TIMEOUT_MS / 1000} s (last error: ${lastError})`,
  );
}

async function probe(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: '2s' });
  try {
    const health = await connection.healthService.check({});
    // 1 = SERVING in grpc.health.v1.HealthCheckResponse.ServingStatus
    if (health.status !== 1) throw new Error(`health status ${health.status ?? 'unknown'}`);
    await connection.workflowService.describeNamespace({ namespace });
    await ensureSearchAttributes(connection, namespace);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

function tail(file: string, fromByte: number, lines: number): string {
  try {
    const text = readFileSync(file).subarray(fromByte).toString('utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
