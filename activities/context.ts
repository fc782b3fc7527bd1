/** What every activity needs, built once per worker process and passed in explicitly. */
import type { ArtifactStores } from '../core/artifacts';
import type { Db } from '../core/db/connection';
import type { LlmGateway } from '../core/llm/gateway';

export interface ActivityDeps {
  db: Db;
  llm: LlmGateway;
  /**
   * This worker's own artifacts folder: the default artifact store (file://) when neither the spec
   * nor METEOR_ARTIFACTS_URI names one, and the scratch space for files on their way to an object store.
   */
  artifactsDir: string;
  /** The artifact stores (default: built from artifactsDir and env). */
  artifacts?: ArtifactStores;
  env: NodeJS.ProcessEnv;
  /** This worker's host, naming its own queue for work only it can do (a `local` fine-tune's process). */
  hostId: string;
  /** Test hook: awaited at named points of a fine-tune submit; throwing there simulates a crash. */
  crashPoint?: (point: FineTuneCrashPoint) => void | Promise<void>;
}

/**
 * Where a fine-tune submit can be crashed in tests: after the row is claimed (nothing submitted),
 * before the external id is recorded (the backend holds the job, submitted or adopted just now),
 * after it is recorded.
 */
export type FineTuneCrashPoint = 'after-claim' | 'before-record' | 'after-record';
