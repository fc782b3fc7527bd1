/**
 * The `local` backend: runs the spec's command on the worker's machine, detached, so the job
 * outlives a crashed or restarted worker. Its state lives in the output folder:
 *   job.json  — the key and the time of submission (written before the process starts)
 *   pid       — written by the wrapper shell itself as it starts
 *   exit_code — written by the wrapper when the command ends
 *   train.log — the command's output
 * A retried submit finds job.json and does not start the command again.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../../core/errors';
import { sleep } from '../../core/llm/limiter';
import type { BackendJobState, FineTuneBackend, FineTuneJobSpec } from './backend';

export interface LocalBackendConfig {
  command: string;
  cwd: string;
  env: Record<string, string>;
  passEnv: string[];
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readText(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return null;
  }
}

async function readPid(outputDir: string, waitMs = 0): Promise<number | null> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const text = await readText(path.join(outputDir, 'pid'));
    if (text && /^\d+\s*$/.test(text)) return Number(text);
    if (Date.now() >= deadline) return null;
    await sleep(100);
  }
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export class LocalBackend implements FineTuneBackend {
  readonly name = 'local';
  constructor(
    private readonly config: LocalBackendConfig,
    private readonly workerEnv: NodeJS.ProcessEnv,
  ) {}

  async lookup(key: string, outputDir: string): Promise<{ externalId: string } | null> {
    const job = await readText(path.join(outputDir, 'job.json'));
    if (!job) return null;
    const recorded = JSON.parse(job) as { key: string };
    if (recorded.key !== key) {
      throw new UserError(`output folder ${outputDir} belongs to another fine-tune job (${recorded.key})`);
    }
    // The wrapper writes its pid as it starts; give a submit that crashed mid-way time to land.
    const pid = await readPid(outputDir, 5_000);
    return { externalId: pid === null ? `local:${key}` : `local:${pid}` };
  }

  async submit(job: FineTuneJobSpec): Promise<{ externalId: string }> {
    if (!existsSync(this.config.cwd)) {
      throw new UserError(`fine-tune command folder ${this.config.cwd} does not exist on this worker`);
    }
    await mkdir(job.outputDir, { recursive: true });
    await writeFile(
      path.join(job.outputDir, 'job.json'),
      JSON.stringify({ key: job.key, submittedAt: new Date().toISOString() }),
    );
    const env: Record<string, string> = {
      PATH: this.workerEnv.PATH ?? '/usr/bin:/bin',
      HOME: this.workerEnv.HOME ?? '/tmp',
      ...Object.fromEntries(
        this.config.passEnv.flatMap((k) => (this.workerEnv[k] ? [[k, this.workerEnv[k] as string]] : [])),
      ),
      ...this.config.env,
      METEOR_DATASET_PATH: job.datasetPath,
      METEOR_OUTPUT_DIR: job.outputDir,
      METEOR_BASE_MODEL: job.baseModel,
      METEOR_PARENT_ADAPTER: job.parentCheckpoint ?? '',
      METEOR_JOB_KEY: job.key,
      METEOR_STAGE: job.stage,
      METEOR_TRAINING_KIND: job.kind,
      METEOR_LOSS: job.loss ?? '',
      METEOR_TRAINER_CONFIG_DIR: job.trainerConfigDir,
    };
    const dir = shellQuote(job.outputDir);
    // `exec` is not used: the wrapper must outlive the command to record its exit code.
    const script = `echo $$ > ${dir}/pid; ${this.config.command}; echo $? > ${dir}/exit_code`;
    const log = openSync(path.join(job.outputDir, 'train.log'), 'a');
    try {
      const child = spawn('/bin/sh', ['-c', script], {
        cwd: this.config.cwd,
        env,
        detached: true,
        stdio: ['ignore', log, log],
      });
      child.unref();
    } finally {
      closeSync(log);
    }
    const pid = await readPid(job.outputDir, 10_000);
    if (pid === null) throw new Error(`fine-tune command did not start (no pid file in ${job.outputDir})`);
    return { externalId: `local:${pid}` };
  }

  async poll(externalId: string, outputDir: string, logLinesSeen: number): Promise<BackendJobState> {
    const logText = (await readText(path.join(outputDir, 'train.log'))) ?? '';
    const lines = logText.split('\n').filter((l) => l.length > 0);
    const logLines = lines.slice(logLinesSeen);
    const exit = await readText(path.join(outputDir, 'exit_code'));
    const pid = Number(externalId.replace(/^local:/, ''));
    const alive = Number.isInteger(pid) && isAlive(pid);
    if (!alive && (await readText(path.join(outputDir, 'cancelled'))) !== null) {
      return { status: 'cancelled', error: null, checkpointUri: null, logLines };
    }
    if (exit !== null && exit.trim() !== '') {
      const code = Number(exit.trim());
      return code === 0
        ? { status: 'succeeded', error: null, checkpointUri: `file://${outputDir}`, logLines }
        : {
            status: 'failed',
            error: `command exited with ${code}; last output: ${lines.slice(-5).join(' | ')}`,
            checkpointUri: null,
            logLines,
          };
    }
    if (alive) return { status: 'running', error: null, checkpointUri: null, logLines };
    return {
      status: 'failed',
      error: `the fine-tune process (${externalId}) is gone without an exit code (machine restarted?)`,
      checkpointUri: null,
      logLines,
    };
  }

  async cancel(externalId: string, outputDir: string): Promise<void> {
    const pid = Number(externalId.replace(/^local:/, ''));
    if (!Number.isInteger(pid) || !isAlive(pid)) return;
    await writeFile(path.join(outputDir, 'cancelled'), new Date().toISOString());
    // Detached: the wrapper leads its own process group, so this reaches the command too.
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-pid, sig);
      } catch {
        /* already gone */
      }
    };
    signalGroup('SIGTERM');
    for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(100);
    if (isAlive(pid)) signalGroup('SIGKILL');
  }
}
