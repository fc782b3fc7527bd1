/**
 * Reading what stages produced, streamed from Postgres: the examples a stage trains on, its
 * record counts and metrics, and the audit lines that lead back to the LLM calls behind each
 * record. One file per stage; this one dispatches by stage name.
 */
import type { Db } from '../db/connection';
import type { StageName } from '../../workflows/types';
import { assessAudit, assessMetrics, assessRecordCount } from './assess';
import { contrastAudit, contrastMetrics, contrastRecordCount } from './contrast';
import { distillAudit, distillMetrics, distillRecordCount } from './distill';
import { evaluateAudit, evaluateMetrics, evaluateRecordCount } from './evaluate';
import { failedAudit } from './failed';

export { failedCount } from './failed';

export { assessSftExamples } from './assess';
export { contrastPreferenceExamples } from './contrast';
export { distillSftExamples } from './distill';

export const AUDIT_STAGES = [
  'distill',
  'assess',
  'contrast',
  'evaluate',
] as const satisfies readonly StageName[];
export type AuditStage = (typeof AUDIT_STAGES)[number];

/**
 * One JSON object per record of the stage (all iterations), with the ids of the LLM calls that
 * made it; then one per question the stage gave up on, with `failed: {reason, httpStatus, attempts}`.
 */
export async function* auditRecords(
  db: Db,
  campaignId: string,
  stage: StageName,
): AsyncGenerator<Record<string, unknown>> {
  yield* stageAudit(db, campaignId, stage);
  yield* failedAudit(db, campaignId, stage);
}

function stageAudit(db: Db, campaignId: string, stage: StageName): AsyncGenerator<Record<string, unknown>> {
  switch (stage) {
    case 'distill':
      return distillAudit(db, campaignId);
    case 'assess':
      return assessAudit(db, campaignId);
    case 'contrast':
      return contrastAudit(db, campaignId);
    case 'evaluate':
      return evaluateAudit(db, campaignId);
  }
}

/** Records of one iteration of a stage (the `records` of its progress). */
export function stageRecordCount(
  db: Db,
  campaignId: string,
  stage: StageName,
  iteration: number,
): Promise<number> {
  switch (stage) {
    case 'distill':
      return distillRecordCount(db, campaignId, iteration);
    case 'assess':
      return assessRecordCount(db, campaignId, iteration);
    case 'contrast':
      return contrastRecordCount(db, campaignId, iteration);
    case 'evaluate':
      return evaluateRecordCount(db, campaignId, iteration);
  }
}

/** Stage-specific figures kept in `stage_runs.metrics` when an iteration finishes. */
export function stageMetrics(
  db: Db,
  campaignId: string,
  stage: StageName,
  iteration: number,
): Promise<Record<string, number>> {
  switch (stage) {
    case 'distill':
      return distillMetrics(db, campaignId, iteration);
    case 'assess':
      return assessMetrics(db, campaignId, iteration);
    case 'contrast':
      return contrastMetrics(db, campaignId, iteration);
    case 'evaluate':
      return evaluateMetrics(db, campaignId, iteration);
  }
}
