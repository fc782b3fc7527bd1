/** Reading a campaign back from the database, for activities and the CLI alike. */
import type { Transaction } from 'kysely';
import type { Db } from './db/connection';
import type { Campaign, Database, ForecastMarker } from './db/types';
import { UserError } from './errors';
import type { Question } from './questions';
import type { LoadedSpec } from './spec-file';
import { CampaignSpecSchema, type CampaignSpec } from './spec';

export interface LoadedCampaign {
  row: Campaign;
  spec: CampaignSpec;
}

export async function getCampaign(db: Db, campaignId: string): Promise<LoadedCampaign> {
  const row = await db.selectFrom('campaigns').selectAll().where('id', '=', campaignId).executeTakeFirst();
  if (!row) throw new UserError(`No campaign "${campaignId}" (see \`meteorctl campaign list\`)`);
  return { row, spec: CampaignSpecSchema.parse(row.spec) };
}

const INSERT_CHUNK = 1000;

/**
 * Writes a campaign and its questions (inside the caller's transaction): the one place campaign
 * rows are made, for a launch and for an evolution line's iteration alike.
 */
export async function insertCampaign(
  trx: Transaction<Database>,
  c: {
    id: string;
    workflowId: string;
    taskQueue: string;
    loaded: LoadedSpec;
    questions: Question[];
    line?: { name: string; iteration: number };
    /** A forecast run's marker (client/forecast.ts). */
    forecast?: ForecastMarker;
  },
): Promise<void> {
  await trx
    .insertInto('campaigns')
    .values({
      id: c.id,
      name: c.loaded.spec.name,
      domain: c.loaded.spec.domain,
      spec: JSON.stringify(c.loaded.spec),
      spec_file: c.loaded.file,
      spec_dir: c.loaded.dir,
      workflow_id: c.workflowId,
      task_queue: c.taskQueue,
      line_name: c.line?.name ?? null,
      line_iteration: c.line?.iteration ?? null,
      forecast: c.forecast ? JSON.stringify(c.forecast) : null,
    })
    .execute();
  for (let i = 0; i < c.questions.length; i += INSERT_CHUNK) {
    await trx
      .insertInto('questions')
      .values(
        c.questions.slice(i, i + INSERT_CHUNK).map((q) => ({
          campaign_id: c.id,
          id: q.id,
          split: q.split,
          ordinal: q.ordinal,
          title: q.title,
          question: q.question,
          reference: q.reference,
          content_hash: q.contentHash,
        })),
      )
      .execute();
  }
}
