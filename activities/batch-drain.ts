/**
 * Draining a stage run's batches for a pause: the stage workflow sets `stage_runs.
 * drain_requested_at` (drainStageBatches), and each running batch activity, which looks every
 * DRAIN_CHECK_EVERY_MS, then starts no new LLM call — waiting for a slot, a claim or a backoff
 * ends — while the calls in flight finish and are logged. The batch returns `drained` and runs
 * again on resume, skipping what is done. So a pause takes effect within a check and the calls in
 * flight, not a whole batch (minutes on a slow endpoint), and no paid answer is thrown away.
 */
import type { Db } from '../core/db/connection';

/** How often a running batch looks whether it is asked to drain (one primary-key read). */
const DRAIN_CHECK_EVERY_MS = 1_000;

export interface StageRunKey {
  campaignId: string;
  stage: string;
  iteration: number;
}

/** What a question stopped by a drain fails with: not its failure, it runs again on resume. */
export class BatchDrainedError extends Error {
  override name = 'BatchDrainedError';
  constructor() {
    super('the stage is pausing: no new call starts, the calls in flight finish');
  }
}

export async function setBatchDrain(db: Db, key: StageRunKey, drain: boolean): Promise<void> {
  await db
    .updateTable('stage_runs')
    .set({ drain_requested_at: drain ? new Date() : null })
    .where('campaign_id', '=', key.campaignId)
    .where('stage', '=', key.stage)
    .where('iteration', '=', key.iteration)
    .execute();
}

async function drainRequested(db: Db, key: StageRunKey): Promise<boolean> {
  const row = await db
    .selectFrom('stage_runs')
    .select('drain_requested_at')
    .where('campaign_id', '=', key.campaignId)
    .where('stage', '=', key.stage)
    .where('iteration', '=', key.iteration)
    .executeTakeFirst();
  return row?.drain_requested_at != null;
}

/**
 * Aborts `drain` (with BatchDrainedError) once the stage run asks its batches to drain; checks
 * until stopped. A failed check is skipped: the next one looks again.
 */
export function watchDrain(db: Db, key: StageRunKey, drain: AbortController): { stop(): void } {
  let checking = false;
  const timer = setInterval(() => {
    if (checking || drain.signal.aborted) return;
    checking = true;
    drainRequested(db, key)
      .then((asked) => {
        if (asked) drain.abort(new BatchDrainedError());
      })
      .catch(() => undefined)
      .finally(() => {
        checking = false;
      });
  }, DRAIN_CHECK_EVERY_MS);
  return { stop: () => clearInterval(timer) };
}
