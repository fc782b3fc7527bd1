/**
 * As root, PostgreSQL runs as the `postgres` user (it refuses to run as root). That user must be
 * able to reach the binaries and the data directory, which a checkout in a private folder
 * (a 0700 mktemp dir, /root) does not allow. Rather than loosen the user's folders, we copy the
 * binaries to a root-owned, world-readable cache and keep the data in a reachable place.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { chmod, cp, mkdir, readdir, readlink, rename, rm, rmdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { PostgresBinaries } from './embedded-postgres-loader';

export interface UnixUser {
  uid: number;
  gid: number;
  /** All groups, the primary one included. */
  groups: number[];
}

type StatFn = (p: string) => Pick<Stats, 'mode' | 'uid' | 'gid'>;

const R = 4;
const X = 1;

/** Whether `user` gets permission `bit` (R/W/X) on a file with this owner and mode (ACLs ignored). */
export function permits(stat: Pick<Stats, 'mode' | 'uid' | 'gid'>, user: UnixUser, bit: number): boolean {
  if (user.uid === 0) return true;
  if (stat.uid === user.uid) return ((stat.mode >> 6) & bit) === bit;
  if (user.groups.includes(stat.gid)) return ((stat.mode >> 3) & bit) === bit;
  return (stat.mode & bit) === bit;
}

/**
 * Whether `user` can reach `target` by this exact path: search permission on every folder from
 * the root down to the target's parent. Symlinks on the way are followed by stat, as the kernel
 * does. Missing folders are skipped: we create them with the default (world-searchable) mode.
 */
export function reachableBy(target: string, user: UnixUser, stat: StatFn = statSync): boolean {
  const absolute = path.resolve(target);
  for (let dir = path.dirname(absolute); ; dir = path.dirname(dir)) {
    const s = statOrNull(stat, dir);
    if (s && !permits(s, user, X)) return false;
    if (dir === path.dirname(dir)) return true;
  }
}

/** The `postgres` user, created (like embedded-postgres does) when the system has none. */
export function postgresUser(): UnixUser {
  const lookup = (): UnixUser | null => {
    try {
      const id = (flag: string) => execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim();
      return {
        uid: Number(id('-u')),
        gid: Number(id('-g')),
        groups: id('-G').split(/\s+/).map(Number),
      };
    } catch {
      return null;
    }
  };
  const found = lookup();
  if (found) return found;
  try {
    execFileSync('groupadd', ['--system', 'postgres'], { stdio: 'pipe' });
    execFileSync('useradd', ['--system', '--no-create-home', '-g', 'postgres', 'postgres'], {
      stdio: 'pipe',
    });
  } catch (err) {
    throw new Error(
      `Running as root, Postgres needs a 'postgres' user to run as, and creating one failed ` +
        `(${err instanceof Error ? err.message : String(err)}). Create it (useradd postgres) or set DATABASE_URL.`,
    );
  }
  const created = lookup();
  if (!created) throw new Error(`Created the 'postgres' user but 'id postgres' still fails.`);
  return created;
}

/** Root-owned and not writable by others: safe to hand to another user to execute. */
function trustworthy(dir: string): boolean {
  const s = lstatSync(dir);
  return s.isDirectory() && s.uid === 0 && (s.mode & 0o022) === 0;
}

/**
 * The binaries as `user` can run them: in place when reachable (also through the real path of a
 * symlinked node_modules), else a copy in `cacheDir`, made once per package version. The copy
 * goes to a temporary sibling first and is renamed into place, so a crashed or concurrent copy
 * never leaves a half tree that a later run would trust.
 */
export async function reachableBinaries(
  binaries: PostgresBinaries,
  user: UnixUser,
  cacheDir: string,
  log: (line: string) => void,
): Promise<string> {
  const usable = (dir: string) => {
    const postgres = path.join(dir, 'bin', 'postgres');
    return (
      reachableBy(postgres, user) &&
      permits(statSync(path.join(dir, 'bin')), user, X) &&
      permits(statSync(postgres), user, R | X)
    );
  };
  if (usable(binaries.nativeDir)) return binaries.nativeDir;
  const real = realpathSync(binaries.nativeDir);
  if (usable(real)) return real;

  const target = path.join(cacheDir, `postgres-${binaries.version}`);
  await mkdir(cacheDir, { recursive: true, mode: 0o755 });
  if (!trustworthy(cacheDir)) {
    throw new Error(
      `${cacheDir} must be a folder owned by root and not writable by others, to hold the Postgres binaries.`,
    );
  }
  if (existsSync(target) && trustworthy(target)) return target;

  log(`the 'postgres' user cannot reach ${binaries.nativeDir}: copying the binaries to ${target}`);
  const temp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    // verbatimSymlinks: the package's lib/*.so links are relative and must stay so.
    await cp(real, temp, { recursive: true, verbatimSymlinks: true });
    await openUp(temp);
    // Only an untrustworthy leftover is replaced; a concurrent run's finished copy makes rename fail.
    if (existsSync(target) && !trustworthy(target)) await rm(target, { recursive: true, force: true });
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    // Another run finished the same copy first: use that one.
    if (existsSync(target) && trustworthy(target)) return target;
    throw err;
  }
  return target;
}

/** World-readable files, world-searchable folders; group/other write removed. */
async function openUp(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await openUp(p);
    else if (entry.isFile()) {
      const mode = statSync(p).mode & 0o777;
      await chmod(p, (mode | 0o444 | (mode & 0o100 ? 0o111 : 0)) & ~0o022);
    }
  }
}

/**
 * The data directory as `user` can reach it. A reachable `dataDir` is used as is. Otherwise the
 * cluster lives in a fresh folder under `dataHome` and `dataDir` becomes a symlink to it, so the
 * next run finds the same data and removing `dataDir` starts afresh; we log where it is.
 */
export async function reachableDataDir(
  dataDir: string,
  user: UnixUser,
  dataHome: string,
  log: (line: string) => void,
): Promise<string> {
  // Missing parents are created as root with the default mode, which the `postgres` user can enter.
  await mkdir(path.dirname(dataDir), { recursive: true });
  const link = lstatOrNull(dataDir);
  if (link?.isSymbolicLink()) {
    const target = path.resolve(path.dirname(dataDir), await readlink(dataDir));
    if (reachableBy(target, user)) return target;
    throw new Error(`${dataDir} points to ${target}, which the 'postgres' user cannot reach.`);
  }
  if (reachableBy(dataDir, user)) return dataDir;
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) {
    throw new Error(
      `The 'postgres' user cannot reach the existing cluster in ${dataDir}: a folder above it is private. ` +
        `Move it to a folder every user can enter, or set DATABASE_URL.`,
    );
  }
  if (link) await rmdir(dataDir); // fails, as it should, on a non-empty folder that is not a cluster

  await mkdir(dataHome, { recursive: true, mode: 0o755 });
  if (!reachableBy(path.join(dataHome, 'x'), user) || !trustworthy(dataHome)) {
    throw new Error(
      `${dataHome} must be a root-owned folder the 'postgres' user can enter, to hold Postgres data.`,
    );
  }
  const target = path.join(
    dataHome,
    `${path.basename(path.dirname(dataDir)).replace(/^\.+/, '')}-${randomBytes(6).toString('hex')}`,
  );
  await symlink(target, dataDir);
  log(
    `the 'postgres' user cannot reach ${dataDir}: keeping the cluster in ${target} (${dataDir} links to it)`,
  );
  return target;
}

function statOrNull(stat: StatFn, p: string): ReturnType<StatFn> | null {
  try {
    return stat(p);
  } catch {
    return null;
  }
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}
