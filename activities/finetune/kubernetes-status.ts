/**
 * A Job's state and log as the backend reports them (pure: the Job, its newest pod and the pod's
 * log in, a BackendJobState out).
 */
import type { V1Job, V1JobCondition, V1Pod } from '@kubernetes/client-node';
import type { BackendJobState } from './backend';
import { TRAINER_CONTAINER } from './kubernetes-manifest';

/** Log lines kept in a failed job's error. */
const ERROR_LOG_LINES = 10;

/**
 * The log's lines after the first `seen`. A last line without its newline is still being
 * written: it is held back until it ends (or the job has finished), so it is counted once, whole.
 */
export function logLinesAfter(text: string, seen: number, finished: boolean): string[] {
  if (text === '') return [];
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const last = lines.pop() ?? '';
  if (last !== '' && finished) lines.push(last);
  return lines.slice(seen);
}

/** The job's newest pod: a retried Job (backoffLimit > 0) has one per attempt. */
export function newestPod(pods: V1Pod[], jobUid: string | undefined): V1Pod | null {
  // Pods of an earlier Job of the same name (deleted, pods not yet collected) are not this Job's.
  const own = pods.filter((p) => {
    const owner = p.metadata?.ownerReferences?.find((o) => o.kind === 'Job');
    return !owner || !jobUid || owner.uid === jobUid;
  });
  const created = (p: V1Pod) =>
    p.metadata?.creationTimestamp ? new Date(p.metadata.creationTimestamp).getTime() : 0;
  own.sort(
    (a, b) => created(a) - created(b) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''),
  );
  return own.at(-1) ?? null;
}

export function trainerExitCode(pod: V1Pod | null): number | null {
  const status = pod?.status?.containerStatuses?.find((c) => c.name === TRAINER_CONTAINER);
  return status?.state?.terminated?.exitCode ?? status?.lastState?.terminated?.exitCode ?? null;
}

/** The pod's phase and why it waits, e.g. `Pending (Unschedulable: 0/4 nodes have nvidia.com/gpu)`. */
export function podDetail(pod: V1Pod): string {
  const phase = pod.status?.phase ?? 'Pending';
  const container = pod.status?.containerStatuses?.find((c) => c.name === TRAINER_CONTAINER);
  const waiting = container?.state?.waiting;
  if (waiting?.reason) return `${phase} (${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''})`;
  const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unscheduled?.reason) {
    return `${phase} (${unscheduled.reason}${unscheduled.message ? `: ${unscheduled.message}` : ''})`;
  }
  return phase;
}

function condition(job: V1Job, type: string): V1JobCondition | undefined {
  return job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

function failureText(cond: V1JobCondition, exitCode: number | null, logTail: string[]): string {
  const reason = cond.reason ?? 'Failed';
  const parts = [`${reason}${cond.message ? `: ${cond.message}` : ''}`];
  if (exitCode !== null) parts.push(`exit code ${exitCode}`);
  const head = parts.join(', ');
  return logTail.length > 0 ? `${head}\nlast log lines:\n${logTail.join('\n')}` : head;
}

/** The Job's state from its conditions, counts and newest pod; `log` is that pod's whole log. */
export function jobState(job: V1Job, pod: V1Pod | null, log: string, logLinesSeen: number): BackendJobState {
  const exitCode = trainerExitCode(pod);
  const complete = condition(job, 'Complete');
  const failed = condition(job, 'Failed');
  const finished = Boolean(complete ?? failed);
  const logLines = logLinesAfter(log, logLinesSeen, finished);
  if (complete) {
    return { status: 'succeeded', detail: complete.reason ?? 'Complete', error: null, exitCode, logLines };
  }
  if (failed) {
    const tail = logLinesAfter(log, 0, true).slice(-ERROR_LOG_LINES);
    return {
      status: 'failed',
      detail: failed.reason ?? 'Failed',
      error: failureText(failed, exitCode, tail),
      exitCode,
      logLines,
    };
  }
  const base = { error: null, exitCode, logLines };
  if (job.spec?.suspend || condition(job, 'Suspended'))
    return { status: 'submitted', detail: 'suspended', ...base };
  const active = (job.status?.active ?? 0) > 0 || (job.status?.ready ?? 0) > 0;
  // An earlier attempt ran (backoffLimit > 0): the job stays running while its retry waits.
  const ranBefore = (job.status?.failed ?? 0) > 0 || (job.status?.succeeded ?? 0) > 0;
  if (pod) {
    // A pod still Pending waits for a node or its image: queued, not yet training.
    const started = (pod.status?.phase ?? 'Pending') !== 'Pending';
    return { status: started || ranBefore ? 'running' : 'submitted', detail: podDetail(pod), ...base };
  }
  // No pod to look at (not created yet, or already collected): the Job's counts alone.
  return {
    status: active || ranBefore ? 'running' : 'submitted',
    detail: active ? 'active' : 'no pod yet',
    ...base,
  };
}
