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
