/**
 * Replay against forgetting (evolution lines): each training stage's dataset of a line iteration
 * mixes in a share of earlier iterations' rows of the same stage. Which rows is a deterministic
 * function of the dataset's key and the earlier datasets, so the file a fine-tune got and the
 * one `dataset export` writes are the same, and a retried export picks the same rows.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from './db/connection';
import { LineSpecSchema } from './line-spec';
import type { TrainingStage } from '../workflows/types';

/** One replayed row: row `row` (0-based, among its own rows) of an earlier iteration's dataset. */
export interface ReplayPick {
  sourceCampaignId: string;
  sourceIteration: number;
  row: number;
}

/**
 * The rows replayed into (campaign, stage, iteration), given how many rows of its own it has:
 * `round(own · f / (1 − f))` of them, so replayed rows are the share f of the whole dataset.
 */
export async function replayPicks(
  db: Db,
  campaignId: string,
  stage: TrainingStage,
  iteration: number,
  ownRows: number,
): Promise<ReplayPick[]> {
  const campaign = await db
    .selectFrom('campaigns')
    .select(['line_name', 'line_iteration'])
    .where('id', '=', campaignId)
    .executeTakeFirst();
  if (!campaign?.line_name || campaign.line_iteration === null || ownRows === 0) return [];
  const line = await db
    .selectFrom('lines')
    .select('spec')
    .where('name', '=', campaign.line_name)
    .executeTakeFirst();
  if (!line) return [];
  const fraction = LineSpecSchema.parse(line.spec).replay.fraction;
  if (fraction === 0) return [];

  // Earlier iterations' datasets of this stage, each with its own rows (replayed ones left out).
  const sources = await db
    .selectFrom('datasets')
    .innerJoin('campaigns', 'campaigns.id', 'datasets.campaign_id')
    .select([
      'datasets.campaign_id',
      'datasets.iteration',
      'datasets.rows',
      sql<number>`(select count(*)::int from dataset_replay r where r.campaign_id = datasets.campaign_id and r.stage = datasets.stage and r.iteration = datasets.iteration)`.as(
        'replayed',
      ),
    ])
    .where('campaigns.line_name', '=', campaign.line_name)
    .where('campaigns.line_iteration', '<', campaign.line_iteration)
    .where('datasets.stage', '=', stage)
    .where('datasets.format', '=', 'openai')
    .execute();
  const candidates: ReplayPick[] = sources.flatMap((s) =>
    Array.from({ length: Math.max(0, s.rows - s.replayed) }, (_, row) => ({
      sourceCampaignId: s.campaign_id,
      sourceIteration: s.iteration,
      row,
    })),
  );
  const want = Math.min(candidates.length, Math.round((ownRows * fraction) / (1 - fraction)));
  const rank = (p: ReplayPick) =>
    createHash('sha256')
      .update(`${campaignId}|${stage}|${iteration}|${p.sourceCampaignId}|${p.sourceIteration}|${p.row}`)
      .digest('hex');
  return candidates
    .map((p) => ({ p, r: rank(p) }))
    .sort((a, b) => (a.r < b.r ? -1 : a.r > b.r ? 1 : 0))
    .slice(0, want)
    .map(({ p }) => p)
    .sort(
      (a, b) =>
        a.sourceCampaignId.localeCompare(b.sourceCampaignId) ||
        a.sourceIteration - b.sourceIteration ||
        a.row - b.row,
    );
}
