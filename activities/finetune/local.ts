/**
 * The `local` backend: runs the spec's command on the worker's machine, detached, so the job
 * outlives a crashed or restarted worker. Only the host that started a job polls or cancels it
 * (its activities run on that host's own queue). Its state lives in the job's folder:
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
import type { BackendJobState, FineTuneBackend, FineTuneJobSpec, SubmitResult } from './backend';
import { jobFiles } from './job-layout';

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

  async preflight(): Promise<string[]> {
    const problems: string[] = [];
    if (!existsSync(this.config.cwd)) {
      problems.push(`fineTune.cwd: folder ${this.config.cwd} does not exist`);
      return problems;
    }
    const program = this.config.command.trim().split(/\s+/)[0] ?? '';
    if (!(await commandExists(program, this.config.cwd, this.workerEnv.PATH ?? ''))) {
      problems.push(`fineTune.command: "${program}" is neither a file under ${this.config.cwd} nor on PATH`);
    }
    return problems;
  }

  async lookup(job: FineTuneJobSpec): Promise<{ externalId: string } | null> {
    const dir = job.dir.worker;
    const recordedText = await readText(path.join(dir, 'job.json'));
    if (!recordedText) return null;
    const recorded = JSON.parse(recordedText) as { key: string };
    if (recorded.key !== job.key) {
      throw new UserError(`job folder ${dir} belongs to another fine-tune job (${recorded.key})`);
    }
    // The wrapper writes its pid as it starts; give a submit that crashed mid-way time to land.
    const pid = await readPid(dir, 5_000);
    return { externalId: pid === null ? `local:${job.key}` : `local:${pid}` };
  }

  async submit(job: FineTuneJobSpec): Promise<SubmitResult> {
    if (!existsSync(this.config.cwd)) {
      throw new UserError(`fine-tune command folder ${this.config.cwd} does not exist on this worker`);
    }
    const dir = job.dir.worker;
    await mkdir(dir, { recursive: true });
    await writeFile(
      path.join(dir, 'job.json'),
      JSON.stringify({ key: job.key, submittedAt: new Date().toISOString() }),
    );
    const env: Record<string, string> = {
      PATH: this.workerEnv.PATH ?? '/usr/bin:/bin',
      HOME: this.workerEnv.HOME ?? '/tmp',
      ...Object.fromEntries(
        this.config.passEnv.flatMap((k) => (this.workerEnv[k] ? [[k, this.workerEnv[k] as string]] : [])),
      ),
      ...this.config.env,
      ...job.env,
    };
    const quoted = shellQuote(dir);
    // `exec` is not used: the wrapper must outlive the command to record its exit code; the
    // subshell keeps a command's own `exit` from ending the wrapper before it does (and the
    // newline, a trailing `# comment` in the command from swallowing the closing parenthesis).
    const script = `echo $$ > ${quoted}/pid; (${this.config.command}\n); echo $? > ${quoted}/exit_code`;
    const log = openSync(jobFiles(dir).log, 'a');
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
    const pid = await readPid(dir, 10_000);
    if (pid === null) throw new Error(`fine-tune command did not start (no pid file in ${dir})`);
    return {
      externalId: `local:${pid}`,
      submitted: `cd ${shellQuote(this.config.cwd)} && ${this.config.command}`,
    };
  }

  async poll(externalId: string, job: FineTuneJobSpec, logLinesSeen: number): Promise<BackendJobState> {
    const dir = job.dir.worker;
    const logText = (await readText(jobFiles(dir).log)) ?? '';
    const lines = logText.split('\n').filter((l) => l.length > 0);
    const logLines = lines.slice(logLinesSeen);
    const exit = await readText(path.join(dir, 'exit_code'));
    const pid = Number(externalId.replace(/^local:/, ''));
    const alive = Number.isInteger(pid) && isAlive(pid);
    const state = (
      s: Omit<BackendJobState, 'logLines' | 'detail'> & { detail?: string | null },
    ): BackendJobState => ({
      detail: null,
      ...s,
      logLines,
    });
    if (!alive && (await readText(path.join(dir, 'cancelled'))) !== null) {
      return state({ status: 'cancelled', error: null, exitCode: null });
    }
    if (exit !== null && exit.trim() !== '') {
      const code = Number(exit.trim());
      return code === 0
        ? state({ status: 'succeeded', error: null, exitCode: 0 })
        : state({
            status: 'failed',
            error: `command exited with ${code}; last output: ${lines.slice(-10).join(' | ')}`,
            exitCode: code,
          });
    }
    if (alive) return state({ status: 'running', error: null, exitCode: null, detail: `pid ${pid}` });
    return state({
      status: 'failed',
      error: `the fine-tune process (${externalId}) is gone without an exit code (machine restarted?)`,
      exitCode: null,
    });
  }

  async cancel(externalId: string, job: FineTuneJobSpec): Promise<void> {
    const pid = Number(externalId.replace(/^local:/, ''));
    if (!Number.isInteger(pid) || !isAlive(pid)) return;
    await writeFile(path.join(job.dir.worker, 'cancelled'), new Date().toISOString());
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

/** A command's program: a file relative to cwd (or absolute), or a name on PATH. */
async function commandExists(program: string, cwd: string, pathVar: string): Promise<boolean> {
  if (program === '') return false;
  // `VAR=value cmd …` or a shell keyword: leave it to the shell.
  if (program.includes('=') || ['exec', 'env', 'cd'].includes(program)) return true;
  if (program.includes('/')) return existsSync(path.resolve(cwd, program));
  return pathVar.split(':').some((d) => d !== '' && existsSync(path.join(d, program)));
}
