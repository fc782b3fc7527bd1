/**
 * A campaign's fine-tune jobs as users read them: `meteorctl finetune list` and `logs`, and the
 * report's fine-tune section. Read from the job rows and their events.
 */
import type { Db } from '../core/db/connection';
import { UserError } from '../core/errors';
import { stageNames } from '../stages/registry';

export interface FineTuneSummary {
  stage: string;
  iteration: number;
  backend: string;
  externalId: string | null;
  state: string;
  /** The backend's own words for the state (e.g. `PENDING (Priority)`), when it gave any. */
  detail: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** Seconds from submit to the end (or to now, while it runs). */
  durationSec: number | null;
  finalLoss: number | null;
  checkpointUri: string | null;
  error: string | null;
}

export async function listFineTunes(db: Db, campaignId: string): Promise<FineTuneSummary[]> {
  const rows = await db
    .selectFrom('finetune_jobs')
    .selectAll()
    .where('campaign_id', '=', campaignId)
    .execute();
  const order = (stage: string) => (stageNames() as string[]).indexOf(stage);
  rows.sort((a, b) => order(a.stage) - order(b.stage) || a.iteration - b.iteration);
  const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
  return rows.map((r) => {
    const from = r.submitted_at ?? r.started_at;
    const to = r.finished_at ?? (r.status === 'submitted' || r.status === 'running' ? new Date() : null);
    return {
      stage: r.stage,
      iteration: r.iteration,
      backend: r.backend,
      externalId: r.external_id,
      state: r.status,
      detail: r.detail,
      startedAt: iso(r.started_at ?? r.submitted_at),
      finishedAt: iso(r.finished_at),
      durationSec: from && to ? Math.max(0, Math.round((+new Date(to) - +new Date(from)) / 1000)) : null,
      finalLoss: r.final_loss,
      checkpointUri: r.checkpoint_uri,
      error: r.error,
    };
  });
}

export interface FineTuneLogLine {
  at: string;
  kind: string;
  message: string;
}

/** A job's events in order: submit, status changes, log lines and metrics. */
export async function fineTuneEvents(
  db: Db,
  campaignId: string,
  stage: string,
  iteration: number,
): Promise<FineTuneLogLine[]> {
  const job = await db
    .selectFrom('finetune_jobs')
    .select(['id'])
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', stage)
    .where('iteration', '=', iteration)
    .executeTakeFirst();
  if (!job)
    throw new UserError(`campaign ${campaignId} has no fine-tune for ${stage} iteration ${iteration}`);
  const events = await db
    .selectFrom('finetune_events')
    .select(['at', 'kind', 'message'])
    .where('job_id', '=', job.id)
    .where('kind', '!=', 'parent')
    .orderBy('id')
    .execute();
  return events.map((e) => ({ at: new Date(e.at).toISOString(), kind: e.kind, message: e.message }));
}
