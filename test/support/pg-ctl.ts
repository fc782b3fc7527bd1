/** `pg_ctl` on a test's PostgreSQL, run the way an operator would. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { PostgresHandle } from '../../infra/stack/postgres';

const run = promisify(execFile);

/**
 * `pg_ctl restart -m MODE -w`: fast ends sessions with 57P01, immediate drops them without a word.
 * As root, as the server's own user (pg_ctl refuses root). The new server's output goes to a log
 * file in the data directory: a pipe would keep the call waiting on the daemon.
 */
export async function pgCtlRestart(
  server: Pick<PostgresHandle, 'binDir' | 'dataDir'>,
  mode: 'fast' | 'immediate',
): Promise<void> {
  const args = [
    path.join(server.binDir, 'pg_ctl'),
    'restart',
    '-D',
    server.dataDir,
    '-m',
    mode,
    '-w',
    '-l',
    path.join(server.dataDir, 'restart.log'),
  ];
  const [file, ...rest] = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', ...args] : args;
  await run(file ?? 'pg_ctl', rest, { timeout: 60_000 });
}
