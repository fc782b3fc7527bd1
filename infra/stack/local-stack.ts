/** The local stack: embedded PostgreSQL and the Temporal dev server, or the external ones the environment names. */
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { Connection } from '@temporalio/client';
import { temporalConnectionOptions } from '../../core/temporal-connection';
import { assertPortFree } from './ports';
import { startPostgres } from './postgres';
import { onShutdown } from './processes';
import { ensureSearchAttributes } from './search-attributes';
import { readStackFile, removeStackFile, writeStackFile } from './stack-file';
import { resolveTemporalBinary } from './temporal-binary';
import { startTemporalDevServer } from './temporal-server';

export { readStackFile } from './stack-file';
export type { StackFile } from './stack-file';

/**
 * The local platform: embedded Postgres and the Temporal dev server, each replaced by an
 * existing service when DATABASE_URL / TEMPORAL_ADDRESS say so. Data lives under `root`
 * (`<repo>/.meteor` for `meteorctl dev`), so campaigns survive a restart.
 */
export interface LocalStackOptions {
  root: string;
  postgresPort?: number;
  temporalPort?: number;
  uiPort?: number;
  log?: (line: string) => void;
}

export interface LocalStack {
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  /** null when Temporal is external (we do not know where its UI is). */
  uiUrl: string | null;
  stop(): Promise<void>;
}

export const DEFAULT_PORTS = { postgres: 54329, temporal: 7233, ui: 8233 } as const;

export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const root = path.resolve(opts.root);
  const log = opts.log ?? (() => undefined);
  const externalDb = nonEmpty(process.env.DATABASE_URL);
  const externalTemporal = nonEmpty(process.env.TEMPORAL_ADDRESS);
  const namespace = nonEmpty(process.env.TEMPORAL_NAMESPACE) ?? 'default';
  const ports = {
    postgres: opts.postgresPort ?? DEFAULT_PORTS.postgres,
    temporal: opts.temporalPort ?? DEFAULT_PORTS.temporal,
    ui: opts.uiPort ?? DEFAULT_PORTS.ui,
  };

  const running = await readStackFile(root);
  if (running) {
    throw new Error(
      `A local stack is already running from ${root} (pid ${running.pid}, Temporal ${running.temporalAddress}). ` +
        `Use it, or stop it first (kill ${running.pid}).`,
    );
  }

  // Fail before starting anything: a taken port or a missing binary should not leave half a stack.
  if (!externalDb) await assertPortFree(ports.postgres, 'Postgres');
  if (!externalTemporal) {
    await assertPortFree(ports.temporal, 'Temporal frontend');
    await assertPortFree(ports.ui, 'Temporal UI');
  }
  const binary = externalTemporal ? null : await resolveTemporalBinary({ log });

  // Created world-searchable: as root, Postgres runs as the `postgres` user and must reach its data.
  await mkdir(path.join(root, 'logs'), { recursive: true, mode: 0o755 });

  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (let stop = stops.pop(); stop; stop = stops.pop()) await stop();
  };

  try {
    let databaseUrl: string;
    if (externalDb) {
      databaseUrl = externalDb;
      log('postgres: using DATABASE_URL');
    } else {
      const started = Date.now();
      const dataDir = path.join(root, 'postgres');
      const postgres = await startPostgres({
        dataDir,
        port: ports.postgres,
        log: (line) => log(`postgres: ${line}`),
      });
      stops.push(postgres.stop);
      databaseUrl = postgres.url;
      // Said on the ready line, which `meteorctl dev` always shows: the data is not where one looks.
      const moved =
        postgres.dataDir === dataDir
          ? ''
          : ` (data in ${postgres.dataDir}, linked from ${dataDir}: the 'postgres' user cannot enter the checkout)`;
      log(`postgres: ready on port ${ports.postgres} in ${Date.now() - started} ms${moved}`);
    }

    let temporalAddress: string;
    let uiUrl: string | null = null;
    if (externalTemporal) {
      temporalAddress = externalTemporal;
      const connection = await Connection.connect(temporalConnectionOptions(externalTemporal));
      try {
        await ensureSearchAttributes(connection, namespace);
      } finally {
        await connection.close();
      }
      log(`temporal: using TEMPORAL_ADDRESS=${externalTemporal} (namespace ${namespace})`);
    } else {
      const started = Date.now();
      const temporal = await startTemporalDevServer({
        binary: binary ?? 'temporal',
        dbFile: path.join(root, 'temporal.sqlite'),
        port: ports.temporal,
        uiPort: ports.ui,
        namespace,
        logFile: path.join(root, 'logs', 'temporal.log'),
      });
      stops.push(temporal.stop);
      temporalAddress = temporal.address;
      uiUrl = temporal.uiUrl;
      log(`temporal: ready at ${temporalAddress} in ${Date.now() - started} ms (UI ${uiUrl})`);
    }

    await writeStackFile(root, {
      pid: process.pid,
      databaseUrl,
      temporalAddress,
      namespace,
      uiUrl,
      startedAt: new Date().toISOString(),
    });
    // Registered last so it runs first on Ctrl-C: other terminals stop trusting the file at once.
    const removeOurStackFile = () => removeStackFile(root, process.pid);
    const unregister = onShutdown(removeOurStackFile, { name: 'stack.json', killNow: removeOurStackFile });
    stops.push(async () => {
      unregister();
      removeOurStackFile();
    });

    let stopping: Promise<void> | null = null;
    return {
      databaseUrl,
      temporalAddress,
      namespace,
      uiUrl,
      stop: () => (stopping ??= stopAll()),
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
