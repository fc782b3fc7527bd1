/** What every activity needs, built once per worker process and passed in explicitly. */
import type { Db } from '../core/db/connection';
import type { LlmGateway } from '../core/llm/gateway';

export interface ActivityDeps {
  db: Db;
  llm: LlmGateway;
  /** Root of the artifact store (datasets, fine-tune outputs). Shared storage when workers are many. */
  artifactsDir: string;
  env: NodeJS.ProcessEnv;
}
