/**
 * The cli transport: sbatch, squeue, sacct, scontrol, scancel and sinfo, run on this worker or,
 * with `ssh`, on a login node (`ssh [options] host -- <quoted command>`).
 */
import type { SlurmFineTuneSpec } from '../../core/finetune-spec';
import type { FineTuneJobSpec } from './backend';
import { shellQuote } from './slurm-script';
import { parseColonExitCode, splitState, type SlurmJobInfo } from './slurm-state';
import type { Exec, ExecResult, SlurmTransport } from './slurm-transport';

/** States in which a job is still in the controller's hands (not finished). */
export const LIVE_STATES = new Set([
  'PENDING',
  'CONFIGURING',
  'RUNNING',
  'COMPLETING',
  'SUSPENDED',
  'PREEMPTED',
  'REQUEUED',
  'REQUEUE_HOLD',
  'REQUEUE_FED',
  'RESIZING',
  'STAGE_OUT',
  'SIGNALING',
]);

/** Far enough back for any job of a campaign: sacct otherwise lists today's jobs only. */
const SACCT_START = '2000-01-01T00:00:00';

export class SlurmCli implements SlurmTransport {
  constructor(
    private readonly spec: SlurmFineTuneSpec,
    private readonly env: NodeJS.ProcessEnv,
    private readonly exec: Exec,
  ) {}

  private run(args: string[], input?: string, extraEnv: Record<string, string> = {}): Promise<ExecResult> {
    const [cmd, ...rest] = args as [string, ...string[]];
    if (!this.spec.ssh) return this.exec(cmd, rest, { env: { ...this.env, ...extraEnv }, input });
    // ssh joins its arguments into one remote shell command line: quote each one.
    const remote = args.map(shellQuote).join(' ');
    return this.exec('ssh', [...this.sshArgs(), '--', remote], { env: this.env, input });
  }

  private sshArgs(): string[] {
    const ssh = this.spec.ssh;
    return ssh ? ['-o', 'BatchMode=yes', ...ssh.options, ssh.host] : [];
  }

  private async ok(args: string[]): Promise<string> {
    const r = await this.run(args);
    if (r.code !== 0)
      throw new Error(`${this.where()}${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  private where(): string {
    return this.spec.ssh ? `on ${this.spec.ssh.host}: ` : '';
  }

  async reachable(): Promise<string[]> {
    const r = await this.run(['sbatch', '--version']);
    if (r.code === 0) return [];
    if (this.spec.ssh && r.code === 255) {
      return [`fineTune.ssh.host: cannot reach ${this.spec.ssh.host} over ssh: ${r.stderr.trim()}`];
    }
    if (r.code === 127)
      return [
        `fineTune.transport: sbatch not found on PATH ${this.where()}(cli runs sbatch, squeue, sacct, scontrol, scancel)`,
      ];
    return [
      `fineTune.transport: sbatch --version failed ${this.where()}(exit ${r.code}): ${r.stderr.trim()}`,
    ];
  }

  async partitions(): Promise<string[]> {
    const out = await this.ok(['sinfo', '-h', '-o', '%P']);
    // The default partition is marked `debug*`.
    return [
      ...new Set(
        out
          .split('\n')
          .map((l) => l.trim().replace(/\*$/, ''))
          .filter((l) => l !== ''),
      ),
    ];
  }

  async findByName(name: string): Promise<Array<{ id: string; state: string }>> {
    // squeue -t all also lists finished jobs the controller still holds (MinJobAge): this
    // covers clusters without accounting, where sacct has nothing.
    const live = await this.ok(['squeue', '--name', name, '--noheader', '-t', 'all', '-o', '%i|%T']);
    const found = new Map<string, string>();
    for (const line of live.split('\n')) {
      const [id, state] = line.trim().split('|');
      if (id && state) found.set(id, splitState(state).state);
    }
    const acct = await this.run([
      'sacct',
      '--name',
      name,
      '-X',
      '--noheader',
      '-P',
      '-o',
      'JobID,State',
      '-S',
      SACCT_START,
    ]);
    if (acct.code === 0) {
      for (const line of acct.stdout.split('\n')) {
        const [id, state] = line.trim().split('|');
        // The controller's word wins for a job both know (accounting lags behind it).
        if (id && state && /^\d+$/.test(id) && !found.has(id)) found.set(id, splitState(state).state);
      }
    } else if (!/accounting storage is disabled/i.test(acct.stderr)) {
      throw new Error(`${this.where()}sacct failed (exit ${acct.code}): ${acct.stderr.trim()}`);
    }
    return [...found].map(([id, state]) => ({ id, state }));
  }

  async submit(script: string, _job: FineTuneJobSpec, secrets: Record<string, string>): Promise<string> {
    let r: ExecResult;
    if (this.spec.ssh) {
      // Secrets reach the remote sbatch through the ssh session's stdin, never a command line.
      const delimiter = 'METEOR_SBATCH_SCRIPT_END';
      if (script.includes(delimiter)) throw new Error(`the job script contains ${delimiter}`);
      const input = [
        ...Object.entries(secrets).map(([k, v]) => `export ${k}=${shellQuote(v)}`),
        `exec sbatch --parsable --export=ALL <<'${delimiter}'`,
        script.replace(/\n$/, ''),
        delimiter,
        '',
      ].join('\n');
      r = await this.exec('ssh', [...this.sshArgs(), '--', 'bash -s'], { env: this.env, input });
    } else {
      // The script on stdin, the secrets in sbatch's own environment (--export=ALL passes them on).
      r = await this.run(['sbatch', '--parsable', '--export=ALL'], script, secrets);
    }
    // --parsable prints `id` or `id;cluster`.
    const id = /^(\d+)/.exec(r.stdout.trim())?.[1];
    if (r.code !== 0 || !id)
      throw new Error(`${this.where()}sbatch failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
    return id;
  }

  async jobInfo(id: string): Promise<SlurmJobInfo | null> {
    const r = await this.run(['scontrol', 'show', 'job', '-o', id]);
    if (r.code === 0 && r.stdout.includes('JobId=')) {
      const f = parseFields(r.stdout);
      const { state, flags } = splitState(f.JobState ?? 'UNKNOWN');
      return {
        state,
        flags,
        reason: f.Reason && f.Reason !== 'None' ? f.Reason : null,
        ...parseColonExitCode(f.ExitCode),
        restarts: Number(f.Restarts ?? 0) || 0,
        fromAccounting: false,
      };
    }
    if (!/invalid job id/i.test(r.stderr)) {
      throw new Error(`${this.where()}scontrol show job ${id} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
    // Purged from the controller (MinJobAge): accounting has its end. Without -D, sacct gives
    // only the latest run of a requeued job.
    const acct = await this.run([
      'sacct',
      '-j',
      id,
      '-X',
      '--noheader',
      '-P',
      '-o',
      'JobID,State,ExitCode,Reason',
    ]);
    const line = acct.code === 0 ? acct.stdout.split('\n').find((l) => l.startsWith(`${id}|`)) : undefined;
    if (!line) return null;
    const [, rawState = 'UNKNOWN', exit, reason] = line.split('|');
    const { state, flags } = splitState(rawState);
    return {
      state,
      flags,
      reason: reason && reason !== 'None' ? reason : null,
      ...parseColonExitCode(exit),
      restarts: 0,
      fromAccounting: true,
    };
  }

  async cancel(id: string): Promise<void> {
    const r = await this.run(['scancel', id]);
    // scancel of a finished or purged job: "already completing or completed" / "Invalid job id".
    if (r.code !== 0 && !/already complet|invalid job id/i.test(r.stderr)) {
      throw new Error(`${this.where()}scancel ${id} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
  }
}

/** `scontrol show job -o`: `Key=Value Key=Value …` on one line (values have no blanks, mostly). */
export function parseFields(line: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const m of line.matchAll(/(?:^|\s)([A-Za-z:/]+)=(\S*)/g)) {
    if (m[1] && !(m[1] in fields)) fields[m[1]] = m[2] ?? '';
  }
  return fields;
}
