/** Counting one iteration's rows of a record table keyed by (campaign, iteration, question). */
import { sql } from 'kysely';
import type { Db } from '../db/connection';

export async function iterationRowCount(
  db: Db,
  table: 'distill_records' | 'preference_pairs',
  campaignId: string,
  iteration: number,
): Promise<number> {
  const row = await db
    .selectFrom(table)
    .select(sql<number>`count(*)::int`.as('n'))
    .where('campaign_id', '=', campaignId)
    .where('iteration', '=', iteration)
    .executeTakeFirstOrThrow();
  return row.n;
}
