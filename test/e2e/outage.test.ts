/**
 * An endpoint that stays down pauses the campaign instead of being retried for ever: while its
 * calls fail, `status` shows the stage `retrying`; past `outage.pauseAfter` the campaign pauses
 * with a reason naming the endpoint and the last error; once the endpoint answers again the probe
 * resumes it (or the user does), and it completes without paying any call twice — counted at the
 * model server, both of its lives together.
 */
import { spawn } from 'node:child_process';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { campaignStatus, type CampaignStatusView } from '../../client/status';
import { startSimServer, type SimServer, type SimStats } from '../../infra/sim/server';
import {
  EXAMPLE_EVAL,
  EXAMPLE_TRAIN,
  REPO_ROOT,
  countRows,
  launch,
  meteorctl,
  services,
  startHarness,
  waitDone,
  waitFor,
  writeSpec,
  type Harness,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';

const LATENCY_MS = 40;

/** Stops the simulator once the stage is under way; returns its port and what it answered. */
async function outageMidStage(
  h: Harness,
  campaignId: string,
): Promise<{ port: number; served: number; counts: SimStats['requestCounts'] }> {
  await waitFor(
    '8 distill records',
    async () => (await countRows(h, 'distill_records', campaignId)) >= 8,
    60_000,
  );
  const port = Number(new URL(h.sim.url).port);
  await h.sim.close();
  const { served, requestCounts } = h.sim.stats();
  return { port, served, counts: requestCounts };
}

function restartSim(port: number): Promise<SimServer> {
  return startSimServer({ port, latencyMs: LATENCY_MS, knowledgeFiles: [EXAMPLE_TRAIN, EXAMPLE_EVAL] });
}

/** Polls status until the campaign pauses, keeping the `retrying` entries seen on the way. */
async function waitPaused(
  h: Harness,
  campaignId: string,
): Promise<{ paused: CampaignStatusView; retrying: Array<{ attempt: number; lastError: string }> }> {
  const retrying: Array<{ attempt: number; lastError: string }> = [];
  const paused = await waitFor(
    'the campaign to pause for the outage',
    async () => {
      const s = await campaignStatus(h.clients, campaignId);
      expect(s.state).not.toBe('failed');
      for (const st of s.stages) if (st.retrying) retrying.push(st.retrying);
      return s.state === 'paused' ? s : null;
    },
    60_000,
    100,
  );
  return { paused, retrying };
}

/** `meteorctl campaign status ID --wait` as a process, its stderr (the progress) readable as it runs. */
function followStatus(
  h: Harness,
  campaignId: string,
): { stderr: () => string; exitCode: Promise<number | null> } {
  const svc = services();
  const child = spawn(process.execPath, ['bin/meteorctl.cjs', 'campaign', 'status', campaignId, '--wait'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DATABASE_URL: svc.databaseUrl,
      TEMPORAL_ADDRESS: svc.temporalAddress,
      TEMPORAL_NAMESPACE: svc.namespace,
      METEOR_TASK_QUEUE: h.taskQueue,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exitCode = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { stderr: () => err, exitCode };
}

async function okCalls(h: Harness, campaignId: string): Promise<number> {
  const row = await h.clients.db
    .selectFrom('llm_calls')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('campaign_id', '=', campaignId)
    .where('status', '=', 'ok')
    .executeTakeFirstOrThrow();
  return row.n;
}

describe('an endpoint outage', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('shows retrying, pauses past outage.pauseAfter naming the endpoint, and the probe resumes it', async () => {
    h = await startHarness({ latencyMs: LATENCY_MS });
    const spec = await writeSpec(h, {
      models: { weak: { concurrency: 4 }, strong: { concurrency: 4 } },
      stages: { distill: { batchSize: 4 } },
      outage: { pauseAfter: '3s', probeEvery: '1s' },
    });
    const { campaignId } = await launch(h, spec);
    const down = await outageMidStage(h, campaignId);

    const { paused, retrying } = await waitPaused(h, campaignId);
    expect(retrying.length).toBeGreaterThan(0);
    expect(retrying.at(-1)?.lastError).toMatch(/ECONNREFUSED|cannot reach/);
    expect(paused.pauseReason).toMatch(
      new RegExp(
        `(weak|strong) endpoint http://127\\.0\\.0\\.1:${down.port}/v1 \\(model "sim-[a-z0-9-]+"\\) has not ` +
          'answered for \\d+s .*outage\\.pauseAfter 3s\\); last error: .*(ECONNREFUSED|cannot reach)',
      ),
    );
    // The reason is in `campaign status --json` and `campaign list` as well.
    const json = await meteorctl(h, ['campaign', 'status', campaignId, '--json']);
    expect((JSON.parse(json.stdout) as CampaignStatusView).pauseReason).toBe(paused.pauseReason);
    const list = await meteorctl(h, ['campaign', 'list']);
    expect(list.stdout).toMatch(new RegExp(`${campaignId}\\s+paused .*has not answered`));

    const restarted = await restartSim(down.port);
    h.sim = restarted;
    const final = await waitDone(h, campaignId, 120_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(await countRows(h, 'distill_records', campaignId)).toBe(48);
    // No call paid twice: every answer the server gave, before and after its restart, is one logged call.
    const served = down.served + restarted.stats().served;
    const logged = await okCalls(h, campaignId);
    process.stderr.write(
      `[outage/probe] server answered ${down.served} + ${restarted.stats().served} = ${served} calls; ` +
        `${logged} logged; ${retrying.length} retrying observations, last attempt ${retrying.at(-1)?.attempt}\n`,
    );
    expect(served).toBe(logged);
    // And by content: no request answered more often than it was a distinct call, both lives together.
    expect(await paidTwice(h, [campaignId], [down.counts])).toEqual([]);
  });

  it('stays paused until the user resumes when the probe has not run yet', async () => {
    h = await startHarness({ latencyMs: LATENCY_MS });
    const spec = await writeSpec(h, {
      models: { weak: { concurrency: 4 }, strong: { concurrency: 4 } },
      stages: { distill: { batchSize: 4 } },
      outage: { pauseAfter: '3s', probeEvery: '1h' },
    });
    const { campaignId } = await launch(h, spec);
    const down = await outageMidStage(h, campaignId);
    await waitPaused(h, campaignId);
    h.sim = await restartSim(down.port);
    expect((await campaignStatus(h.clients, campaignId)).state).toBe('paused');

    // Followed with --wait from the pause to the end: it says why, and what was being retried.
    const following = followStatus(h, campaignId);
    await waitFor('status --wait to show the pause', async () => following.stderr().includes('paused:'));
    const resumed = await meteorctl(h, ['campaign', 'resume', campaignId]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await following.exitCode).toBe(0);
    const shown = following.stderr();
    expect(shown).toMatch(/paused: (weak|strong) endpoint .* has not answered/);
    expect(shown).toMatch(/retrying \(attempt \d+\): .*(ECONNREFUSED|cannot reach)/);
    expect(shown).toMatch(/campaign \S+ {2}completed/);
    const final = await waitDone(h, campaignId, 120_000);
    expect(final.state).toBe('completed');
    expect(await countRows(h, 'distill_records', campaignId)).toBe(48);
    expect(down.served + h.sim.stats().served).toBe(await okCalls(h, campaignId));
  });
});
