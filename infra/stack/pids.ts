import { readFileSync } from 'node:fs';

/**
 * True when a process with this pid exists (EPERM means it exists but belongs to someone else)
 * and is not a zombie: a server we did not spawn (e.g. after `pg_ctl restart`) is reaped by
 * init, which in a container may never do it, and a zombie holds no port or data.
 */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  try {
    // The state follows the command name in parentheses, which may itself contain ') '.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false; // not Linux, or just gone: kill(0) already said it existed
  }
}

/**
 * The command line of a live process, or null (not Linux, or gone). Used to tell a pid that was
 * recycled by an unrelated process from the one that wrote a pid file.
 */
export function processCommandLine(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return null;
  }
}

/** Polls until the pid is gone or the timeout passes; resolves whether it is gone. */
export async function waitForProcessExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}
