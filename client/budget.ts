/**
 * Raising a campaign's budget (`campaign resume ID --max-cost-usd N [--stage S]`): stored in
 * `campaigns.budget_override`, which the gateway's budget guard reads before every call, so the
 * new limit holds from the next call on — no workflow payload carries it.
 */
import type { Db } from '../core/db/connection';
import type { BudgetOverride } from '../core/db/types';
import { UserError } from '../core/errors';
import { isStageName, stageNames } from '../stages/registry';
import { getCampaignRow } from './status';

export function parseUsd(text: string, flag: string): number {
  const usd = Number(text);
  if (!Number.isFinite(usd) || usd <= 0)
    throw new UserError(`${flag} must be a positive number of USD, got "${text}"`);
  return usd;
}

export async function raiseBudget(
  db: Db,
  campaignId: string,
  maxCostUsd: number,
  stage?: string,
): Promise<void> {
  if (stage !== undefined && !isStageName(stage)) {
    throw new UserError(`--stage must be one of ${stageNames().join(', ')}, got "${stage}"`);
  }
  const row = await getCampaignRow(db, campaignId);
  const current: BudgetOverride = row.budget_override ?? {};
  const next: BudgetOverride =
    stage === undefined
      ? { ...current, maxCostUsd }
      : { ...current, stages: { ...current.stages, [stage]: maxCostUsd } };
  await db
    .updateTable('campaigns')
    .set({ budget_override: JSON.stringify(next), updated_at: new Date() })
    .where('id', '=', campaignId)
    .execute();
}
