/** The artifact store on a filesystem: a local folder, or a shared one every machine mounts alike. */
import { createWriteStream } from 'node:fs';
import { cp, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactBody, ArtifactStore } from './store';
import { ArtifactUriError, checkKey, fileUri, parseArtifactUri } from './uri';

export class FileArtifactStore implements ArtifactStore {
  readonly rootUri: string;
  constructor(readonly dir: string) {
    if (!path.isAbsolute(dir)) throw new ArtifactUriError(`artifact store folder '${dir}' must be absolute`);
    this.rootUri = fileUri(dir);
  }

  uri(key: string): string {
    return fileUri(this.pathOf(key));
  }

  localPath(key: string): string {
    return key === '' ? this.dir : this.pathOf(key);
  }

  async put(key: string, body: ArtifactBody): Promise<string> {
    const file = this.pathOf(key);
    await mkdir(path.dirname(file), { recursive: true });
    // Written aside, then renamed: a reader never sees half a file.
    const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
    if (body instanceof Readable) await pipeline(body, createWriteStream(tmp));
    else await writeFile(tmp, body);
    await rename(tmp, file);
    return fileUri(file);
  }

  async putFile(key: string, file: string): Promise<string> {
    const target = this.pathOf(key);
    if (path.resolve(file) === target) return fileUri(target);
    await mkdir(path.dirname(target), { recursive: true });
    await cp(file, target);
    return fileUri(target);
  }

  async putDir(key: string, dir: string): Promise<string> {
    const target = this.pathOf(key);
    if (path.resolve(dir) !== target) {
      await mkdir(target, { recursive: true });
      await cp(dir, target, { recursive: true });
    }
    return fileUri(target);
  }

  async get(uri: string): Promise<Buffer> {
    return await readFile(filePath(uri));
  }

  async getDir(uri: string, dir: string): Promise<number> {
    const source = filePath(uri);
    if (path.resolve(dir) === source) return await countFiles(source);
    await mkdir(dir, { recursive: true });
    await cp(source, dir, { recursive: true });
    return await countFiles(dir);
  }

  async exists(uri: string): Promise<boolean> {
    try {
      await stat(filePath(uri));
      return true;
    } catch {
      return false;
    }
  }

  private pathOf(key: string): string {
    return path.join(this.dir, ...checkKey(key).split('/'));
  }
}

function filePath(uri: string): string {
  const location = parseArtifactUri(uri, 'artifact uri');
  if (location.kind !== 'file') throw new ArtifactUriError(`'${uri}' is not a file:// artifact`);
  return location.dir;
}

async function countFiles(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).length;
}
