/**
 * Errors a user can act on. The CLI prints their message alone (no stack) and exits non-zero;
 * activities turn them into non-retryable Temporal failures, since retrying cannot fix them.
 */
export class UserError extends Error {
  override name = 'UserError';
  constructor(
    message: string,
    /** Each problem on its own line when there are several (spec fields, file lines). */
    readonly problems: string[] = [],
  ) {
    super(problems.length > 0 ? `${message}\n${problems.map((p) => `  - ${p}`).join('\n')}` : message);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Why a file could not be read, in words ("no such file", not "ENOENT"). */
export function fileProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a folder, not a file';
    default:
      return code ?? errorMessage(err);
  }
}
