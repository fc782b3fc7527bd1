/**
 * Reading what stages produced, streamed from Postgres: the examples a stage trains on and the
 * audit lines that lead back to the LLM calls behind each record. One file per stage; used by
 * the export activities and the CLI.
 */
import type { Db } from '../db/connection';
import { distillAudit } from './distill';

export { distillSftExamples } from './distill';

export const AUDIT_STAGES = ['distill'] as const;
export type AuditStage = (typeof AUDIT_STAGES)[number];

/** One JSON object per record of the stage, with the ids of the LLM calls that made it. */
export function auditRecords(
  db: Db,
  campaignId: string,
  stage: AuditStage,
): AsyncGenerator<Record<string, unknown>> {
  switch (stage) {
    case 'distill':
      return distillAudit(db, campaignId);
  }
}
