import { readFileSync, rmSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { isProcessAlive } from './pids';

/**
 * `<root>/stack.json`: how a CLI in another terminal finds the stack `meteorctl dev` runs.
 * Only trusted while the process that wrote it is alive (a killed run leaves it behind).
 */
export const StackFileSchema = z.object({
  pid: z.number().int().positive(),
  databaseUrl: z.string(),
  temporalAddress: z.string(),
  namespace: z.string(),
  uiUrl: z.string().nullable(),
  startedAt: z.string(),
});

export type StackFile = z.infer<typeof StackFileSchema>;

export function stackFilePath(root: string): string {
  return path.join(root, 'stack.json');
}

/** The running stack's coordinates, or null when there is none (or its process died). */
export async function readStackFile(root: string): Promise<StackFile | null> {
  let text: string;
  try {
    text = await readFile(stackFilePath(root), 'utf8');
  } catch {
    return null;
  }
  let parsed: StackFile;
  try {
    parsed = StackFileSchema.parse(JSON.parse(text));
  } catch {
    return null;
  }
  return isProcessAlive(parsed.pid) ? parsed : null;
}

/** Written via a temp file and rename, so a reader never sees half a document. */
export async function writeStackFile(root: string, content: StackFile): Promise<void> {
  const file = stackFilePath(root);
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(content, null, 2)}\n`);
  await rename(temp, file);
}

/**
 * Removes the file only if process `pid` wrote it (another stack may have replaced it).
 * Synchronous so it also works from an `exit` handler.
 */
export function removeStackFile(root: string, pid: number): void {
  try {
    const current = StackFileSchema.parse(JSON.parse(readFileSync(stackFilePath(root), 'utf8')));
    if (current.pid !== pid) return;
  } catch {
    // Missing or unreadable: removing it is still right.
  }
  rmSync(stackFilePath(root), { force: true });
}
