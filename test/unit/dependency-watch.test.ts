/**
 * Outages of the worker's dependencies, told once each: the watch, which failures count as the
 * database being away, statements retried through a restart, and the SDK's retry noise left out.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isConnectionLoss, retryOnConnectionLoss } from '../../core/db/connection';
import { DependencyWatch, waitUntilReachable } from '../../core/dependency-watch';
import { isTemporalUnreachable, temporalFailureReason } from '../../core/temporal-connection';
import { isUnreachableServerNoise } from '../../workers/runtime';

const coded = (code: string, message = code) => Object.assign(new Error(message), { code });

describe('DependencyWatch', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function watch(probeOk: () => boolean) {
    const lines: string[] = [];
    const w = new DependencyWatch({
      name: 'PostgreSQL at db:5432/meteor',
      waiting: 'statements wait',
      probe: async () => {
        if (!probeOk()) throw new Error('still down');
      },
      log: (line) => lines.push(line),
    });
    return { w, lines };
  }

  it('tells an outage once however many failures report it, and once when the probe succeeds', async () => {
    let up = false;
    const { w, lines } = watch(() => up);
    w.lost(coded('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.5:5432'));
    for (let i = 0; i < 50; i++) w.lost(coded('57P01', 'terminating connection'));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(w.down).toBe(true);
    expect(lines).toEqual([
      'PostgreSQL at db:5432/meteor is unreachable (connect ECONNREFUSED 10.0.0.5:5432); statements wait',
    ]);
    up = true;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(w.down).toBe(false);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^PostgreSQL at db:5432\/meteor is back after 2\d\.\d s$/);
    // A later outage is a new one.
    w.lost(new Error('Connection terminated unexpectedly'));
    expect(lines).toHaveLength(3);
    w.close();
  });

  it('probes less often the longer it lasts, at most every maxProbeEveryMs', async () => {
    let probes = 0;
    const { w } = watch(() => {
      probes++;
      return false;
    });
    w.lost(new Error('x'));
    await vi.advanceTimersByTimeAsync(60_000);
    // 0.5, 1, 2, 4 s, then every 5 s: about 14 probes a minute, not one per retry of the work.
    expect(probes).toBeGreaterThan(8);
    expect(probes).toBeLessThan(16);
    w.close();
    const after = probes;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(probes).toBe(after);
  });

  it('checkEvery notices a loss nothing else reports', async () => {
    let up = true;
    const { w, lines } = watch(() => up);
    w.checkEvery(3_000);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(lines).toEqual([]);
    up = false;
    await vi.advanceTimersByTimeAsync(3_000);
    expect(lines).toEqual(['PostgreSQL at db:5432/meteor is unreachable (still down); statements wait']);
    up = true;
    await vi.advanceTimersByTimeAsync(3_000);
    expect(lines[1]).toMatch(/is back after/);
    w.close();
  });
});

describe('isConnectionLoss', () => {
  it('counts the server going away or refusing connections', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', '57P01', '57P02', '57P03', '08006', '08001'])
      expect(isConnectionLoss(coded(code)), code).toBe(true);
    expect(isConnectionLoss(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(
      isConnectionLoss(new Error('Client has encountered a connection error and is not queryable')),
    ).toBe(true);
  });

  it('does not count what retrying cannot fix: the statement, the data, the credentials', () => {
    for (const code of ['23505', '42P01', '28P01', '3D000', 'ENOENT'])
      expect(isConnectionLoss(coded(code)), code).toBe(false);
    expect(isConnectionLoss(new TypeError('x'))).toBe(false);
    expect(isConnectionLoss('ECONNREFUSED')).toBe(false);
  });
});

describe('retryOnConnectionLoss', () => {
  const noWait = () => Promise.resolve();

  it('runs the statement again while the connection is lost, telling it that it is a retry', async () => {
    const seen: boolean[] = [];
    const out = await retryOnConnectionLoss(
      async (retried) => {
        seen.push(retried);
        if (seen.length < 3) throw coded('57P01');
        return 'logged';
      },
      60_000,
      noWait,
    );
    expect(out).toBe('logged');
    expect(seen).toEqual([false, true, true]);
  });

  it('runs a deadlock victim again: PostgreSQL rolled it back whole', async () => {
    const seen: boolean[] = [];
    const out = await retryOnConnectionLoss(
      async (retried) => {
        seen.push(retried);
        if (seen.length < 2) throw coded('40P01', 'deadlock detected');
        return 'logged';
      },
      60_000,
      noWait,
    );
    expect(out).toBe('logged');
    expect(seen).toEqual([false, true]);
  });

  it('does not retry other errors', async () => {
    let calls = 0;
    await expect(
      retryOnConnectionLoss(
        async () => {
          calls++;
          throw coded('23505', 'duplicate key');
        },
        60_000,
        noWait,
      ),
    ).rejects.toThrow('duplicate key');
    expect(calls).toBe(1);
  });

  it('gives up after withinMs', async () => {
    let calls = 0;
    await expect(
      retryOnConnectionLoss(
        async () => {
          calls++;
          throw coded('ECONNREFUSED');
        },
        0,
        noWait,
      ),
    ).rejects.toThrow('ECONNREFUSED');
    expect(calls).toBe(1);
  });
});

describe("the SDK's notes on an unreachable Temporal server", () => {
  const core = (message: string, meta: Record<string, unknown> = {}) => ({
    message,
    meta: { sdkComponent: 'core', ...meta },
  });

  it('are left out: each retry, each failed poll or completion', () => {
    expect(
      isUnreachableServerNoise(
        core('gRPC call poll_workflow_task_queue retried 6 times', { target: 'temporalio_client::retry' }),
      ),
    ).toBe(true);
    expect(
      isUnreachableServerNoise(
        core('Network error while completing activity', {
          error: 'Status { code: Unavailable, message: "tcp connect error" }',
        }),
      ),
    ).toBe(true);
    expect(
      isUnreachableServerNoise(
        core('Error while completing workflow activation', {
          error: "code: 'The service is currently unavailable'",
        }),
      ),
    ).toBe(true);
  });

  it('are told otherwise, as are all of the SDK’s other messages and our own', () => {
    expect(isUnreachableServerNoise(core('Workflow task failed', { error: 'nondeterminism' }))).toBe(false);
    expect(isUnreachableServerNoise({ message: 'Activity failed', meta: { sdkComponent: 'worker' } })).toBe(
      false,
    );
    expect(
      isUnreachableServerNoise({
        message: 'the Temporal server at x is unreachable (Unavailable)',
        meta: undefined,
      }),
    ).toBe(false);
  });
});

describe('waitUntilReachable (a worker starting before its dependencies)', () => {
  const noWait = () => Promise.resolve();
  const refused = () =>
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

  it('tries until it answers, telling once that it waits and once that it is there', async () => {
    const lines: string[] = [];
    let tries = 0;
    const out = await waitUntilReachable({
      name: 'PostgreSQL at db:5432/meteor',
      attempt: async () => {
        if (++tries < 5) throw refused();
        return 'up';
      },
      unreachable: isConnectionLoss,
      log: (line) => lines.push(line),
      sleep: noWait,
    });
    expect(out).toBe('up');
    expect(tries).toBe(5);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(
      'PostgreSQL at db:5432/meteor is unreachable (connect ECONNREFUSED 127.0.0.1:5432); waiting for it',
    );
    expect(lines[1]).toMatch(/^PostgreSQL at db:5432\/meteor is reachable after \d+\.\d s$/);
  });

  it('throws at once what waiting cannot fix', async () => {
    const lines: string[] = [];
    const auth = Object.assign(new Error('password authentication failed for user "meteor"'), {
      code: '28P01',
    });
    await expect(
      waitUntilReachable({
        name: 'PostgreSQL',
        attempt: () => Promise.reject(auth),
        unreachable: isConnectionLoss,
        log: (line) => lines.push(line),
        sleep: noWait,
      }),
    ).rejects.toBe(auth);
    expect(lines).toEqual([]);
  });
});

describe('a Temporal server not there yet', () => {
  const refused = new Error(
    'tonic::transport::Error(Transport, ConnectError(ConnectError("tcp connect error", 127.0.0.1:7233, Os { code: 111, kind: ConnectionRefused, message: "Connection refused" })))',
  );

  it('is told from TLS or auth failures, in a few words', () => {
    expect(isTemporalUnreachable(refused)).toBe(true);
    expect(temporalFailureReason(refused)).toBe('Connection refused');
    expect(isTemporalUnreachable(new Error('invalid peer certificate: UnknownIssuer'))).toBe(false);
    expect(temporalFailureReason(new Error('invalid peer certificate'))).toBe('invalid peer certificate');
  });
});
