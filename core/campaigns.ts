/** Reading a campaign back from the database, for activities and the CLI alike. */
import type { Db } from './db/connection';
import type { Campaign } from './db/types';
import { UserError } from './errors';
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
