/**
 * Where the platform's services are: `DATABASE_URL` and `TEMPORAL_ADDRESS`/`TEMPORAL_NAMESPACE`
 * from the environment, else the local stack that `meteorctl dev` announced in .meteor/stack.json.
 * `TEMPORAL_API_KEY` (Temporal Cloud) turns on TLS with API-key auth.
 */
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createDb, type Db } from '../core/db/connection';
import { UserError } from '../core/errors';
import { readStackFile } from '../infra/stack/stack-file';
import { temporalConnectError, temporalConnectionOptions } from '../core/temporal-connection';
import { DEFAULT_TASK_QUEUE } from '../workers/defaults';

export const REPO_ROOT = path.resolve(__dirname, '..');
export const DEFAULT_STATE_DIR = path.join(REPO_ROOT, '.meteor');

export interface Services {
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  uiUrl: string | null;
}

export async function resolveServices(env: NodeJS.ProcessEnv = process.env): Promise<Services> {
  const stack =
    env.DATABASE_URL && env.TEMPORAL_ADDRESS
      ? null
      : await readStackFile(env.METEOR_HOME ?? DEFAULT_STATE_DIR);
  const databaseUrl = env.DATABASE_URL ?? stack?.databaseUrl;
  const temporalAddress = env.TEMPORAL_ADDRESS ?? stack?.temporalAddress;
  if (!databaseUrl || !temporalAddress) {
    throw new UserError(
      'No meteor stack found: start one with `npx meteorctl dev` (in another terminal), ' +
        'or set DATABASE_URL and TEMPORAL_ADDRESS to your PostgreSQL and Temporal.',
    );
  }
  return {
    databaseUrl,
    temporalAddress,
    namespace: env.TEMPORAL_NAMESPACE ?? stack?.namespace ?? 'default',
    taskQueue: env.METEOR_TASK_QUEUE ?? DEFAULT_TASK_QUEUE,
    uiUrl: env.TEMPORAL_ADDRESS ? (env.TEMPORAL_UI_URL ?? null) : (stack?.uiUrl ?? null),
  };
}

export interface Clients {
  services: Services;
  db: Db;
  temporal: Client;
  close(): Promise<void>;
}

export async function connect(services: Services): Promise<Clients> {
  let connection: Connection;
  try {
    connection = await Connection.connect({
      ...temporalConnectionOptions(services.temporalAddress),
      connectTimeout: '5s',
    });
  } catch (err) {
    throw temporalConnectError(services.temporalAddress, err);
  }
  // At most 4 connections per command (docs/deployment.md counts them), named in pg_stat_activity.
  const db = createDb(services.databaseUrl, { max: 4, applicationName: 'meteorctl' });
  return {
    services,
    db,
    temporal: new Client({ connection, namespace: services.namespace }),
    async close() {
      await connection.close();
      await db.destroy();
    },
  };
}
