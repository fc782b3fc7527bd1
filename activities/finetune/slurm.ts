/**
 * The `slurm` backend: each fine-tune is a Slurm batch job named after its key, submitted with
 * sbatch (cli transport, locally or over ssh) or slurmrestd (rest transport). The job writes its
 * output to `<job dir>/train.log` on the shared folder, which this worker reads for log lines.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SlurmFineTuneSpec } from '../../core/finetune-spec';
import type { BackendJobState, FineTuneBackend, FineTuneJobSpec, SubmitResult } from './backend';
import { LIVE_STATES, SlurmCli } from './slurm-cli';
import { restSbatchArgs, SlurmRest, type Fetch } from './slurm-rest';
import { slurmScript } from './slurm-script';
import { mapState, type SlurmJobInfo } from './slurm-state';
import { defaultExec, type Exec, type SlurmTransport } from './slurm-transport';

export { slurmScript } from './slurm-script';

export interface SlurmBackendDeps {
  exec?: Exec;
  fetch?: Fetch;
}

/** Log lines put in a failed job's error. */
const ERROR_LOG_LINES = 10;

export class SlurmBackend implements FineTuneBackend {
  readonly name = 'slurm';
  private readonly transport: SlurmTransport;

  constructor(
    private readonly spec: SlurmFineTuneSpec,
    private readonly env: NodeJS.ProcessEnv,
    deps: SlurmBackendDeps = {},
  ) {
    const exec = deps.exec ?? defaultExec;
    this.transport =
      spec.transport === 'rest'
        ? new SlurmRest(spec, env, exec, deps.fetch ?? globalThis.fetch)
        : new SlurmCli(spec, env, exec);
  }

  async preflight(): Promise<string[]> {
    const problems = await this.sharedDirProblems();
    if (this.spec.transport === 'rest') {
      const { unsupported } = restSbatchArgs(this.spec.sbatchArgs);
      if (unsupported.length > 0) {
        problems.push(
          `fineTune.sbatchArgs: slurmrestd does not read #SBATCH lines, and ${unsupported.join(' ')} has no REST ` +
            'field here (supported: --constraint, --reservation, --exclude, --comment); use the cli transport',
        );
      }
    }
    const unreachable = await this.transport.reachable();
    if (unreachable.length > 0) return [...problems, ...unreachable];
    if (this.spec.partition) {
      try {
        const partitions = await this.transport.partitions();
        if (!partitions.includes(this.spec.partition)) {
          problems.push(
            `fineTune.partition: partition "${this.spec.partition}" does not exist (partitions: ${partitions.join(', ') || 'none'})`,
          );
        }
      } catch (err) {
        problems.push(`fineTune.partition: could not list the partitions: ${(err as Error).message}`);
      }
    }
    return problems;
  }

  /** The folder must take files from here (the cluster's side is the job's own business). */
  private async sharedDirProblems(): Promise<string[]> {
    const probe = path.join(this.spec.sharedDir, `.meteor-preflight-${process.pid}-${Date.now()}`);
    try {
      await writeFile(probe, 'ok');
      await rm(probe, { force: true });
      return [];
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      return [`fineTune.sharedDir: ${this.spec.sharedDir} is not writable from this worker (${code})`];
    }
  }

  async lookup(job: FineTuneJobSpec): Promise<{ externalId: string } | null> {
    const jobs = await this.transport.findByName(job.name);
    if (jobs.length === 0) return null;
    // Names are not unique on Slurm. A live job is the one to follow; among several (which the
    // claimed job row should prevent), the lowest id — the first submitted — is taken.
    const byId = (a: { id: string }, b: { id: string }) => Number(a.id) - Number(b.id);
    const live = jobs.filter((j) => LIVE_STATES.has(j.state)).sort(byId);
    const chosen = live[0] ?? [...jobs].sort(byId)[0];
    return chosen ? { externalId: chosen.id } : null;
  }

  async submit(job: FineTuneJobSpec): Promise<SubmitResult> {
    const script = slurmScript(this.spec, job);
    await mkdir(job.dir.worker, { recursive: true });
    await writeFile(path.join(job.dir.worker, 'job.sbatch'), script);
    const externalId = await this.transport.submit(script, job, this.secrets());
    return { externalId, submitted: script };
  }

  /** passEnv values from the worker's environment: to the job, never into the script. */
  private secrets(): Record<string, string> {
    return Object.fromEntries(
      this.spec.passEnv.flatMap((k) => (this.env[k] !== undefined ? [[k, this.env[k] as string]] : [])),
    );
  }

  async poll(externalId: string, job: FineTuneJobSpec, logLinesSeen: number): Promise<BackendJobState> {
    const info = await this.transport.jobInfo(externalId);
    const lines = await readLogLines(path.join(job.dir.worker, 'train.log'));
    const logLines = lines.slice(logLinesSeen);
    if (info === null) {
      return {
        status: 'failed',
        detail: null,
        error: `Slurm no longer knows job ${externalId} (purged from the controller, and no accounting record)`,
        exitCode: null,
        logLines,
      };
    }
    const { status, detail } = mapState(info);
    return { status, detail, error: errorOf(status, info, lines), exitCode: info.exitCode, logLines };
  }

  async cancel(externalId: string, _job?: FineTuneJobSpec): Promise<void> {
    await this.transport.cancel(externalId);
  }
}

function errorOf(status: BackendJobState['status'], info: SlurmJobInfo, lines: string[]): string | null {
  if (status !== 'failed' && status !== 'cancelled') return null;
  const parts = [`Slurm job ${info.state}`];
  if (info.exitCode !== null) parts.push(`exit code ${info.exitCode}`);
  if (info.signal) parts.push(`signal ${info.signal}`);
  if (info.reason) parts.push(`reason ${info.reason}`);
  const tail = lines.slice(-ERROR_LOG_LINES);
  return `${parts.join(', ')}${tail.length > 0 ? `; last log lines:\n${tail.join('\n')}` : '; no log output'}`;
}

/** The log's non-empty lines (as the local backend counts them), [] before the job writes any. */
async function readLogLines(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter((l) => l.length > 0);
  } catch {
    return [];
  }
}
