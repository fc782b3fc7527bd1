/** Writing JSONL files atomically, with their sha256, row count and size. */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';

export interface WrittenFile {
  path: string;
  sha256: string;
  rows: number;
  bytes: number;
}

export async function writeJsonl(
  file: string,
  rows: AsyncIterable<unknown> | Iterable<unknown>,
): Promise<WrittenFile> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const out = createWriteStream(tmp);
  const hash = createHash('sha256');
  let count = 0;
  let bytes = 0;
  for await (const row of rows) {
    const line = `${JSON.stringify(row)}\n`;
    hash.update(line);
    bytes += Buffer.byteLength(line);
    count++;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  await rename(tmp, file);
  return { path: file, sha256: hash.digest('hex'), rows: count, bytes };
}
