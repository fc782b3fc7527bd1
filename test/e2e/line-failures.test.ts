/**
 * An evolution line outlives its worker, and a failed iteration pauses the schedule only when
 * the line says `pauseOnFailure` (real Temporal Schedules, PostgreSQL, the simulator).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createLine, lineStatus, triggerLine } from '../../client/lines';
import {
  exampleQuestions,
  sleep,
  startHarness,
  waitFor,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';
import { closeWithLines, lineIterations, writeLineSpec } from '../support/lines';

let h: Harness;
let starting: Promise<Harness> | undefined;
afterAll(async () => {
  await starting?.catch(() => undefined);
  await closeWithLines(h);
});

/** The file's harness: started by the first test that needs it (one, also for concurrent tests). */
async function harness(opts: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  starting ??= startHarness(opts).then((started) => (h = started));
  return starting;
}

async function line(name: string, campaign: string, extra: Record<string, unknown>) {
  await createLine(h.clients, await writeLineSpec(h, name, campaign, extra));
  return h.clients.temporal.schedule.getHandle(`line-${name}`);
}

const iterationsOf = (name: string) => lineIterations(h, name);

describe('evolution lines under failure', () => {
  it('finishes an iteration whose worker went away in the middle of it', async () => {
    h = await harness({ latencyMs: 30 });
    const name = `restart-${h.taskQueue.slice(-8)}`;
    const train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(16));
    const campaign = await writeSpec(h, { questions: { train }, stages: { evaluate: { enabled: true } } });
    await line(name, campaign, {});
    await triggerLine(h.clients, name);
    const running = await waitFor(
      'the iteration to be running its campaign',
      async () => (await iterationsOf(name)).find((it) => it.campaign_id !== null && it.state === 'running'),
      60_000,
      200,
    );
    await h.stopWorker();
    await sleep(2_000);
    await h.startWorker();
    const done = await waitFor(
      'the iteration to finish',
      async () =>
        (await iterationsOf(name)).find((it) => it.iteration === running.iteration && it.state !== 'running'),
      150_000,
      500,
    );
    expect(done).toMatchObject({ state: 'completed', questions_added: 16 });
    expect(done.promoted).not.toBeNull();
    // One campaign, one record per question: the restart redid nothing.
    const records = await h.clients.db
      .selectFrom('distill_records')
      .select('question_id')
      .where('campaign_id', '=', done.campaign_id as string)
      .execute();
    expect(records).toHaveLength(16);
  }, 240_000);

  // The two failure cases (each its own line and schedule) run at the same time.
  for (const pauseOnFailure of [true, false]) {
    it.concurrent(
      `a failed iteration ${pauseOnFailure ? 'pauses' : 'does not pause'} the schedule with pauseOnFailure: ${pauseOnFailure}`,
      async () => {
        await harness();
        const name = `fail-${String(pauseOnFailure)}-${h.taskQueue.slice(-8)}`;
        const train = await writeQuestions(h.tmp, `train-${name}.jsonl`, await exampleQuestions(4));
        // The trainer fails: the campaign fails, and so does the iteration.
        const campaign = await writeSpec(h, {
          questions: { train },
          stages: { evaluate: { enabled: true } },
          fineTune: { command: 'echo "out of GPU memory" >&2; exit 3' },
        });
        const schedule = await line(name, campaign, { pauseOnFailure });
        // Through meteorctl's trigger: it keeps the line's overlap policy, under which the schedule
        // follows the run to its end (a plain ALLOW_ALL trigger is not followed).
        await triggerLine(h.clients, name);
        const failed = await waitFor(
          'the iteration to fail',
          async () => (await iterationsOf(name)).find((it) => it.state !== 'running'),
          120_000,
          500,
        );
        expect(failed.state).toBe('failed');
        expect(failed.reason).toMatch(/exited with 3/);
        // The schedule hears of the failure a moment after the run closes.
        const deadline = Date.now() + 20_000;
        let paused = (await schedule.describe()).state.paused;
        while (paused !== pauseOnFailure && Date.now() < deadline) {
          await sleep(500);
          paused = (await schedule.describe()).state.paused;
        }
        if (!pauseOnFailure) await sleep(3_000);
        expect((await schedule.describe()).state.paused).toBe(pauseOnFailure);
        expect((await lineStatus(h.clients, name)).state).toBe(pauseOnFailure ? 'paused' : 'active');
      },
      180_000,
    );
  }
});
