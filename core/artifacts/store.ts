/**
 * Where datasets, adapters and reports live: an artifact store addressed by URI, the same for
 * every worker, so that no worker-local path is ever recorded as an artifact's home.
 */
import type { Readable } from 'node:stream';

export type ArtifactBody = Uint8Array | string | Readable;

export interface ArtifactStore {
  /** The store's own URI (`file:///dir` or `s3://bucket/prefix`). */
  readonly rootUri: string;
  /** The URI of a key in this store. */
  uri(key: string): string;
  /**
   * Where a key lives on this machine, for a store on a (shared) filesystem: writers may write
   * there directly. null for object stores: write elsewhere, then put.
   */
  localPath(key: string): string | null;
  /** Stores bytes under a key; returns its URI. */
  put(key: string, body: ArtifactBody): Promise<string>;
  /** Stores a local file under a key; returns its URI. */
  putFile(key: string, file: string): Promise<string>;
  /** Stores every file under a local folder below `key/`; returns the folder's URI. */
  putDir(key: string, dir: string): Promise<string>;
  /** The bytes of an artifact, by URI (of this store's kind). */
  get(uri: string): Promise<Buffer>;
  /** Copies an artifact folder (by URI) into a local folder; returns the number of files. */
  getDir(uri: string, dir: string): Promise<number>;
  /** Whether an artifact (a file, or a folder with at least one file) exists at the URI. */
  exists(uri: string): Promise<boolean>;
}
