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
import type { ForecastMarker } from '../core/db/types';
import { UserError } from '../core/errors';
import type { Forecast } from '../core/forecast';
import type { Clients } from './connect';
import { latestForecast, specHash } from './forecast';
import { checkServices, loadSpecQuestions, type LoadedQuestions } from './preflight';

export interface LaunchOptions {
  /** Check API keys, endpoints and the fine-tune backend before creating anything (default true). */
  preflight?: boolean;
  /** With the preflight: send the canary, each kind of request the stages will (default true). */
  canary?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Passed to the campaign workflow (tests use it to force continue-as-new). */
  workflowInput?: Omit<CampaignInput, 'campaignId'>;
  /** Launch even when the latest forecast of this spec exceeds `budget.maxCostUsd` (`--yes`). */
  overBudget?: boolean;
  /** A forecast run (client/forecast.ts): these sampled questions, marked, never fine-tuned. */
  forecast?: { questions: LoadedQuestions; marker: ForecastMarker };
}

export interface Launched {
  campaignId: string;
  workflowId: string;
  /** The latest forecast of this spec and questions (`campaign plan`), if one was made. */
  forecast: { campaignId: string; forecast: Forecast } | null;
  /** The preflight's canary: requests answered, and how long it took; null with --no-preflight. */
  canary: { requests: number; ms: number } | null;
}

export async function launchCampaign(
  clients: Clients,
  loaded: LoadedSpec,
  opts: LaunchOptions = {},
): Promise<Launched> {
  const questions = opts.forecast?.questions ?? (await loadSpecQuestions(loaded));
  const forecast = opts.forecast ? null : await latestForecast(clients.db, specHash(loaded.spec, questions));
  const budget = loaded.spec.budget.maxCostUsd;
  if (forecast && budget !== undefined && forecast.forecast.total.costUsd > budget && !opts.overBudget) {
    const t = forecast.forecast.total;
    throw new UserError(
      `The forecast of this campaign (${forecast.campaignId}) is $${t.costUsd.toFixed(2)} ` +
        `(95% range $${t.costRange.lo.toFixed(2)}–$${t.costRange.hi.toFixed(2)}, ${t.calls} calls), over ` +
        `budget.maxCostUsd $${budget.toFixed(2)}: raise the budget, or launch with --yes (the campaign then ` +
        'pauses when the budget is reached). Nothing was created.',
    );
  }
  const canary =
    opts.preflight !== false ? await checkServices(loaded, opts.env, { canary: opts.canary ?? true }) : null;

  const campaignId = `${loaded.spec.name}-${opts.forecast ? 'forecast-' : ''}${randomBytes(3).toString('hex')}`;
  const workflowId = campaignWorkflowId(campaignId);
  const { db, temporal, services } = clients;
  await db.transaction().execute(async (trx) => {
    await insertCampaign(trx, {
      id: campaignId,
      workflowId,
      taskQueue: services.taskQueue,
      loaded,
      questions: [...questions.train, ...questions.eval],
      ...(opts.forecast ? { forecast: opts.forecast.marker } : {}),
    });
    // The canary's answers were paid for: logged, and counted in the spend, as stage `preflight`.
    if (canary && canary.calls.length > 0) {
      await trx
        .insertInto('llm_calls')
        .values(
          canary.calls.map((c) => ({
            campaign_id: campaignId,
            stage: 'preflight',
            iteration: 0,
            request_hash: c.requestHash,
            role: c.role,
            base_url: c.baseUrl,
            model: c.model,
            purpose: c.purpose,
            prompt_version: 'canary.v1',
            request: c.request,
            response: c.response,
            status: 'ok' as const,
            http_status: 200,
            prompt_tokens: c.promptTokens,
            completion_tokens: c.completionTokens,
            cached_tokens: c.cachedTokens,
            latency_ms: c.latencyMs,
            cost_usd: c.costUsd,
          })),
        )
        .execute();
    }
  });

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
  return {
    campaignId,
    workflowId,
    forecast,
    canary: canary && opts.canary !== false ? { requests: canary.calls.length, ms: canary.ms } : null,
  };
}
