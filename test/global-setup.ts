import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { migrateToLatest } from '../core/db/migrate';
import { findFreePort } from '../infra/stack/ports';
import { startPostgres } from '../infra/stack/postgres';
import { resolveTemporalBinary } from '../infra/stack/temporal-binary';
import { startTemporalDevServer } from '../infra/stack/temporal-server';
import { bundleWorkflowsInChild } from '../workers/workflow-bundle';

/**
 * Starts the real services the suite runs against, once per `vitest run`: embedded Postgres
 * (unless DATABASE_URL is set) and the Temporal dev server (unless TEMPORAL_ADDRESS is set),
 * on free ports with throw-away data, then migrates the database. The SDK's own test server
 * gets only 5 s to come up, too little on a busy 2-core machine, hence this.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string) => process.stderr.write(`[global-setup] ${line}\n`);
  const cleanups: Array<() => Promise<void>> = [];
  const teardown = async () => {
    for (let cleanup = cleanups.pop(); cleanup; cleanup = cleanups.pop()) {
      await cleanup().catch((err: unknown) => log(`teardown step failed: ${String(err)}`));
    }
  };

  // Bundling the workflows takes seconds of CPU: once here, beside the services' start-up, rather
  // than in every test file's worker (each file imports the worker module afresh).
  const bundling = bundleWorkflowsInChild(path.join(__dirname, '..', 'workflows'));
  bundling.catch(() => undefined);
  try {
    const tempDir = await mkdtemp(path.join(os.tmpdir(), 'meteor-test-'));
    // mkdtemp makes it 0700; as root, Postgres runs as `postgres` and must reach its data dir.
    await chmod(tempDir, 0o755);
    cleanups.push(() => rm(tempDir, { recursive: true, force: true }));

    let databaseUrl = process.env.DATABASE_URL;
    if (!databaseUrl) {
      const started = Date.now();
      const postgres = await startPostgres({
        dataDir: path.join(tempDir, 'postgres'),
        port: await findFreePort(),
      });
      cleanups.push(postgres.stop);
      databaseUrl = postgres.url;
      log(`postgres ready in ${Date.now() - started} ms: ${databaseUrl}`);
    }

    const temporalNamespace = process.env.TEMPORAL_NAMESPACE || 'default';
    let temporalAddress = process.env.TEMPORAL_ADDRESS;
    if (!temporalAddress) {
      const started = Date.now();
      const temporal = await startTemporalDevServer({
        binary: await resolveTemporalBinary({ log }),
        dbFile: path.join(tempDir, 'temporal.sqlite'),
        port: await findFreePort(),
        uiPort: await findFreePort(),
        namespace: temporalNamespace,
        logFile: path.join(tempDir, 'temporal.log'),
      });
      cleanups.push(temporal.stop);
      temporalAddress = temporal.address;
      log(`temporal ready in ${Date.now() - started} ms: ${temporalAddress}`);
    }

    await migrateToLatest(databaseUrl);

    const bundlePath = path.join(tempDir, 'workflow-bundle.json');
    await writeFile(bundlePath, JSON.stringify(await bundling));
    project.provide('workflowBundlePath', bundlePath);
    project.provide('databaseUrl', databaseUrl);
    project.provide('temporalAddress', temporalAddress);
    project.provide('temporalNamespace', temporalNamespace);
    // Also for code under test that reads its configuration from the environment.
    process.env.DATABASE_URL = databaseUrl;
    process.env.TEMPORAL_ADDRESS = temporalAddress;
    process.env.TEMPORAL_NAMESPACE = temporalNamespace;
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
