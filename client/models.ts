/**
 * `meteorctl model register` (deploy: manual): the user has served a fine-tuned checkpoint
 * out of band and names it; the fine-tune workflow waiting for that name registers the version
 * and the campaign goes on with it.
 */
import { getCampaign } from '../core/campaigns';
import { UserError } from '../core/errors';
import { scrubSecrets, secretValues } from '../core/secrets';
import { modelRegisteredSignal } from '../workflows/messages';
import { findAwaitingRegistration } from './awaiting-registration';
import type { Clients } from './connect';
import { checkEndpoint } from './preflight';
import { getCampaignRow } from './status';

export interface RegisteredModel {
  campaignId: string;
  label: string;
  servedModel: string;
}

export interface RegisterOptions {
  /** Check first that the weak endpoint serves the name (GET /models). */
  check: boolean;
  /** How long to wait for the campaign to take the name. */
  timeoutMs: number;
  env: NodeJS.ProcessEnv;
}

export async function registerServedModel(
  clients: Clients,
  campaignId: string,
  label: string,
  servedModel: string,
  opts: RegisterOptions,
): Promise<RegisteredModel> {
  const { db, temporal } = clients;
  const row = await getCampaignRow(db, campaignId);
  const { spec } = await getCampaign(db, campaignId);
  if (spec.deploy.type !== 'manual') {
    throw new UserError(
      `campaign ${campaignId} has deploy.type ${spec.deploy.type}: only 'manual' campaigns wait for a registered name`,
    );
  }
  const waiting = await findAwaitingRegistration(clients, campaignId, row.workflow_id);
  if (!waiting) {
    throw new UserError(
      `campaign ${campaignId} is not waiting for a served name (it waits once a fine-tune has finished; see \`meteorctl campaign status ${campaignId}\`)`,
    );
  }
  if (waiting.label !== label) {
    throw new UserError(
      `campaign ${campaignId} waits for ${waiting.label} (${waiting.checkpointUri}), not ${label}`,
    );
  }
  if (opts.check) {
    const weak = { ...spec.models.weak, model: servedModel };
    const problem = await checkEndpoint('weak', weak, opts.env, secretValues(opts.env));
    if (problem) {
      throw new UserError(
        `${scrubSecrets(problem, secretValues(opts.env))} (serve it first, or pass --no-check)`,
      );
    }
  }
  await temporal.workflow.getHandle(waiting.workflowId).signal(modelRegisteredSignal, { label, servedModel });

  // Return once the campaign has taken it, so the next command sees the version.
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const version = await db
      .selectFrom('model_versions')
      .select('served_model')
      .where('campaign_id', '=', campaignId)
      .where('label', '=', label)
      .executeTakeFirst();
    if (version) return { campaignId, label, servedModel: version.served_model };
    if (Date.now() > deadline) {
      throw new UserError(
        `the name was sent, but campaign ${campaignId} has not registered ${label} within ${Math.round(opts.timeoutMs / 1000)} s: is a worker running?`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
