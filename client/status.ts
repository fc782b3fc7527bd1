/**
 * A campaign's status as users see it (`campaign status|list`): the workflow's own `status`
 * query while it runs, the database once it has closed (or when no worker answers).
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import { sql } from 'kysely';
import type { Db } from '../core/db/connection';
import type { Campaign } from '../core/db/types';
import { UserError } from '../core/errors';
import { toModelRef } from '../activities/models';
import { stageRecordCount } from '../core/records';
import { statusQuery } from '../workflows/messages';
import type { CampaignRunState, CampaignStatus, StageName, StageProgress } from '../workflows/types';
import { findAwaitingRegistration } from './awaiting-registration';
import type { Clients } from './connect';
import { stageDefinition } from '../stages/registry';

export interface CampaignStatusView extends CampaignStatus {
  name: string;
  domain: string;
  createdAt: string;
  /** The evolution line and iteration this campaign is, or null for a campaign of its own. */
  line: { name: string; iteration: number } | null;
  /** A forecast run (`campaign plan`): the question counts its sample stands for; null otherwise. */
  forecastOf: { train: number; eval: number } | null;
  /** Where the figures come from: the running workflow, or the database. */
  source: 'workflow' | 'database';
  /** deploy: manual — the version waiting for `meteorctl model register`, or null. */
  awaitingRegistration: { label: string; checkpointUri: string } | null;
}

const QUERY_TIMEOUT_MS = 4_000;

const CLOSED_STATES: Record<string, CampaignRunState> = {
  COMPLETED: 'completed',
  FAILED: 'failed',
  TERMINATED: 'failed',
  TIMED_OUT: 'failed',
  CANCELLED: 'cancelled',
};

/** A stage's status as the database tells it, given the campaign's state. */
function stageStatus(
  recordsDone: boolean,
  finished: boolean,
  campaign: CampaignRunState,
): StageProgress['status'] {
  if (finished) return 'completed';
  if (campaign === 'running') return recordsDone ? 'fine-tuning' : 'running';
  if (campaign === 'paused' || campaign === 'cancelled' || campaign === 'completed') return campaign;
  return 'failed';
}

async function fromDatabase(db: Db, row: Campaign, state: CampaignRunState): Promise<CampaignStatus> {
  const [runs, cost, models] = await Promise.all([
    db.selectFrom('stage_runs').selectAll().where('campaign_id', '=', row.id).orderBy('started_at').execute(),
    db
      .selectFrom('llm_calls')
      .select(['stage', 'iteration', sql<number>`coalesce(sum(cost_usd), 0)::float8`.as('cost')])
      .where('campaign_id', '=', row.id)
      // A duplicate (migration 007) was paid for too: it counts in cost and tokens.
      .where('status', 'in', ['ok', 'duplicate'])
      .groupBy(['stage', 'iteration'])
      .execute(),
    db
      .selectFrom('model_versions')
      .selectAll()
      .where('campaign_id', '=', row.id)
      .orderBy('created_at')
      .execute(),
  ]);
  const records = await Promise.all(
    runs.map((r) => stageRecordCount(db, row.id, r.stage as StageName, r.iteration)),
  );
  const stages: StageProgress[] = runs.map((r, i) => {
    const recordsDone = r.status === 'completed';
    // A training stage is complete with its fine-tuned model; one that trains nothing (the
    // evaluation), with its records.
    const finished =
      models.some((m) => m.stage === r.stage && m.iteration === r.iteration) ||
      (stageDefinition(r.stage as StageName).dataset === null && recordsDone);
    return {
      stage: r.stage as StageName,
      iteration: r.iteration,
      status: stageStatus(recordsDone, finished, state),
      total: r.total,
      // Records are per question except in the evaluation (two judgments per model and question).
      done: recordsDone ? r.total : Math.min(records[i] ?? 0, r.total),
      records: records[i] ?? 0,
      costUsd: cost.find((c) => c.stage === r.stage && c.iteration === r.iteration)?.cost ?? 0,
      failed: 0,
      retrying: null,
    };
  });
  const current = state === 'running' || state === 'paused' ? stages.at(-1) : undefined;
  return {
    campaignId: row.id,
    workflowId: row.workflow_id,
    state,
    pauseRequested: false,
    pauseReason: state === 'paused' ? (row.pause_reason ?? 'paused by user') : null,
    stage: current?.stage ?? null,
    iteration: current?.iteration ?? null,
    stages,
    costUsd: cost.reduce((s, c) => s + c.cost, 0),
    failedQuestions: 0,
    lineage: models.map(toModelRef),
    error: row.error,
  };
}

/** Unresolved failed questions by `stage/iteration`: the truth, retry-failed included. */
async function failureCounts(db: Db, campaignId: string): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('failed_questions')
    .select(['stage', 'iteration', sql<number>`count(*)::int`.as('n')])
    .where('campaign_id', '=', campaignId)
    .where('resolved_at', 'is', null)
    .groupBy(['stage', 'iteration'])
    .execute();
  return new Map(rows.map((r) => [`${r.stage}/${r.iteration}`, r.n]));
}

/**
 * Endpoints failing right now, by `stage/iteration`: the worst one's failed attempts since it
 * last answered and its last error (what the gateway's retries are going through).
 */
async function failingEndpoints(db: Db, campaignId: string): Promise<Map<string, StageProgress['retrying']>> {
  const rows = await db
    .selectFrom('endpoint_health')
    .select(['stage', 'iteration', 'attempts', 'last_error'])
    .where('campaign_id', '=', campaignId)
    .where('failing_since', 'is not', null)
    .orderBy('attempts', 'desc')
    .execute();
  const out = new Map<string, StageProgress['retrying']>();
  for (const r of rows) {
    const key = `${r.stage}/${r.iteration}`;
    if (!out.has(key)) out.set(key, { attempt: r.attempts, lastError: r.last_error ?? 'unknown error' });
  }
  return out;
}

/**
 * The attempt and last error of a stage's batch activity that is being retried (the stage's
 * workflow has pending activities with attempt > 1), or null. Best effort: status never fails
 * for want of it.
 */
async function stageRetrying(
  clients: Clients,
  campaignWorkflowId: string,
  s: StageProgress,
): Promise<StageProgress['retrying']> {
  try {
    const d = await clients.temporal.workflow
      .getHandle(`${campaignWorkflowId}-${s.stage}-${s.iteration}`)
      .describe();
    let worst: StageProgress['retrying'] = null;
    for (const a of d.raw.pendingActivities ?? []) {
      const attempt = a.attempt ?? 1;
      if (attempt > 1 && (worst === null || attempt > worst.attempt)) {
        worst = { attempt, lastError: a.lastFailure?.message ?? 'unknown error' };
      }
    }
    return worst;
  } catch {
    return null;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | null> {
  return Promise.race([p, new Promise<null>((resolve) => setTimeout(() => resolve(null), ms).unref())]);
}

export async function getCampaignRow(db: Db, campaignId: string): Promise<Campaign> {
  const row = await db.selectFrom('campaigns').selectAll().where('id', '=', campaignId).executeTakeFirst();
  if (!row) throw new UserError(`No campaign "${campaignId}" (see \`meteorctl campaign list\`)`);
  return row;
}

export async function campaignStatus(clients: Clients, campaignId: string): Promise<CampaignStatusView> {
  const row = await getCampaignRow(clients.db, campaignId);
  const [failures, failing] = await Promise.all([
    failureCounts(clients.db, campaignId),
    failingEndpoints(clients.db, campaignId),
  ]);
  const view = async (s: CampaignStatus, source: 'workflow' | 'database'): Promise<CampaignStatusView> => ({
    ...s,
    stages: await Promise.all(
      s.stages.map(async (st) => ({
        ...st,
        failed: failures.get(`${st.stage}/${st.iteration}`) ?? 0,
        retrying:
          st.status === 'running' || st.status === 'paused'
            ? (failing.get(`${st.stage}/${st.iteration}`) ??
              (await withTimeout(stageRetrying(clients, row.workflow_id, st), QUERY_TIMEOUT_MS)))
            : null,
      })),
    ),
    failedQuestions: [...failures.values()].reduce((a, b) => a + b, 0),
    name: row.name,
    domain: row.domain,
    createdAt: new Date(row.created_at).toISOString(),
    line:
      row.line_name && row.line_iteration !== null
        ? { name: row.line_name, iteration: row.line_iteration }
        : null,
    forecastOf: row.forecast?.of ?? null,
    source,
    awaitingRegistration: s.stages.some((st) => st.status === 'fine-tuning')
      ? await withTimeout(
          findAwaitingRegistration(clients, campaignId, row.workflow_id).then((a) =>
            a ? { label: a.label, checkpointUri: a.checkpointUri } : null,
          ),
          QUERY_TIMEOUT_MS,
        )
      : null,
  });
  const handle = clients.temporal.workflow.getHandle(row.workflow_id);
  let temporalStatus: string;
  try {
    temporalStatus = (await handle.describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      return view(
        await fromDatabase(
          clients.db,
          row,
          row.state === 'created' ? 'failed' : (row.state as CampaignRunState),
        ),
        'database',
      );
    }
    throw err;
  }
  const closed = CLOSED_STATES[temporalStatus];
  if (closed) return view(await fromDatabase(clients.db, row, closed), 'database');
  const queried = await withTimeout(
    handle.query(statusQuery).catch(() => null),
    QUERY_TIMEOUT_MS,
  );
  if (queried) return view(queried, 'workflow');
  // No worker answered the query: report what the database knows.
  const state: CampaignRunState = row.state === 'paused' ? 'paused' : 'running';
  return view(await fromDatabase(clients.db, row, state), 'database');
}

export async function listCampaigns(clients: Clients): Promise<CampaignStatusView[]> {
  const rows = await clients.db.selectFrom('campaigns').select('id').orderBy('created_at', 'desc').execute();
  const out: CampaignStatusView[] = [];
  for (const r of rows) out.push(await campaignStatus(clients, r.id));
  return out;
}
