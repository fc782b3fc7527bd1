/** What the Slurm backend needs from a transport (cli: the commands, rest: slurmrestd). */
import { spawn } from 'node:child_process';
import type { FineTuneJobSpec } from './backend';
import type { SlurmJobInfo } from './slurm-state';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  env: NodeJS.ProcessEnv;
  /** Written to the command's stdin. */
  input?: string;
  timeoutMs?: number;
}

/** Runs a program (no shell). A program that is not there gives code 127, like a shell would. */
export type Exec = (file: string, args: string[], options: ExecOptions) => Promise<ExecResult>;

export interface SlurmTransport {
  /** Problems reaching Slurm at all (spec field first); [] when it answers. */
  reachable(): Promise<string[]>;
  partitions(): Promise<string[]>;
  /** Jobs with this name, live or finished, as the controller and accounting know them. */
  findByName(name: string): Promise<Array<{ id: string; state: string }>>;
  submit(script: string, job: FineTuneJobSpec, secrets: Record<string, string>): Promise<string>;
  /** null when neither the controller nor accounting knows the job. */
  jobInfo(id: string): Promise<SlurmJobInfo | null>;
  /** Asks Slurm to cancel; a job that is already over is not an error. */
  cancel(id: string): Promise<void>;
}

export const defaultExec: Exec = (file, args, { env, input, timeoutMs = 60_000 }) =>
  new Promise((resolve) => {
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => {
      resolve({ code: err.code === 'ENOENT' ? 127 : 1, stdout, stderr: stderr + `${file}: ${err.message}` });
    });
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.on('error', () => {
      /* the program exited without reading its input: its exit code tells */
    });
    child.stdin.end(input ?? '');
  });
