/** deploy: manual — the model version a campaign waits to have served and registered, if any. */
import { WorkflowNotFoundError } from '@temporalio/client';
import { sql } from 'kysely';
import { awaitingRegistrationQuery } from '../workflows/messages';
import type { Clients } from './connect';

export interface AwaitingVersion {
  /** The fine-tune workflow that waits (`model register` signals it). */
  workflowId: string;
  label: string;
  checkpointUri: string;
}

export async function findAwaitingRegistration(
  clients: Clients,
  campaignId: string,
  campaignWorkflowId: string,
): Promise<AwaitingVersion | null> {
  // Finished jobs without a model version: only their fine-tune workflows can be waiting.
  const pending = await clients.db
    .selectFrom('finetune_jobs as j')
    .select(['j.stage', 'j.iteration'])
    .where('j.campaign_id', '=', campaignId)
    .where('j.status', '=', 'succeeded')
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('model_versions as v')
            .select(sql`1`.as('one'))
            .whereRef('v.finetune_job_id', '=', 'j.id'),
        ),
      ),
    )
    .execute();
  for (const job of pending) {
    const workflowId = `${campaignWorkflowId}-finetune-${job.stage}-${job.iteration}`;
    try {
      const awaiting = await clients.temporal.workflow.getHandle(workflowId).query(awaitingRegistrationQuery);
      if (awaiting) return { workflowId, ...awaiting };
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return null;
}
