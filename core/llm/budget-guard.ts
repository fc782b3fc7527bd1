/**
 * The budget, checked as spend happens: before a call goes out (its endpoint slot already held),
 * the guard compares the live sum of the campaign's paid calls (`llm_calls.cost_usd`) with
 * `budget.maxCostUsd` and with the stage's `maxCostUsd` — each raised, if the user did, by
 * `campaign resume --max-cost-usd` (`campaigns.budget_override`). Nothing is cached: a cached
 * sum would let calls start after the budget was reached by answers the cache has not seen,
 * and the overshoot is meant to be at most the calls already in flight.
 */
import { sql } from 'kysely';
import type { Db } from '../db/connection';
import type { BudgetOverride } from '../db/types';

export interface BudgetScope {
  campaignId: string;
  stage: string;
}

export interface BudgetGuard {
  /** Throws BudgetReachedError when the campaign's or the stage's budget is reached. */
  check(scope: BudgetScope): Promise<void>;
}

/** No new call may start: the campaign pauses with this message as its reason. */
export class BudgetReachedError extends Error {
  override name = 'BudgetReachedError';
}

const usd = (x: number) => `$${x.toFixed(4).replace(/\.?0+$/, '')}`;

interface Limits {
  spec_max: string | null;
  spec_stage_max: string | null;
  budget_override: BudgetOverride | null;
  spent: number | null;
  stage_spent: number | null;
}

export function databaseBudgetGuard(db: Db): BudgetGuard {
  return {
    async check({ campaignId, stage }) {
      // The sums are computed only for the limits that exist (CASE evaluates its subqueries lazily).
      const campaignLimit = sql`coalesce(c.budget_override->>'maxCostUsd', c.spec->'budget'->>'maxCostUsd')`;
      const stageLimit = sql`coalesce(c.budget_override->'stages'->>${stage}, c.spec->'stages'->${stage}->>'maxCostUsd')`;
      const { rows } = await sql<Limits>`
        select c.spec->'budget'->>'maxCostUsd' as spec_max,
               c.spec->'stages'->${stage}->>'maxCostUsd' as spec_stage_max,
               c.budget_override,
               case when ${campaignLimit} is null then null else
                 (select coalesce(sum(l.cost_usd), 0)::float8 from llm_calls l
                   where l.campaign_id = c.id and l.status = 'ok') end as spent,
               case when ${stageLimit} is null then null else
                 (select coalesce(sum(l.cost_usd), 0)::float8 from llm_calls l
                   where l.campaign_id = c.id and l.stage = ${stage} and l.status = 'ok') end as stage_spent
          from campaigns c where c.id = ${campaignId}`.execute(db);
      const row = rows[0];
      if (!row) return;
      const limit = row.budget_override?.maxCostUsd ?? (row.spec_max === null ? null : Number(row.spec_max));
      if (limit !== null && row.spent !== null && row.spent >= limit) {
        throw new BudgetReachedError(
          `budget reached: ${usd(row.spent)} of ${usd(limit)}; raise budget.maxCostUsd and resume ` +
            `(\`meteorctl campaign resume ${campaignId} --max-cost-usd N\`)`,
        );
      }
      const stageMax =
        row.budget_override?.stages?.[stage] ??
        (row.spec_stage_max === null ? null : Number(row.spec_stage_max));
      if (
        stageMax !== null &&
        stageMax !== undefined &&
        row.stage_spent !== null &&
        row.stage_spent >= stageMax
      ) {
        throw new BudgetReachedError(
          `budget of stage ${stage} reached: ${usd(row.stage_spent)} of ${usd(stageMax)}; raise ` +
            `stages.${stage}.maxCostUsd and resume (\`meteorctl campaign resume ${campaignId} --max-cost-usd N ` +
            `--stage ${stage}\`)`,
        );
      }
    },
  };
}
