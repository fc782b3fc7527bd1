/**
 * The Slurm batch script for one fine-tune, generated from the spec (pure functions). The cli
 * transport submits it as it is; slurmrestd ignores `#SBATCH` lines, so the rest transport also
 * sends the same options as fields of the job description (slurm-rest.ts, from `slurmOptions`).
 * Secrets (passEnv) never appear here: the script is stored with the job row.
 */
import type { SlurmFineTuneSpec } from '../../core/finetune-spec';
import type { FineTuneJobSpec } from './backend';

export const shellQuote = (s: string): string =>
  /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;

/** The options of a job, shared by the script and the REST job description. */
export interface SlurmOptions {
  name: string;
  output: string;
  chdir: string;
  partition?: string;
  account?: string;
  qos?: string;
  nodes: number;
  gpusPerNode: number;
  cpusPerTask?: number;
  /** Memory per node in megabytes. */
  memoryMb?: number;
  memory?: string;
  timeLimit: string;
  timeLimitMinutes: number;
}

export function slurmOptions(spec: SlurmFineTuneSpec, job: FineTuneJobSpec): SlurmOptions {
  return {
    name: job.name,
    output: `${job.dir.job}/train.log`,
    chdir: job.dir.job,
    partition: spec.partition,
    account: spec.account,
    qos: spec.qos,
    nodes: spec.nodes,
    gpusPerNode: spec.gpusPerNode,
    cpusPerTask: spec.cpusPerTask,
    memory: spec.memory,
    memoryMb: spec.memory === undefined ? undefined : memoryMegabytes(spec.memory),
    timeLimit: spec.timeLimit,
    timeLimitMinutes: timeLimitMinutes(spec.timeLimit),
  };
}

/** `#SBATCH` values are split on blanks by sbatch: quote the rare value that has one. */
const sbatchValue = (v: string) => (/\s/.test(v) ? `"${v.replace(/"/g, '\\"')}"` : v);

export function slurmScript(spec: SlurmFineTuneSpec, job: FineTuneJobSpec): string {
  const o = slurmOptions(spec, job);
  const directives: string[] = [
    `--job-name=${o.name}`,
    `--output=${sbatchValue(o.output)}`,
    // A requeued (preempted) job starts again and appends: the earlier attempt's log stays.
    '--open-mode=append',
    `--chdir=${sbatchValue(o.chdir)}`,
    ...(o.partition ? [`--partition=${o.partition}`] : []),
    ...(o.account ? [`--account=${o.account}`] : []),
    ...(o.qos ? [`--qos=${o.qos}`] : []),
    `--nodes=${o.nodes}`,
    ...(o.gpusPerNode > 0 ? [`--gres=gpu:${o.gpusPerNode}`] : []),
    ...(o.cpusPerTask ? [`--cpus-per-task=${o.cpusPerTask}`] : []),
    ...(o.memory ? [`--mem=${o.memory}`] : []),
    `--time=${o.timeLimit}`,
    '--requeue',
    ...spec.sbatchArgs,
  ];
  const exports = (env: Record<string, string>) =>
    Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`);
  const sharedRoot = spec.jobSharedDir ?? spec.sharedDir;
  const command = spec.container
    ? // pyxis: the shared folder is mounted at the same path, so the METEOR_* paths hold inside.
      `srun --container-image=${shellQuote(spec.container)} --container-mounts=${shellQuote(`${sharedRoot}:${sharedRoot}`)} ` +
      `--container-workdir=${shellQuote(job.dir.job)} bash -c ${shellQuote(spec.command)}`
    : spec.command;
  return [
    '#!/bin/bash',
    ...directives.map((d) => `#SBATCH ${d}`),
    '',
    'set -euo pipefail',
    // One line per attempt, so a requeued job's log shows where each attempt starts.
    'echo "[meteor] Slurm job ${SLURM_JOB_ID:-?} on $(hostname), attempt $(( ${SLURM_RESTART_COUNT:-0} + 1 ))"',
    // spec.env first: the platform's METEOR_* contract wins over a same-named user variable.
    ...exports(spec.env),
    ...exports(job.env),
    ...spec.setup,
    command,
    '',
  ].join('\n');
}

/** Slurm's --time forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S — in whole minutes, rounded up. */
export function timeLimitMinutes(time: string): number {
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(time);
  if (!m) throw new Error(`not a Slurm time limit: ${time}`);
  const [, days, a, b, c] = m;
  const n = (s: string | undefined) => (s === undefined ? 0 : Number(s));
  let seconds: number;
  if (days !== undefined) {
    // With days the first field is hours.
    seconds = n(days) * 86400 + n(a) * 3600 + n(b) * 60 + n(c);
  } else if (c !== undefined) {
    seconds = n(a) * 3600 + n(b) * 60 + n(c);
  } else {
    seconds = n(a) * 60 + n(b);
  }
  return Math.ceil(seconds / 60);
}

/** `64G` → 65536; no suffix means megabytes, as for --mem. */
export function memoryMegabytes(memory: string): number {
  const m = /^(\d+)([KMGT]?)$/.exec(memory);
  if (!m) throw new Error(`not a Slurm memory size: ${memory}`);
  const factor: Record<string, number> = { K: 1 / 1024, M: 1, '': 1, G: 1024, T: 1024 * 1024 };
  return Math.ceil(Number(m[1]) * (factor[m[2] ?? ''] ?? 1));
}
