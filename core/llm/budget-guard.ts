/**
 * The budget, checked as spend happens: before a call goes out (its endpoint slot already held),
 * the guard compares the live spend of the campaign — `campaign_spend`, the sum of
 * `llm_calls.cost_usd` a trigger keeps on every insert — with `budget.maxCostUsd` and with the
 * stage's `maxCostUsd`, each raised, if the user did, by `campaign resume --max-cost-usd`
 * (`campaigns.budget_override`). Nothing is cached: a cached sum would let calls start after the
 * budget was reached by answers the cache has not seen, and the overshoot is meant to be at most
 * the calls already in flight. Checks asked while one is being read are answered together by the
 * next read (group commit): each still reads the spend as of after it was asked.
 *
 * A check is waited for with the endpoint slot held, so its wait is time the endpoint's slot does
 * no work: reads go out without the per-call statement interval and two may be in flight at once,
 * so a check asked while one is being read waits for its own read only. A read is a few index
 * lookups, so these extra statements cost PostgreSQL little (issue #9's bench: the slot's wait for
 * it went from about 12 ms to 8 ms of a 50 ms call).
 *
 * Most calls need no read of their own: the statement that logs an answer reads the budget too,
 * its own answers' cost included (`budgetReadingsSql`), while that answer's endpoint slot is still
 * held, and the slot passes with this reading to the process's next call of the endpoint
 * (`Lease.note`). A call that gets a slot so, of the same campaign and stage and within budget,
 * starts on that reading: it was taken while the slot was held — by the call before, not by this
 * one — so still at most one call per slot starts on a reading older than the spend, and the
 * overshoot stays the calls in flight. A reading that says the budget is reached is not trusted
 * (the budget may have been raised since): the call reads for itself.
 */
import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../db/connection';
import { compositeKey } from '../composite-key';
import { GroupCommit } from '../db/group-commit';
import type { BudgetOverride } from '../db/types';

export interface BudgetScope {
  campaignId: string;
  stage: string;
}

export interface BudgetGuard {
  /**
   * Throws BudgetReachedError when the campaign's or the stage's budget is reached. `reading`: what
   * the statement logging the last answer of the caller's endpoint slot read (see above).
   */
  check(scope: BudgetScope, reading?: BudgetReading | null): Promise<void>;
}

/** The budget of a campaign and stage as read by the statement that logged an answer of theirs. */
export class BudgetReading {
  constructor(
    readonly campaignId: string,
    readonly stage: string,
    /** Why no call may start (as BudgetReachedError says it), or null: within budget. */
    readonly reached: string | null,
  ) {}

  /** The reading of what a statement read (budgetReadingsSql). */
  static of(limits: BudgetLimits): BudgetReading {
    return new BudgetReading(limits.campaign_id, limits.stage, budgetVerdictOf(limits));
  }

  /** Whether a call of `scope` may start on this reading instead of reading the budget itself. */
  admits(scope: BudgetScope): boolean {
    return this.reached === null && this.campaignId === scope.campaignId && this.stage === scope.stage;
  }
}

/** No new call may start: the campaign pauses with this message as its reason. */
export class BudgetReachedError extends Error {
  override name = 'BudgetReachedError';
}

const usd = (x: number) => `$${x.toFixed(4).replace(/\.?0+$/, '')}`;

/** What a verdict is made of, per campaign and stage (budgetReadingsSql). */
export interface BudgetLimits {
  campaign_id: string;
  stage: string;
  spec_max: string | null;
  spec_stage_max: string | null;
  budget_override: BudgetOverride | null;
  spent: number;
  stage_spent: number;
}

export function databaseBudgetGuard(db: Db): BudgetGuard {
  const checks = new GroupCommit<BudgetScope, string | null>(
    async (scopes) => {
      const verdicts = new Map<string, Promise<string | null>>();
      const keyOf = (s: BudgetScope) => compositeKey(s.campaignId, s.stage);
      for (const s of scopes) if (!verdicts.has(keyOf(s))) verdicts.set(keyOf(s), budgetVerdict(db, s));
      return Promise.all(scopes.map((s) => verdicts.get(keyOf(s)) as Promise<string | null>));
    },
    { maxInFlight: 2 },
  );
  return {
    async check(scope, reading) {
      if (reading?.admits(scope)) return;
      const reached = await checks.submit(scope);
      if (reached !== null) throw new BudgetReachedError(reached);
    },
  };
}

/**
 * The limits and spend of each campaign and stage of `scopes`, a relation named `k` with columns
 * (campaign_id, stage, campaign_cost, stage_cost): the costs are what the statement itself adds
 * to the log (its trigger runs after it), 0 for a plain read.
 */
export function budgetReadingsSql(scopes: RawBuilder<unknown>): RawBuilder<BudgetLimits> {
  return sql<BudgetLimits>`
    select k.campaign_id, k.stage,
           c.spec->'budget'->>'maxCostUsd' as spec_max,
           c.spec->'stages'->k.stage->>'maxCostUsd' as spec_stage_max,
           c.budget_override,
           (select coalesce(sum(s.cost_usd), 0)::float8 from campaign_spend s
             where s.campaign_id = c.id) + k.campaign_cost as spent,
           (select coalesce(sum(s.cost_usd), 0)::float8 from campaign_spend s
             where s.campaign_id = c.id and s.stage = k.stage) + k.stage_cost as stage_spent
      from ${scopes} join campaigns c on c.id = k.campaign_id`;
}

/** Why no call of the scope may start (the budget reached), or null. */
async function budgetVerdict(db: Db, { campaignId, stage }: BudgetScope): Promise<string | null> {
  const { rows } = await budgetReadingsSql(
    sql`(select ${campaignId}::text as campaign_id, ${stage}::text as stage,
                0::float8 as campaign_cost, 0::float8 as stage_cost) k`,
  ).execute(db);
  const row = rows[0];
  return row ? budgetVerdictOf(row) : null;
}

/** The verdict of a reading: why no call of its campaign and stage may start, or null. */
function budgetVerdictOf(row: BudgetLimits): string | null {
  const { campaign_id: campaignId, stage } = row;
  const limit = row.budget_override?.maxCostUsd ?? (row.spec_max === null ? null : Number(row.spec_max));
  if (limit !== null && row.spent >= limit) {
    return (
      `budget reached: ${usd(row.spent)} of ${usd(limit)}; raise budget.maxCostUsd and resume ` +
      `(\`meteorctl campaign resume ${campaignId} --max-cost-usd N\`)`
    );
  }
  const stageMax =
    row.budget_override?.stages?.[stage] ?? (row.spec_stage_max === null ? null : Number(row.spec_stage_max));
  if (stageMax !== null && stageMax !== undefined && row.stage_spent >= stageMax) {
    return (
      `budget of stage ${stage} reached: ${usd(row.stage_spent)} of ${usd(stageMax)}; raise ` +
      `stages.${stage}.maxCostUsd and resume (\`meteorctl campaign resume ${campaignId} --max-cost-usd N ` +
      `--stage ${stage}\`)`
    );
  }
  return null;
}
