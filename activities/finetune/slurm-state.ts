/**
 * Slurm job states → the backend's statuses, and the exit code shapes of sacct, scontrol and
 * slurmrestd. Pure functions, shared by both transports.
 */
import type { BackendJobStatus } from './backend';

/** A job as a transport reports it. */
export interface SlurmJobInfo {
  /** The base state, upper case: RUNNING, COMPLETED, … (flags such as REQUEUED go in `flags`). */
  state: string;
  flags: string[];
  /** Slurm's Reason field (`None` is dropped). */
  reason: string | null;
  exitCode: number | null;
  signal: number | null;
  restarts: number;
  /** From accounting only: the controller has forgotten the job, so this is its last word. */
  fromAccounting: boolean;
}

const STATUS: Record<string, BackendJobStatus> = {
  PENDING: 'submitted',
  CONFIGURING: 'submitted',
  REQUEUED: 'submitted',
  REQUEUE_HOLD: 'submitted',
  REQUEUE_FED: 'submitted',
  RUNNING: 'running',
  COMPLETING: 'running',
  SUSPENDED: 'running',
  RESIZING: 'running',
  STAGE_OUT: 'running',
  SIGNALING: 'running',
  // Preempted jobs are requeued where PreemptMode=REQUEUE: followed, not failed (see below).
  PREEMPTED: 'running',
  COMPLETED: 'succeeded',
  FAILED: 'failed',
  TIMEOUT: 'failed',
  NODE_FAIL: 'failed',
  OUT_OF_MEMORY: 'failed',
  BOOT_FAIL: 'failed',
  DEADLINE: 'failed',
  CANCELLED: 'cancelled',
};

/** State words that are flags on top of a base state (squeue/scontrol show them as the state). */
const FLAG_STATES = new Set([
  'REQUEUED',
  'REQUEUE_HOLD',
  'REQUEUE_FED',
  'RESIZING',
  'COMPLETING',
  'CONFIGURING',
]);

/** `CANCELLED by 0` (sacct), `OUT_OF_ME+` (truncated), ["RUNNING","COMPLETING"] (REST ≥ v0.0.40). */
export function splitState(raw: string | string[]): { state: string; flags: string[] } {
  const words = (Array.isArray(raw) ? raw : [raw]).map((w) => w.trim().split(/\s+/)[0]?.toUpperCase() ?? '');
  const nonEmpty = words.filter((w) => w !== '');
  const base = nonEmpty.find((w) => !FLAG_STATES.has(w)) ?? nonEmpty[0] ?? 'UNKNOWN';
  return { state: base, flags: nonEmpty.filter((w) => w !== base) };
}

export function mapState(info: SlurmJobInfo): { status: BackendJobStatus; detail: string } {
  const requeued =
    info.restarts > 0 || info.flags.some((f) => f.startsWith('REQUEUE')) || info.state.startsWith('REQUEUE');
  const words = [info.state, ...info.flags].join('+');
  const reason = info.reason ? ` (${info.reason})` : '';
  let detail = `${words}${reason}`;
  if (info.state === 'PREEMPTED') detail += info.fromAccounting ? ', not requeued' : ', requeued';
  else if (requeued) detail += `, requeued${info.restarts > 0 ? ` ${info.restarts}×` : ''}`;
  // The controller no longer has a preempted job: it was not requeued, so it is over.
  if (info.fromAccounting && (info.state === 'PREEMPTED' || info.state.startsWith('REQUEUE'))) {
    return { status: 'failed', detail };
  }
  // Unknown words (newer Slurm): not done, and the word is in the detail.
  return { status: STATUS[info.state] ?? 'submitted', detail };
}

/** `3:0` (sacct, scontrol: code:signal) */
export function parseColonExitCode(s: string | undefined): {
  exitCode: number | null;
  signal: number | null;
} {
  const m = /^(\d+):(\d+)$/.exec(s?.trim() ?? '');
  return m ? { exitCode: Number(m[1]), signal: Number(m[2]) } : { exitCode: null, signal: null };
}

/**
 * slurmrestd's exit codes: v0.0.38 a raw wait status (768 = exit 3); v0.0.39+ and slurmdb
 * `{status, return_code, signal}` where return_code/signal ids are numbers or, from v0.0.40,
 * `{set, infinite, number}`.
 */
export function parseRestExitCode(v: unknown): { exitCode: number | null; signal: number | null } {
  if (typeof v === 'number')
    return v > 255 || v === 0
      ? { exitCode: v >> 8, signal: v & 0x7f || null }
      : { exitCode: v, signal: null };
  if (v && typeof v === 'object') {
    const o = v as { return_code?: unknown; signal?: { id?: unknown; signal_id?: unknown } };
    const sig = restNumber(o.signal?.id ?? o.signal?.signal_id);
    return { exitCode: restNumber(o.return_code), signal: sig === 0 ? null : sig };
  }
  return { exitCode: null, signal: null };
}

/** A number, or v0.0.40+'s `{set, infinite, number}`. */
export function restNumber(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object') {
    const o = v as { set?: boolean; number?: unknown };
    if (o.set === false) return null;
    return typeof o.number === 'number' ? o.number : null;
  }
  return null;
}
