/**
 * The Slurm backend against the real single-node Slurm of infra/slurm/dev-cluster.sh, through
 * both transports: submit, lookup by name, poll to the end with log lines, failure, cancel,
 * requeue, preflight and JWT refresh.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../core/llm/limiter';
import type { BackendJobState, FineTuneJobSpec } from '../../activities/finetune/backend';
import { SlurmBackend } from '../../activities/finetune/slurm';
import {
  restFields,
  slurmCommand,
  slurmJob,
  slurmSpec,
  startDevSlurm,
  waitFor,
  type DevSlurm,
} from '../support/slurm';

let cluster: DevSlurm;
beforeAll(() => {
  cluster = startDevSlurm();
});

const TRANSPORTS = ['cli', 'rest'] as const;
type Transport = (typeof TRANSPORTS)[number];

function backend(
  transport: Transport,
  fields: Record<string, unknown> = {},
  env = cluster.env,
): SlurmBackend {
  const t = transport === 'rest' ? restFields(cluster) : {};
  return new SlurmBackend(slurmSpec(cluster, { ...t, ...fields }), env);
}

/** Polls until the job is over, collecting log lines as the workflow would and every detail seen. */
async function pollToEnd(b: SlurmBackend, id: string, job: FineTuneJobSpec, timeoutMs = 60_000) {
  const lines: string[] = [];
  const details = new Set<string>();
  const final = await waitFor(
    `job ${id} to end`,
    async () => {
      const s: BackendJobState = await b.poll(id, job, lines.length);
      lines.push(...s.logLines);
      if (s.detail) details.add(s.detail);
      return ['succeeded', 'failed', 'cancelled'].includes(s.status) ? s : null;
    },
    timeoutMs,
  );
  return { final, lines, details: [...details] };
}

const startTimes: Record<Transport, number[]> = { cli: [], rest: [] };

describe.each(TRANSPORTS)('SlurmBackend over %s', (transport) => {
  it('submits, finds the job by name live and finished, and follows it to success with its log', async () => {
    const b = backend(transport);
    const job = slurmJob(cluster, `ok-${transport}`);
    expect(await b.lookup(job)).toBeNull();
    const { externalId, submitted } = await b.submit(job);
    expect(externalId).toMatch(/^\d+$/);
    expect(submitted).toContain(`#SBATCH --job-name=${job.name}`);
    expect(readFileSync(path.join(job.dir.worker, 'job.sbatch'), 'utf8')).toBe(submitted);
    expect(await b.lookup(job)).toEqual({ externalId });
    const { final, lines } = await pollToEnd(b, externalId, job);
    expect(final).toMatchObject({ status: 'succeeded', exitCode: 0, error: null });
    expect(lines).toContain('hello');
    expect(await b.lookup(job)).toEqual({ externalId });
  });

  it('measures submit → RUNNING', async () => {
    const b = backend(transport, { command: 'sleep 1' });
    for (let i = 0; i < 3; i++) {
      const job = slurmJob(cluster, `t${i}-${transport}`);
      const started = performance.now();
      const { externalId } = await b.submit(job);
      await waitFor('RUNNING', async () =>
        (await b.poll(externalId, job, 0)).status === 'submitted' ? null : true,
      );
      startTimes[transport].push(performance.now() - started);
      await pollToEnd(b, externalId, job);
    }
    const sorted = [...startTimes[transport]].sort((x, y) => x - y);
    console.log(
      `[slurm] ${transport}: submit → RUNNING median ${Math.round(sorted[1] ?? 0)} ms (${sorted.map(Math.round).join(', ')} ms)`,
    );
  });

  it('reports a failed job with its exit code, reason and last log lines', async () => {
    const b = backend(transport, { command: 'for i in $(seq 1 12); do echo line $i; done; exit 3' });
    const job = slurmJob(cluster, `fail-${transport}`);
    const { externalId } = await b.submit(job);
    const { final } = await pollToEnd(b, externalId, job);
    expect(final.status).toBe('failed');
    expect(final.exitCode).toBe(3);
    expect(final.error).toContain('exit code 3');
    expect(final.error).toContain('reason NonZeroExitCode');
    expect(final.error).toContain('line 12');
    expect(final.error).toContain('line 3');
    expect(final.error).not.toContain('line 2\n');
  });

  it('cancels a running job, idempotently', async () => {
    const b = backend(transport, { command: 'sleep 60' });
    const job = slurmJob(cluster, `cancel-${transport}`);
    const { externalId } = await b.submit(job);
    await waitFor('RUNNING', async () =>
      (await b.poll(externalId, job, 0)).status === 'running' ? true : null,
    );
    await b.cancel(externalId, job);
    const { final } = await pollToEnd(b, externalId, job);
    expect(final.status).toBe('cancelled');
    await b.cancel(externalId, job);
  });

  it('follows a requeued job to success', async () => {
    const b = backend(transport, { command: 'echo start; sleep 2; echo done' });
    const job = slurmJob(cluster, `requeue-${transport}`);
    const { externalId } = await b.submit(job);
    // Requeue once the script runs: a requeue during the launch makes slurmd revoke the job's
    // credential, and Slurm then fails the relaunch ("Job credential revoked") by itself.
    await waitFor('the first attempt to run its script', async () => {
      const s = await b.poll(externalId, job, 0);
      return s.status === 'running' && s.logLines.includes('start') ? true : null;
    });
    slurmCommand(cluster, 'scontrol', ['requeue', externalId]);
    // Back in the queue (after the first run has ended), a requeued job waits 2 minutes before
    // it is eligible again; let it go now.
    await waitFor('the requeue', async () => {
      const s = await b.poll(externalId, job, 0);
      return s.status === 'submitted' && s.detail?.includes('requeued') ? true : null;
    });
    // slurmd compares credentials by the second: a relaunch in the same second as the requeue's
    // kill is refused as "already killed" (Slurm's own 120 s wait hides this on real clusters).
    await sleep(1_500);
    slurmCommand(cluster, 'scontrol', ['update', `jobid=${externalId}`, 'StartTime=now']);
    const { final, lines, details } = await pollToEnd(b, externalId, job);
    expect(final.status).toBe('succeeded');
    expect(details.some((d) => d.includes('requeued'))).toBe(true);
    // --open-mode=append: both attempts are in the log.
    expect(lines.filter((l) => l.includes('[meteor] Slurm job')).length).toBe(2);
    expect(lines).toContain('done');
  });

  it('preflight: a usable spec has no problems; an unknown partition is named', async () => {
    expect(await backend(transport).preflight()).toEqual([]);
    const problems = await backend(transport, { partition: 'gpu' }).preflight();
    expect(problems).toEqual(['fineTune.partition: partition "gpu" does not exist (partitions: debug)']);
  });
});

describe('SlurmBackend over rest: tokens', () => {
  it('names the token field when the variable is not set', async () => {
    const b = backend('rest', restFields(cluster, { tokenEnv: 'NO_SUCH_JWT' }));
    expect(await b.preflight()).toEqual([
      'fineTune.rest.tokenEnv: environment variable NO_SUCH_JWT is not set',
    ]);
  });

  it('names the url when slurmrestd does not answer', async () => {
    const b = backend('rest', restFields(cluster, { url: 'http://127.0.0.1:1' }));
    const problems = await b.preflight();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^fineTune\.rest\.url: slurmrestd at http:\/\/127\.0\.0\.1:1 did not answer/);
  });

  it('names the token when slurmrestd refuses it and there is no tokenCommand', async () => {
    const env = { ...cluster.env, BAD_JWT: 'not.a.token' };
    const problems = await backend('rest', restFields(cluster, { tokenEnv: 'BAD_JWT' }), env).preflight();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^fineTune\.rest\.tokenEnv: slurmrestd at .* refused the request/);
  });

  it.each([
    ['invalid', 'not.a.token'],
    [
      'expired',
      `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.${Buffer.from(JSON.stringify({ exp: 1700000000, iat: 1699990000, sun: 'root' })).toString('base64url')}.c2ln`,
    ],
  ])('gets a fresh token with tokenCommand when the JWT is %s, and works', async (_kind, token) => {
    const env = { ...cluster.env, STALE_JWT: token };
    const b = backend(
      'rest',
      restFields(cluster, { tokenEnv: 'STALE_JWT', tokenCommand: 'scontrol token lifespan=600' }),
      env,
    );
    expect(await b.preflight()).toEqual([]);
    const job = slurmJob(cluster, 'token');
    const { externalId } = await b.submit(job);
    expect((await pollToEnd(b, externalId, job)).final.status).toBe('succeeded');
  });
});
