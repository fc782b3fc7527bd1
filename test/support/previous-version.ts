/**
 * A released version of meteor checked out beside this one (a git worktree), for tests that run
 * its CLI and workers against the same PostgreSQL and Temporal as the current code: the upgrade
 * procedure, tried for real. The version's commit is the one its recorded histories name
 * (test/fixtures/histories/<version>/index.json), so no tag is needed in the clone.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, services, type CliResult } from './harness';

const run = promisify(execFile);

export interface PreviousVersion {
  version: string;
  commit: string;
  /** The worktree: run `node bin/meteorctl.cjs` there. */
  dir: string;
  remove(): Promise<void>;
}

async function git(args: string[]): Promise<string> {
  return (await run('git', ['-C', REPO_ROOT, ...args])).stdout.trim();
}

/** A lock file's dependency tree, without the root package's own entry (its version differs). */
function dependencyTree(lockText: string): string {
  const lock = JSON.parse(lockText) as { packages?: Record<string, unknown> };
  const { '': _root, ...deps } = lock.packages ?? {};
  return JSON.stringify(deps);
}

export async function checkoutPreviousVersion(version: string): Promise<PreviousVersion> {
  const index = JSON.parse(
    await readFile(path.join(REPO_ROOT, 'test', 'fixtures', 'histories', version, 'index.json'), 'utf8'),
  ) as { commit: string };
  const commit = index.commit;
  const present = () =>
    git(['cat-file', '-e', `${commit}^{commit}`]).then(
      () => true,
      () => false,
    );
  // A shallow clone lacks it: fetch that one commit from where the clone came from.
  if (!(await present())) await git(['fetch', '--quiet', 'origin', commit]).catch(() => undefined);
  if (!(await present())) {
    throw new Error(
      `${version} (commit ${commit}) is not in this clone and could not be fetched from origin: ` +
        'the upgrade test runs that version, so it needs a clone with history',
    );
  }
  const parent = await mkdtemp(path.join(os.tmpdir(), `meteor-${version}-`));
  const dir = path.join(parent, 'tree');
  await git(['worktree', 'add', '--detach', '--quiet', dir, commit]);
  const remove = async () => {
    await git(['worktree', 'remove', '--force', dir]).catch(() => undefined);
    await rm(parent, { recursive: true, force: true });
  };
  try {
    // Its own dependencies are this checkout's when the lock files agree (then no install).
    const theirs = await git(['show', `${commit}:package-lock.json`]);
    const ours = await readFile(path.join(REPO_ROOT, 'package-lock.json'), 'utf8');
    if (dependencyTree(theirs) !== dependencyTree(ours)) {
      throw new Error(
        `${version}'s package-lock.json differs from this checkout's: install its dependencies in the worktree first`,
      );
    }
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  } catch (err) {
    await remove();
    throw err;
  }
  return { version, commit, dir, remove };
}

/** `node bin/meteorctl.cjs ...args` of the version, with `env` over the test's services. */
export function previousMeteorctl(
  prev: PreviousVersion,
  args: string[],
  env: Record<string, string>,
): Promise<CliResult> {
  const svc = services();
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['bin/meteorctl.cjs', ...args],
      {
        cwd: prev.dir,
        env: {
          ...process.env,
          DATABASE_URL: svc.databaseUrl,
          TEMPORAL_ADDRESS: svc.temporalAddress,
          TEMPORAL_NAMESPACE: svc.namespace,
          ...env,
        },
        timeout: 60_000,
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(
            new Error(`${prev.version} meteorctl ${args.join(' ')} did not run: ${err.message}\n${stderr}`),
          );
          return;
        }
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
  });
}
