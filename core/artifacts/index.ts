/**
 * The artifact stores a worker uses: which store a campaign's artifacts go to (the spec's
 * `artifacts.uri`, else METEOR_ARTIFACTS_URI, else file:// under the worker's artifacts folder),
 * and a store for any artifact URI met in the database (a parent checkpoint, a line champion).
 */
import { writeFile } from 'node:fs/promises';
import { UserError, fileProblem } from '../errors';
import { FileArtifactStore } from './file-store';
import { S3ArtifactStore, s3OptionsFromEnv } from './s3-store';
import type { ArtifactStore } from './store';
import { fileUri, parseArtifactUri } from './uri';

export type { ArtifactStore, ArtifactBody } from './store';
export { FileArtifactStore } from './file-store';
export { ArtifactUriError, ARTIFACTS_URI_PATTERN, fileUri, parseArtifactUri } from './uri';

export interface ArtifactStores {
  /** The store of a campaign's artifacts. */
  forCampaign(spec: { artifacts?: { uri: string } | undefined }): Promise<ArtifactStore>;
  /** A store that can read the artifact at `uri` (rooted at it). */
  forUri(uri: string): Promise<ArtifactStore>;
}

/** The store URI in effect: the spec's, else METEOR_ARTIFACTS_URI, else the worker's own folder. */
export function artifactsUriOf(
  spec: { artifacts?: { uri: string } | undefined },
  env: NodeJS.ProcessEnv,
  artifactsDir: string,
): string {
  return spec.artifacts?.uri ?? (env.METEOR_ARTIFACTS_URI || fileUri(artifactsDir));
}

/** Opens the store at a URI; S3 settings (endpoint, region, credentials) come from `env`. */
export async function openArtifactStore(
  uri: string,
  env: NodeJS.ProcessEnv,
  field = 'artifacts.uri',
): Promise<ArtifactStore> {
  const location = parseArtifactUri(uri, field);
  if (location.kind === 'file') return new FileArtifactStore(location.dir);
  return new S3ArtifactStore({ bucket: location.bucket, prefix: location.prefix, ...s3OptionsFromEnv(env) });
}

/** One worker's stores, opened once per URI and kept for the worker's life. */
export function createArtifactStores(deps: { artifactsDir: string; env: NodeJS.ProcessEnv }): ArtifactStores {
  const open = new Map<string, Promise<ArtifactStore>>();
  const cached = (uri: string, field: string): Promise<ArtifactStore> => {
    let store = open.get(uri);
    if (!store) {
      store = openArtifactStore(uri, deps.env, field);
      open.set(uri, store);
      // A failed open (a bad URI) is not kept: the next call tries again and says why again.
      store.catch(() => open.delete(uri));
    }
    return store;
  };
  return {
    forCampaign: (spec) => {
      const uri = artifactsUriOf(spec, deps.env, deps.artifactsDir);
      return cached(uri, spec.artifacts ? 'artifacts.uri' : 'METEOR_ARTIFACTS_URI');
    },
    forUri: (uri) => {
      const location = parseArtifactUri(uri, 'artifact uri');
      // Keyed by bucket: the S3 client is the same for every object in it.
      return cached(location.kind === 's3' ? `s3://${location.bucket}` : uri, 'artifact uri');
    },
  };
}

/**
 * Writes a report (or any file a command produces) to a local path or to an artifact URI:
 * `s3://bucket/key` or `file:///path`. Returns where it went, for the message.
 */
export async function writeToPathOrUri(
  target: string,
  body: string | Uint8Array,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  if (target.startsWith('s3://')) {
    const location = parseArtifactUri(target, 'output');
    if (location.kind !== 's3' || location.prefix === '') {
      throw new UserError(`${target}: name the object, e.g. s3://bucket/reports/campaign.html`);
    }
    const store = await openArtifactStore(`s3://${location.bucket}`, env, 'output');
    return await store.put(location.prefix, body);
  }
  const file = target.startsWith('file://')
    ? (parseArtifactUri(target, 'output') as { dir: string }).dir
    : target;
  await writeFile(file, body).catch((err: unknown) => {
    throw new UserError(`Cannot write ${file}: ${fileProblem(err)}`);
  });
  return target;
}
