import path from 'node:path';

/** The repository root, found from this file so it holds wherever the process was started. */
export const REPO_ROOT = path.resolve(__dirname, '../..');
