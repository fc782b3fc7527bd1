/** The backend a campaign's spec names, built from the spec and this process's environment. */
import path from 'node:path';
import type { FineTuneSpec } from '../../core/finetune-spec';
import type { FineTuneBackend } from './backend';
import { LocalBackend } from './local';
import { SlurmBackend } from './slurm';

export async function createBackend(
  spec: FineTuneSpec,
  opts: { env: NodeJS.ProcessEnv; specDir: string },
): Promise<FineTuneBackend> {
  switch (spec.type) {
    case 'local':
      return new LocalBackend(
        {
          command: spec.command,
          cwd: path.resolve(opts.specDir, spec.cwd ?? '.'),
          env: spec.env,
          passEnv: spec.passEnv,
        },
        opts.env,
      );
    case 'slurm':
      return new SlurmBackend(spec, opts.env);
    case 'kubernetes': {
      // The Kubernetes client takes half a second to load: only campaigns that use it pay.
      const { KubernetesBackend } = await import('./kubernetes');
      return new KubernetesBackend(spec, { env: opts.env, specDir: opts.specDir });
    }
  }
}

/**
 * A job's folder for a backend: under `localRoot` for `local` jobs (the filesystem artifact
 * store, or the worker's scratch folder when the store is an object store), else under the
 * shared directory the cluster mounts.
 */
export function jobDirs(
  spec: FineTuneSpec,
  localRoot: string,
  campaignId: string,
  stage: string,
  iteration: number,
): { worker: string; job: string } {
  const rel = path.join(campaignId, 'finetune', `${stage}-${iteration}`);
  if (spec.type === 'local') {
    const dir = path.join(localRoot, rel);
    return { worker: dir, job: dir };
  }
  return { worker: path.join(spec.sharedDir, rel), job: path.join(spec.jobSharedDir ?? spec.sharedDir, rel) };
}

/** The queue a job's submit, poll and cancel run on: a host's own queue for `local` jobs. */
export function hostQueue(queue: string, hostId: string): string {
  return `${queue}@${hostId}`;
}
