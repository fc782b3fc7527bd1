/** The Slurm backend's pure parts: the job script, REST bodies per API version, state mapping. */
import { describe, expect, it } from 'vitest';
import { FineTuneSchema, type SlurmFineTuneSpec } from '../../core/finetune-spec';
import type { FineTuneJobSpec } from '../../activities/finetune/backend';
import { parseFields } from '../../activities/finetune/slurm-cli';
import {
  looksUnauthorized,
  restSbatchArgs,
  SlurmRest,
  tokenExpired,
} from '../../activities/finetune/slurm-rest';
import { memoryMegabytes, slurmScript, timeLimitMinutes } from '../../activities/finetune/slurm-script';
import {
  mapState,
  parseRestExitCode,
  splitState,
  type SlurmJobInfo,
} from '../../activities/finetune/slurm-state';

const job: FineTuneJobSpec = {
  key: 'c1:distill:2',
  name: 'meteor-c1-distill-2',
  campaignId: 'c1',
  stage: 'distill',
  iteration: 2,
  kind: 'sft',
  loss: null,
  dir: { worker: '/mnt/shared/jobs/c1-distill-2', job: '/shared/jobs/c1-distill-2' },
  env: { METEOR_JOB_KEY: 'c1:distill:2', METEOR_BASE_MODEL: "it's a model" },
};

const fullSpec = (fields: Record<string, unknown> = {}) =>
  FineTuneSchema.parse({
    type: 'slurm',
    command: '/opt/meteor/infra/trainer/run',
    sharedDir: '/mnt/shared',
    jobSharedDir: '/shared',
    partition: 'gpu',
    account: 'ml',
    qos: 'high',
    nodes: 1,
    gpusPerNode: 4,
    cpusPerTask: 16,
    memory: '64G',
    timeLimit: '2-00:00:00',
    sbatchArgs: ['--constraint=a100', '--exclusive'],
    setup: ['module load cuda/12.4', 'source /opt/venv/bin/activate'],
    container: 'nvcr.io#nvidia/pytorch:24.05-py3',
    env: { HF_HOME: '/shared/hf' },
    passEnv: ['HF_TOKEN'],
    ...fields,
  }) as SlurmFineTuneSpec;

describe('slurmScript', () => {
  it('writes every option of a full spec, the environment, setup and the container command', () => {
    expect(slurmScript(fullSpec(), job)).toBe(
      [
        '#!/bin/bash',
        '#SBATCH --job-name=meteor-c1-distill-2',
        '#SBATCH --output=/shared/jobs/c1-distill-2/train.log',
        '#SBATCH --open-mode=append',
        '#SBATCH --chdir=/shared/jobs/c1-distill-2',
        '#SBATCH --partition=gpu',
        '#SBATCH --account=ml',
        '#SBATCH --qos=high',
        '#SBATCH --nodes=1',
        '#SBATCH --gres=gpu:4',
        '#SBATCH --cpus-per-task=16',
        '#SBATCH --mem=64G',
        '#SBATCH --time=2-00:00:00',
        '#SBATCH --requeue',
        '#SBATCH --constraint=a100',
        '#SBATCH --exclusive',
        '',
        'set -euo pipefail',
        'echo "[meteor] Slurm job ${SLURM_JOB_ID:-?} on $(hostname), attempt $(( ${SLURM_RESTART_COUNT:-0} + 1 ))"',
        'export HF_HOME=/shared/hf',
        'export METEOR_JOB_KEY=c1:distill:2',
        `export METEOR_BASE_MODEL='it'\\''s a model'`,
        'module load cuda/12.4',
        'source /opt/venv/bin/activate',
        "srun --container-image='nvcr.io#nvidia/pytorch:24.05-py3' --container-mounts=/shared:/shared " +
          '--container-workdir=/shared/jobs/c1-distill-2 bash -c /opt/meteor/infra/trainer/run',
        '',
      ].join('\n'),
    );
  });

  it('leaves out what the spec does not set, and never writes passEnv values', () => {
    const script = slurmScript(
      fullSpec({
        partition: undefined,
        account: undefined,
        qos: undefined,
        gpusPerNode: 0,
        container: undefined,
      }),
      job,
    );
    expect(script).not.toMatch(/--partition|--account|--qos|--gres/);
    expect(script).not.toContain('HF_TOKEN');
    expect(script.trimEnd().split('\n').pop()).toBe('/opt/meteor/infra/trainer/run');
  });
});

describe('Slurm values', () => {
  it('turns time limits into minutes and memory into megabytes', () => {
    expect(timeLimitMinutes('30')).toBe(30);
    expect(timeLimitMinutes('30:30')).toBe(31);
    expect(timeLimitMinutes('04:00:00')).toBe(240);
    expect(timeLimitMinutes('2-00:00:00')).toBe(2880);
    expect(timeLimitMinutes('1-2')).toBe(1560);
    expect(timeLimitMinutes('1-2:30')).toBe(1590);
    expect(memoryMegabytes('64G')).toBe(65536);
    expect(memoryMegabytes('512')).toBe(512);
    expect(memoryMegabytes('2048K')).toBe(2);
  });

  it('maps every Slurm state', () => {
    const info = (state: string, extra: Partial<SlurmJobInfo> = {}): SlurmJobInfo => ({
      state,
      flags: [],
      reason: null,
      exitCode: null,
      signal: null,
      restarts: 0,
      fromAccounting: false,
      ...extra,
    });
    const status = (s: string, extra: Partial<SlurmJobInfo> = {}) => mapState(info(s, extra)).status;
    for (const s of ['PENDING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED'])
      expect(status(s)).toBe('submitted');
    for (const s of ['RUNNING', 'COMPLETING', 'SUSPENDED', 'PREEMPTED', 'RESIZING'])
      expect(status(s)).toBe('running');
    expect(status('COMPLETED')).toBe('succeeded');
    for (const s of ['FAILED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE'])
      expect(status(s)).toBe('failed');
    expect(status('CANCELLED')).toBe('cancelled');
    expect(mapState(info('PREEMPTED')).detail).toBe('PREEMPTED, requeued');
    expect(mapState(info('PENDING', { reason: 'BeginTime', restarts: 1 })).detail).toBe(
      'PENDING (BeginTime), requeued 1×',
    );
    expect(mapState(info('WARPED'))).toEqual({ status: 'submitted', detail: 'WARPED' });
    // Accounting's last word on a preempted job that the controller forgot: it was not requeued.
    expect(status('PREEMPTED', { fromAccounting: true })).toBe('failed');
    expect(splitState('CANCELLED by 0')).toEqual({ state: 'CANCELLED', flags: [] });
    expect(splitState(['PENDING', 'REQUEUED'])).toEqual({ state: 'PENDING', flags: ['REQUEUED'] });
    expect(splitState(['COMPLETING'])).toEqual({ state: 'COMPLETING', flags: [] });
  });

  it('reads the exit code shapes of every REST version', () => {
    expect(parseRestExitCode(768)).toEqual({ exitCode: 3, signal: null });
    expect(parseRestExitCode(0)).toEqual({ exitCode: 0, signal: null });
    expect(parseRestExitCode({ status: 'FAILED', return_code: 3 })).toEqual({ exitCode: 3, signal: null });
    expect(
      parseRestExitCode({
        status: ['SIGNALED'],
        return_code: { set: true, infinite: false, number: 0 },
        signal: { id: { set: true, infinite: false, number: 9 }, name: 'KILL' },
      }),
    ).toEqual({ exitCode: 0, signal: 9 });
  });

  it('parses scontrol show job -o', () => {
    const f = parseFields(
      'JobId=7 JobName=x UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Restarts=1 ExitCode=3:0',
    );
    expect([f.JobState, f.Reason, f.ExitCode, f.Restarts]).toEqual(['FAILED', 'NonZeroExitCode', '3:0', '1']);
  });
});

describe('slurmrestd request shapes', () => {
  const body = (apiVersion: string) =>
    new SlurmRest(
      fullSpec({
        transport: 'rest',
        rest: { url: 'http://h:6820', userName: 'u', apiVersion },
        sbatchArgs: ['--constraint=a100'],
      }),
      {},
      () => Promise.reject(new Error('no exec')),
      () => Promise.reject(new Error('no fetch')),
    ).submitBody('#!/bin/bash\ntrue\n', job, { HF_TOKEN: 'secret' });

  it('v0.0.38: script beside job, environment object, nodes range, gres', () => {
    const b = body('v0.0.38') as { script: string; job: Record<string, unknown> };
    expect(b.script).toContain('#!/bin/bash');
    expect(b.job).toMatchObject({
      name: 'meteor-c1-distill-2',
      current_working_directory: '/shared/jobs/c1-distill-2',
      standard_output: '/shared/jobs/c1-distill-2/train.log',
      open_mode: 'append',
      partition: 'gpu',
      account: 'ml',
      qos: 'high',
      nodes: [1, 1],
      gres: 'gpu:4',
      cpus_per_task: 16,
      memory_per_node: 65536,
      time_limit: 2880,
      constraints: 'a100',
    });
    expect((b.job.environment as Record<string, string>).HF_TOKEN).toBe('secret');
  });

  it('v0.0.40+: job.script, environment array, tres_per_node, open_mode flags', () => {
    const b = body('v0.0.42') as { job: Record<string, unknown> };
    expect(b.job).toMatchObject({
      script: '#!/bin/bash\ntrue\n',
      open_mode: ['APPEND'],
      minimum_nodes: 1,
      maximum_nodes: 1,
      tres_per_node: 'gres/gpu:4',
    });
    expect(b.job.environment).toContain('HF_TOKEN=secret');
  });

  it('knows which sbatchArgs it can send', () => {
    expect(restSbatchArgs(['--constraint=a100', '--exclusive']).unsupported).toEqual(['--exclusive']);
  });

  it('spots refused tokens and expired JWTs', () => {
    expect(looksUnauthorized({ status: 401, body: {} })).toBe(true);
    expect(
      looksUnauthorized({
        status: 500,
        body: { errors: [{ error_number: 1007, error: 'Protocol authentication error' }] },
      }),
    ).toBe(true);
    expect(
      looksUnauthorized({
        status: 500,
        body: { errors: [{ error_number: 2017, error: 'Invalid job id specified' }] },
      }),
    ).toBe(false);
    const jwt = (exp: number) =>
      `x.${Buffer.from(JSON.stringify({ exp, sun: 'root' })).toString('base64url')}.sig`;
    expect(tokenExpired(jwt(Math.floor(Date.now() / 1000) - 10))).toBe(true);
    expect(tokenExpired(jwt(Math.floor(Date.now() / 1000) + 3600))).toBe(false);
    expect(tokenExpired('not-a-jwt')).toBe(false);
  });
});
