/**
 * Reading what stages produced, streamed from Postgres: each stage's records and audit lines come
 * from its definition (stages/<name>/records.ts); the questions a stage gave up on, from here.
 */
import type { Db } from '../db/connection';
import { stageDefinition, type StageName } from '../../stages/registry';
import { failedAudit } from './failed';

export { failedCount } from './failed';

/**
 * One JSON object per record of the stage (all iterations), with the ids of the LLM calls that
 * made it; then one per question the stage gave up on, with `failed: {reason, httpStatus, attempts}`.
 */
export async function* auditRecords(
  db: Db,
  campaignId: string,
  stage: StageName,
): AsyncGenerator<Record<string, unknown>> {
  yield* stageDefinition(stage).records.audit(db, campaignId);
  yield* failedAudit(db, campaignId, stage);
}

/** Records of one iteration of a stage (the `records` of its progress). */
export function stageRecordCount(
  db: Db,
  campaignId: string,
  stage: StageName,
  iteration: number,
): Promise<number> {
  return stageDefinition(stage).records.count(db, campaignId, iteration);
}

/** Stage-specific figures kept in `stage_runs.metrics` when an iteration finishes. */
export function stageMetrics(
  db: Db,
  campaignId: string,
  stage: StageName,
  iteration: number,
): Promise<Record<string, number>> {
  return stageDefinition(stage).records.metrics(db, campaignId, iteration);
}
