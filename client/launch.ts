/**
 * Launching a campaign: preflight, then the campaign and its questions in one transaction, then
 * the workflow. A refused or failed launch leaves nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowIdReusePolicy } from '@temporalio/client';
import { insertCampaign } from '../core/campaigns';
import type { LoadedSpec } from '../core/spec-file';
import { campaignWorkflow, campaignWorkflowId, type CampaignInput } from '../workflows/campaign';
import { MeteorCampaignId } from '../workflows/search-attributes';
import type { Clients } from './connect';
import { checkServices, loadSpecQuestions } from './preflight';

export interface LaunchOptions {
  /** Check API keys, endpoints and the fine-tune backend before creating anything (default true). */
  preflight?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Passed to the campaign workflow (tests use it to force continue-as-new). */
  workflowInput?: Omit<CampaignInput, 'campaignId'>;
}

export interface Launched {
  campaignId: string;
  workflowId: string;
}

export async function launchCampaign(
  clients: Clients,
  loaded: LoadedSpec,
  opts: LaunchOptions = {},
): Promise<Launched> {
  const questions = await loadSpecQuestions(loaded);
  if (opts.preflight !== false) await checkServices(loaded, opts.env);

  const campaignId = `${loaded.spec.name}-${randomBytes(3).toString('hex')}`;
  const workflowId = campaignWorkflowId(campaignId);
  const { db, temporal, services } = clients;
  await db.transaction().execute((trx) =>
    insertCampaign(trx, {
      id: campaignId,
      workflowId,
      taskQueue: services.taskQueue,
      loaded,
      questions: [...questions.train, ...questions.eval],
    }),
  );

  try {
    await temporal.workflow.start(campaignWorkflow, {
      workflowId,
      taskQueue: services.taskQueue,
      args: [{ campaignId, ...opts.workflowInput }],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: [{ key: MeteorCampaignId, value: campaignId }],
    });
  } catch (err) {
    await db.deleteFrom('campaigns').where('id', '=', campaignId).execute();
    throw err;
  }
  return { campaignId, workflowId };
}
