/**
 * Reading what stages produced, streamed from Postgres: each stage's records and audit lines come
 * from its definition (stages/<name>/records.ts); the questions a stage gave up on, from here.
 */
import type { Db } from '../db/connection';
import { stageDefinition, type StageName } from '../../stages/registry';
import { failedAudit } from './failed';
import { auditKey, auditRowScores, rowFilterFigures } from './row-scores';
import { getCampaign } from '../campaigns';
import type { RowFilterSpec } from '../../stages/options';
import type { BaseStageOptions } from '../../stages/stage';
import { evolvedOrigins, markSynthetic } from './shared';

export { failedCount } from './failed';

/**
 * One JSON object per record of the stage (all iterations), with the ids of the LLM calls that
 * made it; then one per question the stage gave up on, with `failed: {reason, httpStatus, attempts}`.
 * A line about an evolved question says so in its header (`synthetic: true`, `evolvedFrom`).
 */
export async function* auditRecords(
  db: Db,
  campaignId: string,
  stage: StageName,
): AsyncGenerator<Record<string, unknown>> {
  const origins = await evolvedOrigins(db, campaignId);
  // A stage with a row filter: each line carries its question's row scores (`rowScores`).
  const scores = (await filterOf(db, campaignId, stage)) ? await auditRowScores(db, campaignId, stage) : null;
  for await (const line of stageDefinition(stage).records.audit(db, campaignId)) {
    const { iteration, questionId } = line;
    const rowScores =
      scores && typeof iteration === 'number' && typeof questionId === 'string'
        ? (scores.get(auditKey(iteration, questionId)) ?? [])
        : null;
    yield markSynthetic(rowScores ? { ...line, rowScores } : line, origins);
  }
  for await (const line of failedAudit(db, campaignId, stage)) yield markSynthetic(line, origins);
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
export async function stageMetrics(
  db: Db,
  campaignId: string,
  stage: StageName,
  iteration: number,
): Promise<Record<string, number>> {
  const own = await stageDefinition(stage).records.metrics(db, campaignId, iteration);
  const filter = await filterOf(db, campaignId, stage);
  return filter
    ? { ...own, ...(await rowFilterFigures(db, campaignId, stage, iteration, filter.minScore)) }
    : own;
}

/** The stage's row filter in the campaign's spec, if it has one. */
async function filterOf(db: Db, campaignId: string, stage: StageName): Promise<RowFilterSpec | undefined> {
  const { spec } = await getCampaign(db, campaignId);
  const options: BaseStageOptions = spec.stages[stage];
  return options.filter;
}
