/**
 * The rest transport: slurmrestd (`/slurm/vX/…`, and `/slurmdb/vX/…` where slurmdbd is there).
 * The JWT comes from env[rest.tokenEnv] or rest.tokenCommand; it is only ever sent in the
 * X-SLURM-USER-TOKEN header (never logged, never in an error message).
 *
 * Differences between API versions handled here (everything else is the same request):
 *   - submit: v0.0.38/39 take `script` beside `job`; v0.0.40+ read `job.script`.
 *   - job.environment: an object in v0.0.38, an array of `K=V` from v0.0.39.
 *   - node counts: v0.0.38 `nodes: [min, max]`; v0.0.39+ `minimum_nodes`/`maximum_nodes`.
 *   - GPUs: `gres: gpu:N` up to v0.0.39; `tres_per_node: gres/gpu:N` from v0.0.40.
 *   - open_mode: `append` in v0.0.38/39, `["APPEND"]` from v0.0.40.
 *   - submit answer: `job_id` (all), also `result.job_id` from v0.0.39.
 *   - job_state: a string (v0.0.38/39) or an array of state + flags (v0.0.40+); exit_code: a
 *     raw wait status (v0.0.38) or `{status, return_code, signal}` (slurm-state.ts).
 *   Numbers are sent plain; v0.0.40+ also accept them where they show `{set, number}`.
 */
import type { SlurmFineTuneSpec } from '../../core/finetune-spec';
import type { FineTuneJobSpec } from './backend';
import { slurmOptions } from './slurm-script';
import { parseRestExitCode, splitState, type SlurmJobInfo } from './slurm-state';
import type { Exec, SlurmTransport } from './slurm-transport';

type Rest = NonNullable<SlurmFineTuneSpec['rest']>;
export type Fetch = typeof fetch;

interface RestError {
  error?: string;
  description?: string;
  error_number?: number;
  errno?: number;
  error_code?: number;
  source?: string;
}
interface RestJob {
  job_id?: number;
  name?: string;
  job_state?: string | string[];
  state?: { current?: string | string[]; reason?: string };
  state_reason?: string;
  exit_code?: unknown;
  restart_cnt?: number;
}
interface RestBody {
  errors?: RestError[];
  jobs?: RestJob[];
  partitions?: Array<{ name?: string }>;
  job_id?: number;
  result?: { job_id?: number };
}
interface RestAnswer {
  status: number;
  body: RestBody;
}

/** Slurm's "Invalid job id specified". */
const ESLURM_INVALID_JOB_ID = 2017;
const versionNumber = (v: string) => Number(v.replace(/^v0\.0\./, ''));

export class SlurmRest implements SlurmTransport {
  private readonly rest: Rest;
  private readonly version: number;
  /** A token from tokenCommand replaces the one in the environment, for this backend's life. */
  private token: string | null = null;

  constructor(
    private readonly spec: SlurmFineTuneSpec,
    private readonly env: NodeJS.ProcessEnv,
    private readonly exec: Exec,
    private readonly fetchImpl: Fetch,
  ) {
    if (!spec.rest) throw new Error('fineTune.rest is required for the rest transport');
    this.rest = spec.rest;
    this.version = versionNumber(this.rest.apiVersion);
  }

  private url(api: 'slurm' | 'slurmdb', path: string): string {
    return `${this.rest.url.replace(/\/+$/, '')}/${api}/${this.rest.apiVersion}/${path}`;
  }

  private async freshToken(): Promise<string> {
    const command = this.rest.tokenCommand;
    if (!command)
      throw new Error(`fineTune.rest.tokenEnv: environment variable ${this.rest.tokenEnv} is not set`);
    // Slurm's commands authenticate with SLURM_JWT when it is set: an expired one would make
    // `scontrol token` itself fail, so the command runs without it.
    const env = { ...this.env };
    delete env[this.rest.tokenEnv];
    delete env.SLURM_JWT;
    const r = await this.exec('/bin/sh', ['-c', command], { env });
    // `scontrol token` prints `SLURM_JWT=<token>`; other commands may print the bare token.
    const last = r.stdout.trim().split('\n').pop()?.trim() ?? '';
    const token = last.replace(/^[A-Za-z_][A-Za-z0-9_]*=/, '');
    if (r.code !== 0 || token === '') {
      throw new Error(
        `fineTune.rest.tokenCommand: \`${command}\` gave no token (exit ${r.code}): ${r.stderr.trim()}`,
      );
    }
    this.token = token;
    return token;
  }

  private async currentToken(): Promise<string> {
    const token = this.token ?? this.env[this.rest.tokenEnv];
    if (!token) return this.freshToken();
    // An expired token is replaced before it is refused (when there is a way to get one).
    if (this.rest.tokenCommand && tokenExpired(token)) return this.freshToken();
    return token;
  }

  private async send(method: string, url: string, token: string, body?: unknown): Promise<RestAnswer> {
    const res = await this.fetchImpl(url, {
      method,
      headers: {
        'X-SLURM-USER-NAME': this.rest.userName,
        'X-SLURM-USER-TOKEN': token,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed: RestBody;
    try {
      parsed = JSON.parse(text) as RestBody;
    } catch {
      parsed = { errors: [{ error: text.trim().slice(0, 300) || res.statusText }] };
    }
    return { status: res.status, body: parsed };
  }

  /** One request; refused as unauthorised with a tokenCommand → a fresh token and one retry. */
  private async request(method: string, url: string, body?: unknown): Promise<RestAnswer> {
    const answer = await this.send(method, url, await this.currentToken(), body);
    if (!this.rest.tokenCommand || !looksUnauthorized(answer)) return answer;
    return this.send(method, url, await this.freshToken(), body);
  }

  private failure(what: string, a: RestAnswer): Error {
    return new Error(`slurmrestd ${what}: HTTP ${a.status}: ${errorText(a.body) || 'no error given'}`);
  }

  async reachable(): Promise<string[]> {
    if (!this.env[this.rest.tokenEnv] && !this.rest.tokenCommand) {
      return [`fineTune.rest.tokenEnv: environment variable ${this.rest.tokenEnv} is not set`];
    }
    let a: RestAnswer;
    try {
      a = await this.request('GET', this.url('slurm', 'ping'));
    } catch (err) {
      const cause =
        err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
      if (err instanceof Error && err.message.startsWith('fineTune.')) return [err.message];
      return [`fineTune.rest.url: slurmrestd at ${this.rest.url} did not answer: ${cause}`];
    }
    if (a.status === 404) {
      return [
        `fineTune.rest.apiVersion: slurmrestd at ${this.rest.url} does not serve ${this.rest.apiVersion} (HTTP 404)`,
      ];
    }
    if (a.status >= 400 || (a.body.errors?.length ?? 0) > 0) {
      const field = this.rest.tokenCommand ? 'fineTune.rest.tokenCommand' : 'fineTune.rest.tokenEnv';
      return [
        `${field}: slurmrestd at ${this.rest.url} refused the request (HTTP ${a.status}: ${errorText(a.body)}); ` +
          `is the token in ${this.rest.tokenEnv} valid for user ${this.rest.userName}?`,
      ];
    }
    return [];
  }

  async partitions(): Promise<string[]> {
    const a = await this.request('GET', this.url('slurm', 'partitions'));
    if (a.status >= 400) throw this.failure('GET partitions', a);
    return (a.body.partitions ?? []).flatMap((p) => (p.name ? [p.name] : []));
  }

  async findByName(name: string): Promise<Array<{ id: string; state: string }>> {
    // The controller's jobs cannot be filtered by name on the server: filter them here.
    const a = await this.request('GET', this.url('slurm', 'jobs'));
    if (a.status >= 400) throw this.failure('GET jobs', a);
    const found = new Map<string, string>();
    for (const j of a.body.jobs ?? []) {
      if (j.name === name && j.job_id !== undefined)
        found.set(String(j.job_id), splitState(j.job_state ?? 'UNKNOWN').state);
    }
    // Accounting (slurmdbd) has the jobs the controller has forgotten; without it, this fails.
    const db = await this.request(
      'GET',
      `${this.url('slurmdb', 'jobs')}?job_name=${encodeURIComponent(name)}&start_time=946684800`,
    ).catch(() => null);
    if (db && db.status < 400) {
      for (const j of db.body.jobs ?? []) {
        const id = j.job_id === undefined ? '' : String(j.job_id);
        if (j.name === name && id && !found.has(id))
          found.set(id, splitState(j.state?.current ?? 'UNKNOWN').state);
      }
    }
    return [...found].map(([id, state]) => ({ id, state }));
  }

  async submit(script: string, job: FineTuneJobSpec, secrets: Record<string, string>): Promise<string> {
    const a = await this.request(
      'POST',
      this.url('slurm', 'job/submit'),
      this.submitBody(script, job, secrets),
    );
    const id = a.body.job_id ?? a.body.result?.job_id;
    if (a.status >= 400 || id === undefined || (a.body.errors?.length ?? 0) > 0)
      throw this.failure('job submit', a);
    return String(id);
  }

  /** The job description: slurmrestd ignores the script's #SBATCH lines, so they are repeated. */
  submitBody(script: string, job: FineTuneJobSpec, secrets: Record<string, string>): Record<string, unknown> {
    const o = slurmOptions(this.spec, job);
    const v = this.version;
    // The job gets no environment but this one: the script exports the METEOR_* variables.
    const environment: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      ...secrets,
    };
    const desc: Record<string, unknown> = {
      name: o.name,
      current_working_directory: o.chdir,
      standard_output: o.output,
      standard_error: o.output,
      open_mode: v >= 40 ? ['APPEND'] : 'append',
      requeue: true,
      time_limit: o.timeLimitMinutes,
      environment: v >= 39 ? Object.entries(environment).map(([k, val]) => `${k}=${val}`) : environment,
      ...(v >= 39 ? { minimum_nodes: o.nodes, maximum_nodes: o.nodes } : { nodes: [o.nodes, o.nodes] }),
      ...(o.partition ? { partition: o.partition } : {}),
      ...(o.account ? { account: o.account } : {}),
      ...(o.qos ? { qos: o.qos } : {}),
      ...(o.cpusPerTask ? { cpus_per_task: o.cpusPerTask } : {}),
      ...(o.memoryMb ? { memory_per_node: o.memoryMb } : {}),
      ...(o.gpusPerNode > 0
        ? v >= 40
          ? { tres_per_node: `gres/gpu:${o.gpusPerNode}` }
          : { gres: `gpu:${o.gpusPerNode}` }
        : {}),
      ...restSbatchArgs(this.spec.sbatchArgs).fields,
    };
    return v >= 40 ? { job: { ...desc, script } } : { script, job: desc };
  }

  async jobInfo(id: string): Promise<SlurmJobInfo | null> {
    const a = await this.request('GET', this.url('slurm', `job/${encodeURIComponent(id)}`));
    const j = a.body.jobs?.[0];
    if (a.status < 400 && j) {
      const { state, flags } = splitState(j.job_state ?? 'UNKNOWN');
      return {
        state,
        flags,
        reason: j.state_reason && j.state_reason !== 'None' ? j.state_reason : null,
        ...parseRestExitCode(j.exit_code),
        restarts: j.restart_cnt ?? 0,
        fromAccounting: false,
      };
    }
    const unknownJob = (a.body.errors ?? []).some(
      (e) => (e.error_number ?? e.errno) === ESLURM_INVALID_JOB_ID,
    );
    if (!unknownJob) throw this.failure(`GET job/${id}`, a);
    // Purged from the controller: ask accounting (when slurmdbd is there).
    const db = await this.request('GET', this.url('slurmdb', `job/${encodeURIComponent(id)}`)).catch(
      () => null,
    );
    const dj = db && db.status < 400 ? db.body.jobs?.[0] : undefined;
    if (!dj) return null;
    const { state, flags } = splitState(dj.state?.current ?? 'UNKNOWN');
    return {
      state,
      flags,
      reason: dj.state?.reason && dj.state.reason !== 'None' ? dj.state.reason : null,
      ...parseRestExitCode(dj.exit_code),
      restarts: 0,
      fromAccounting: true,
    };
  }

  async cancel(id: string): Promise<void> {
    const a = await this.request('DELETE', this.url('slurm', `job/${encodeURIComponent(id)}`));
    if (a.status < 400 && (a.body.errors?.length ?? 0) === 0) return;
    // Already over (or purged): nothing to cancel.
    const info = await this.jobInfo(id);
    if (info === null || !['PENDING', 'RUNNING', 'SUSPENDED', 'CONFIGURING'].includes(info.state)) return;
    throw this.failure(`DELETE job/${id}`, a);
  }
}

/**
 * The sbatchArgs slurmrestd can take as job fields; any other one is a preflight problem for the
 * rest transport (slurmrestd does not read #SBATCH lines).
 */
export function restSbatchArgs(args: string[]): { fields: Record<string, unknown>; unsupported: string[] } {
  const fields: Record<string, unknown> = {};
  const unsupported: string[] = [];
  for (const arg of args) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg.trim());
    const [key, value] = [m?.[1], m?.[2]];
    if (key === 'constraint' && value) fields.constraints = value;
    else if (key === 'reservation' && value) fields.reservation = value;
    else if (key === 'exclude' && value) fields.excluded_nodes = value.split(',');
    else if (key === 'comment' && value) fields.comment = value;
    else unsupported.push(arg);
  }
  return { fields, unsupported };
}

function errorText(body: RestBody): string {
  return (body.errors ?? [])
    .map((e) => [e.error, e.description].filter((s) => s && s !== '').join(': '))
    .filter((s) => s !== '')
    .join('; ');
}

/**
 * 401/403, or an error naming authentication. slurmrestd 22.05 (v0.0.38) answers a rejected JWT
 * with HTTP 500 and vague errors ("Unspecified error", "Zero Bytes were transmitted or received",
 * "slurmctld config is unable to load"), so those count too: at worst one needless token refresh.
 */
export function looksUnauthorized(a: RestAnswer): boolean {
  if (a.status === 401 || a.status === 403) return true;
  const errors = a.body.errors ?? [];
  return errors.some((e) => {
    const n = e.error_number ?? e.errno ?? e.error_code;
    return (
      n === 1007 ||
      n === 5005 ||
      n === -1 ||
      /auth|token|credential|zero bytes|unable to load/i.test(`${e.error ?? ''} ${e.description ?? ''}`)
    );
  });
}

/** The JWT's `exp` has passed (tokens that are not JWTs are left to the server). */
export function tokenExpired(token: string, nowMs = Date.now()): boolean {
  const payload = token.split('.')[1];
  if (!payload) return false;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && exp * 1000 <= nowMs + 30_000;
  } catch {
    return false;
  }
}
