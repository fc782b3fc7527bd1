/**
 * Evolution lines from the client side: create (rows + Temporal Schedule `line-<name>`, all or
 * nothing), list, status, pause/unpause/trigger, delete. The iteration workflow itself reads
 * everything it needs from the `lines` row.
 */
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type ScheduleDescription,
  type ScheduleHandle,
  type ScheduleOptions,
  type ScheduleSpec,
} from '@temporalio/client';
import { durationMs } from '../core/duration';
import { UserError } from '../core/errors';
import { lineScheduleId, type LineSpec } from '../core/line-spec';
import type { LoadedLineSpec } from '../core/line-spec-file';
import type { LineIterationState } from '../core/db/types';
import { lineIterationWorkflow } from '../workflows/line';
import { pauseSignal, resumeSignal } from '../workflows/messages';
import type { Clients } from './connect';
import { checkServices, loadSpecQuestions } from './preflight';

export interface CreateLineOptions {
  /** Check the campaign's endpoints and fine-tune backend before creating anything (default true). */
  preflight?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface CreatedLine {
  name: string;
  scheduleId: string;
}

export type LineState = 'active' | 'paused' | 'deleted' | 'missing';

export interface LineStatus {
  name: string;
  /** `missing`: the row is there but its schedule was removed outside meteorctl. */
  state: LineState;
  scheduleId: string;
  champion: {
    campaignId: string;
    label: string;
    servedModel: string;
    kind: 'gate' | 'promote' | 'rollback';
    at: string;
  } | null;
  iterations: Array<{
    iteration: number;
    campaignId: string | null;
    state: LineIterationState;
    promoted: boolean | null;
    reason: string | null;
    startedAt: string;
    finishedAt: string | null;
  }>;
  /** The schedule's next start, when it has one (not while paused). */
  nextRunAt: string | null;
  /** The schedule's note (e.g. why it was paused). */
  note: string | null;
  campaignFile: string;
  createdAt: string;
  deletedAt: string | null;
}

const OVERLAP: Record<LineSpec['overlap'], ScheduleOverlapPolicy> = {
  skip: ScheduleOverlapPolicy.SKIP,
  'buffer-one': ScheduleOverlapPolicy.BUFFER_ONE,
  'buffer-all': ScheduleOverlapPolicy.BUFFER_ALL,
  'cancel-other': ScheduleOverlapPolicy.CANCEL_OTHER,
  'allow-all': ScheduleOverlapPolicy.ALLOW_ALL,
};

export function overlapPolicy(overlap: LineSpec['overlap']): ScheduleOverlapPolicy {
  return OVERLAP[overlap];
}

function scheduleSpec(schedule: LineSpec['schedule']): ScheduleSpec {
  const jitter = schedule.jitter ? { jitter: durationMs(schedule.jitter) } : {};
  if ('every' in schedule) {
    return {
      intervals: [{ every: durationMs(schedule.every), offset: durationMs(schedule.offset ?? '0s') }],
      ...jitter,
    };
  }
  return { cronExpressions: [schedule.cron], timezone: schedule.timezone, ...jitter };
}

/** The Schedule of a line: one lineIterationWorkflow per start, on the campaign task queue. */
export function lineScheduleOptions(spec: LineSpec, taskQueue: string): ScheduleOptions {
  return {
    scheduleId: lineScheduleId(spec.name),
    spec: scheduleSpec(spec.schedule),
    action: {
      type: 'startWorkflow',
      workflowType: lineIterationWorkflow,
      args: [{ line: spec.name }],
      taskQueue,
      // Temporal appends the scheduled time, so each iteration has its own workflow id.
      workflowId: `line-${spec.name}`,
    },
    policies: {
      overlap: overlapPolicy(spec.overlap),
      catchupWindow: durationMs(spec.catchupWindow),
      pauseOnFailure: spec.pauseOnFailure,
    },
  };
}

async function refuseTakenName(clients: Clients, name: string): Promise<void> {
  const row = await clients.db
    .selectFrom('lines')
    .select(['deleted_at'])
    .where('name', '=', name)
    .executeTakeFirst();
  if (!row) return;
  // Deleted lines keep their rows (history, champions), so their names stay taken.
  throw new UserError(
    row.deleted_at
      ? `name: a deleted line named ${name} still holds this name (its history is kept); choose another name`
      : `name: a line named ${name} already exists`,
  );
}

async function insertLineRows(clients: Clients, loaded: LoadedLineSpec): Promise<void> {
  const { spec } = loaded;
  const questions = await loadSpecQuestions(loaded.campaign);
  // The file may have changed since the spec was loaded: check the gate's minimum again.
  if (questions.eval.length < spec.promotion.minHeldOut) {
    throw new UserError(
      `promotion.minHeldOut: ${spec.promotion.minHeldOut} held-out questions needed, but there are ${questions.eval.length}`,
    );
  }
  await clients.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('lines')
      .values({
        name: spec.name,
        spec: JSON.stringify(spec),
        spec_file: loaded.file,
        spec_dir: loaded.dir,
        schedule_id: lineScheduleId(spec.name),
        task_queue: clients.services.taskQueue,
      })
      .execute();
    await trx
      .insertInto('line_heldout')
      .values(
        questions.eval.map((q) => ({
          line: spec.name,
          ordinal: q.ordinal,
          id: q.id,
          title: q.title,
          question: q.question,
          reference: q.reference,
          content_hash: q.contentHash,
        })),
      )
      .execute();
  });
}

/** Rows in one transaction, then the Schedule; a refused or failed create leaves nothing behind. */
export async function createLine(
  clients: Clients,
  loaded: LoadedLineSpec,
  opts: CreateLineOptions = {},
): Promise<CreatedLine> {
  const { name } = loaded.spec;
  await refuseTakenName(clients, name);
  if (opts.preflight !== false) await checkServices(loaded.campaign, opts.env);
  await insertLineRows(clients, loaded);
  try {
    await clients.temporal.schedule.create(lineScheduleOptions(loaded.spec, clients.services.taskQueue));
  } catch (err) {
    await clients.db.deleteFrom('lines').where('name', '=', name).execute();
    // The server checks cron expressions and time zones; the SDK turns its refusal into a TypeError.
    if (err instanceof TypeError)
      throw new UserError(`Invalid line spec ${loaded.file}:`, [`schedule: ${err.message}`]);
    if (err instanceof ScheduleAlreadyRunning) {
      throw new UserError(
        `name: Temporal already has a schedule ${err.scheduleId} (not made by this database); delete it or choose another name`,
      );
    }
    throw err;
  }
  return { name, scheduleId: lineScheduleId(name) };
}

async function lineRow(clients: Clients, name: string) {
  const row = await clients.db.selectFrom('lines').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) throw new UserError(`no line named ${name}`);
  return row;
}

/** The schedule of a line that is not deleted. */
async function liveSchedule(
  clients: Clients,
  name: string,
): Promise<{ handle: ScheduleHandle; spec: LineSpec }> {
  const row = await lineRow(clients, name);
  if (row.deleted_at) throw new UserError(`line ${name} was deleted`);
  return { handle: clients.temporal.schedule.getHandle(row.schedule_id), spec: row.spec as LineSpec };
}

async function describeOrNull(handle: ScheduleHandle): Promise<ScheduleDescription | null> {
  try {
    return await handle.describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return null;
    throw err;
  }
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export async function lineStatus(clients: Clients, name: string): Promise<LineStatus> {
  const row = await lineRow(clients, name);
  const { db } = clients;
  const [champion, iterations, described] = await Promise.all([
    db
      .selectFrom('line_champions')
      .selectAll()
      .where('line', '=', name)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst(),
    db.selectFrom('line_iterations').selectAll().where('line', '=', name).orderBy('iteration').execute(),
    row.deleted_at
      ? Promise.resolve(null)
      : describeOrNull(clients.temporal.schedule.getHandle(row.schedule_id)),
  ]);
  const state: LineState = row.deleted_at
    ? 'deleted'
    : !described
      ? 'missing'
      : described.state.paused
        ? 'paused'
        : 'active';
  const next = described?.state.paused ? undefined : described?.info.nextActionTimes[0];
  return {
    name: row.name,
    state,
    scheduleId: row.schedule_id,
    champion: champion
      ? {
          campaignId: champion.campaign_id,
          label: champion.label,
          servedModel: champion.served_model,
          kind: champion.kind,
          at: champion.at.toISOString(),
        }
      : null,
    iterations: iterations.map((it) => ({
      iteration: it.iteration,
      campaignId: it.campaign_id,
      state: it.state,
      promoted: it.promoted,
      reason: it.reason,
      startedAt: it.started_at.toISOString(),
      finishedAt: iso(it.finished_at),
    })),
    nextRunAt: next ? next.toISOString() : null,
    note: described?.state.note ?? null,
    campaignFile: (row.spec as LineSpec).campaign,
    createdAt: row.created_at.toISOString(),
    deletedAt: iso(row.deleted_at),
  };
}

/** Every line, oldest first, deleted ones included (their state says so). */
export async function listLines(clients: Clients): Promise<LineStatus[]> {
  const rows = await clients.db
    .selectFrom('lines')
    .select('name')
    .orderBy('created_at')
    .orderBy('name')
    .execute();
  const out: LineStatus[] = [];
  for (const r of rows) out.push(await lineStatus(clients, r.name));
  return out;
}

/** The campaign workflow of the line's running iteration, if one runs now. */
async function runningCampaignWorkflow(
  clients: Clients,
  name: string,
): Promise<{ campaignId: string; workflowId: string } | null> {
  const row = await clients.db
    .selectFrom('line_iterations')
    .innerJoin('campaigns', 'campaigns.id', 'line_iterations.campaign_id')
    .select(['campaigns.id as campaignId', 'campaigns.workflow_id as workflowId'])
    .where('line_iterations.line', '=', name)
    .where('line_iterations.state', '=', 'running')
    .orderBy('line_iterations.iteration', 'desc')
    .executeTakeFirst();
  return row ?? null;
}

export interface PauseResult {
  /** The running iteration's campaign that was signalled too, if any. */
  campaignId: string | null;
}

/** Pauses the schedule (no new iterations); with `running`, also pauses the running campaign. */
export async function pauseLine(
  clients: Clients,
  name: string,
  opts: { running?: boolean; note?: string } = {},
): Promise<PauseResult> {
  const { handle } = await liveSchedule(clients, name);
  await handle.pause(opts.note ?? 'paused via meteorctl');
  if (!opts.running) return { campaignId: null };
  const running = await runningCampaignWorkflow(clients, name);
  if (!running) return { campaignId: null };
  await clients.temporal.workflow.getHandle(running.workflowId).signal(pauseSignal);
  return { campaignId: running.campaignId };
}

/** Unpauses the schedule and resumes the running campaign (a no-op for one that is not paused). */
export async function unpauseLine(
  clients: Clients,
  name: string,
  opts: { note?: string } = {},
): Promise<PauseResult> {
  const { handle } = await liveSchedule(clients, name);
  await handle.unpause(opts.note ?? 'unpaused via meteorctl');
  const running = await runningCampaignWorkflow(clients, name);
  if (!running) return { campaignId: null };
  await clients.temporal.workflow.getHandle(running.workflowId).signal(resumeSignal);
  return { campaignId: running.campaignId };
}

/** Starts an iteration now. The line's overlap policy applies (the SDK's default would be ALLOW_ALL). */
export async function triggerLine(clients: Clients, name: string): Promise<void> {
  const { handle, spec } = await liveSchedule(clients, name);
  await handle.trigger(overlapPolicy(spec.overlap));
}

/** Removes the schedule; the line's rows, campaigns and models stay for the record. */
export async function deleteLine(clients: Clients, name: string): Promise<{ alreadyDeleted: boolean }> {
  const row = await lineRow(clients, name);
  if (row.deleted_at) return { alreadyDeleted: true };
  try {
    await clients.temporal.schedule.getHandle(row.schedule_id).delete();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
  await clients.db.updateTable('lines').set({ deleted_at: new Date() }).where('name', '=', name).execute();
  return { alreadyDeleted: false };
}

export interface ChampionRef {
  campaignId: string;
  label: string;
  servedModel: string;
}

/** A person makes a model of one of the line's iterations the champion; kept with who and why. */
export async function promoteLine(
  clients: Clients,
  name: string,
  opts: { campaignId: string; label: string | null; actor: string; why: string | null },
): Promise<ChampionRef> {
  await lineRow(clients, name);
  const { db } = clients;
  const campaign = await db
    .selectFrom('campaigns')
    .select(['id', 'line_name'])
    .where('id', '=', opts.campaignId)
    .executeTakeFirst();
  if (!campaign || campaign.line_name !== name) {
    throw new UserError(`--campaign: ${opts.campaignId} is not an iteration of line ${name}`);
  }
  const models = await db
    .selectFrom('model_versions')
    .selectAll()
    .where('campaign_id', '=', opts.campaignId)
    .orderBy('created_at')
    .orderBy('label')
    .execute();
  const model = opts.label
    ? models.find((m) => m.label === opts.label)
    : [...models].reverse().find((m) => m.stage !== null);
  if (!model) {
    throw new UserError(
      opts.label
        ? `--label: campaign ${opts.campaignId} has no model ${opts.label} (it has ${models.map((m) => m.label).join(', ')})`
        : `--campaign: ${opts.campaignId} made no fine-tuned model`,
    );
  }
  await db
    .insertInto('line_champions')
    .values({
      line: name,
      campaign_id: opts.campaignId,
      label: model.label,
      served_model: model.served_model,
      checkpoint_uri: model.checkpoint_uri,
      kind: 'promote',
      actor: opts.actor,
      why: opts.why,
    })
    .execute();
  return { campaignId: opts.campaignId, label: model.label, servedModel: model.served_model };
}

/** The champion before the current one becomes the champion again; kept with who and why. */
export async function rollbackLine(
  clients: Clients,
  name: string,
  opts: { actor: string; why: string | null },
): Promise<ChampionRef> {
  await lineRow(clients, name);
  const history = await clients.db
    .selectFrom('line_champions')
    .selectAll()
    .where('line', '=', name)
    .orderBy('id', 'desc')
    .execute();
  const current = history[0];
  const previous = history.find(
    (h) => current && (h.campaign_id !== current.campaign_id || h.label !== current.label),
  );
  if (!current || !previous) {
    throw new UserError(`line ${name} has no earlier champion to roll back to`);
  }
  await clients.db
    .insertInto('line_champions')
    .values({
      line: name,
      campaign_id: previous.campaign_id,
      label: previous.label,
      served_model: previous.served_model,
      checkpoint_uri: previous.checkpoint_uri,
      kind: 'rollback',
      actor: opts.actor,
      why: opts.why,
    })
    .execute();
  return { campaignId: previous.campaign_id, label: previous.label, servedModel: previous.served_model };
}
