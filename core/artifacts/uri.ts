/**
 * Artifact store URIs: `file:///shared/dir` (a filesystem every machine mounts at the same path)
 * or `s3://bucket/prefix` (any S3-compatible store). Keys inside a store are relative,
 * slash-separated paths such as `<campaign>/distill-0/sft.openai.jsonl`.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UserError } from '../errors';

export type ArtifactLocation = { kind: 'file'; dir: string } | { kind: 's3'; bucket: string; prefix: string };

/** What `artifacts.uri` (spec) and METEOR_ARTIFACTS_URI accept. */
export const ARTIFACTS_URI_PATTERN = /^(file:\/\/\/.*|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?)$/;

/** A URI or key that cannot work: a UserError, so activities fail at once instead of retrying. */
export class ArtifactUriError extends UserError {}

/** Parses a store or artifact URI; `field` names where it came from, for the error. */
export function parseArtifactUri(uri: string, field = 'artifacts.uri'): ArtifactLocation {
  if (uri.startsWith('file://')) {
    if (!uri.startsWith('file:///')) {
      throw new ArtifactUriError(
        `${field}: '${uri}' must be an absolute file URI such as file:///shared/meteor`,
      );
    }
    return { kind: 'file', dir: path.resolve(fileURLToPath(uri)) };
  }
  const s3 = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(uri);
  if (s3) {
    const bucket = s3[1] ?? '';
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new ArtifactUriError(`${field}: '${bucket}' in '${uri}' is not a valid S3 bucket name`);
    }
    return { kind: 's3', bucket, prefix: (s3[2] ?? '').replace(/^\/+|\/+$/g, '') };
  }
  throw new ArtifactUriError(`${field}: '${uri}' is neither file:///<dir> nor s3://<bucket>/<prefix>`);
}

/** A store-relative key, checked: no absolute paths, no `..`, no empty parts. */
export function checkKey(key: string): string {
  const parts = key.split('/');
  if (key === '' || key.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new ArtifactUriError(
      `artifact key '${key}' must be a relative path without '.', '..' or empty parts`,
    );
  }
  return key;
}

/** Joins a prefix and a key with one slash (either may be empty). */
export function joinKey(prefix: string, key: string): string {
  return [prefix, key].filter((p) => p !== '').join('/');
}

export function fileUri(absolutePath: string): string {
  return pathToFileURL(absolutePath).href;
}
