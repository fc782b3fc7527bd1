/**
 * The real single-node Slurm for the Slurm tests: `infra/slurm/dev-cluster.sh up` (idempotent)
 * and its exports. Missing Debian packages fail the tests with what to install; they never skip.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { FineTuneSchema, type SlurmFineTuneSpec } from '../../core/finetune-spec';
import type { FineTuneJobSpec } from '../../activities/finetune/backend';

export interface DevSlurm {
  conf: string;
  restUrl: string;
  jwt: string;
  restUser: string;
  sharedDir: string;
  /** process.env plus the exports: what a worker next to this cluster would have. */
  env: NodeJS.ProcessEnv;
}

const SCRIPT = path.resolve(__dirname, '../../infra/slurm/dev-cluster.sh');
const PACKAGES = 'slurm-wlm slurm-client slurmrestd slurmdbd slurm-wlm-jwt-plugin munge mariadb-server';

export function startDevSlurm(): DevSlurm {
  const missing = ['slurmctld', 'slurmd', 'slurmrestd', 'slurmdbd', 'munged', 'sbatch', 'mariadbd'].filter(
    (bin) => {
      try {
        execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
        return false;
      } catch {
        return true;
      }
    },
  );
  if (missing.length > 0) {
    throw new Error(
      `The Slurm tests need Debian's Slurm packages (missing ${missing.join(', ')}): apt-get install -y ${PACKAGES}`,
    );
  }
  let out: string;
  try {
    out = execFileSync('bash', [SCRIPT, 'up'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`infra/slurm/dev-cluster.sh up failed: ${e.stderr ?? e.message}`);
  }
  const exports: Record<string, string> = {};
  for (const m of out.matchAll(/^export ([A-Z_]+)=(.*)$/gm)) exports[m[1] as string] = m[2] as string;
  const need = (k: string) => {
    const v = exports[k];
    if (!v) throw new Error(`dev-cluster.sh up printed no ${k}`);
    return v;
  };
  return {
    conf: need('SLURM_CONF'),
    restUrl: need('SLURM_REST_URL'),
    jwt: need('SLURM_JWT'),
    restUser: need('SLURM_REST_USER'),
    sharedDir: need('METEOR_SLURM_SHARED_DIR'),
    env: { ...process.env, ...exports },
  };
}

export function slurmSpec(cluster: DevSlurm, fields: Record<string, unknown> = {}): SlurmFineTuneSpec {
  return FineTuneSchema.parse({
    type: 'slurm',
    command: 'echo hello; sleep 1',
    sharedDir: cluster.sharedDir,
    partition: 'debug',
    gpusPerNode: 0,
    timeLimit: '5',
    ...fields,
  }) as SlurmFineTuneSpec;
}

export function restFields(cluster: DevSlurm, rest: Record<string, unknown> = {}): Record<string, unknown> {
  return { transport: 'rest', rest: { url: cluster.restUrl, userName: cluster.restUser, ...rest } };
}

/** A fresh job (unique name) with its folder on the shared dir. */
export function slurmJob(cluster: DevSlurm, label: string): FineTuneJobSpec {
  const suffix = randomBytes(4).toString('hex');
  const name = `meteor-test-${label}-${suffix}`;
  const dir = path.join(cluster.sharedDir, name);
  mkdirSync(dir, { recursive: true });
  // Jobs may run as another user than this test (REST's user).
  chmodSync(dir, 0o777);
  return {
    key: `test-${suffix}:distill:1`,
    name,
    campaignId: `test-${suffix}`,
    stage: 'distill',
    iteration: 1,
    kind: 'sft',
    loss: null,
    dir: { worker: dir, job: dir },
    env: { METEOR_JOB_KEY: `test-${suffix}:distill:1`, METEOR_JOB_DIR: dir },
  };
}

export { waitFor } from './harness';

/** Runs a Slurm command against the dev cluster (for test set-up: requeue, release). */
export function slurmCommand(cluster: DevSlurm, cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { env: cluster.env, encoding: 'utf8' });
}
