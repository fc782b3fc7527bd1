/**
 * What a stage paused by an outage or the budget needs: a cheap probe of the endpoint that was
 * down, forgetting the outage once resumed, and the pause's reason on the campaign row (for
 * `campaign list` and `status` when no worker answers).
 */
import OpenAI from 'openai';
import { getCampaign } from '../core/campaigns';
import { UserError } from '../core/errors';
import { isOutageFailure, resetEndpointHealth } from '../core/llm/endpoint-health';
import { resolveApiKey } from '../core/llm/gateway';
import { durationMs } from '../core/duration';
import { ROLES, type Role } from '../core/spec';
import type { ActivityDeps } from './context';

/** A probe waits no longer than this for an answer, whatever the endpoint's own timeout. */
const PROBE_TIMEOUT_MS = 15_000;

export function outageActivities({ db, env }: ActivityDeps) {
  return {
    /** Whether the endpoint of `role` answers again (GET /models: no tokens, no cost). */
    async probeEndpoint({ campaignId, role }: { campaignId: string; role: string }): Promise<boolean> {
      const { spec } = await getCampaign(db, campaignId);
      const ep = (ROLES as readonly string[]).includes(role) ? spec.models[role as Role] : undefined;
      if (!ep) throw new UserError(`campaign ${campaignId} has no ${role} endpoint to probe`);
      const client = new OpenAI({
        baseURL: ep.baseURL,
        apiKey: resolveApiKey({ ...ep, role: role as Role }, env),
        timeout: Math.min(PROBE_TIMEOUT_MS, durationMs(ep.timeout)),
        maxRetries: 0,
      });
      try {
        await client.models.list();
        return true;
      } catch (err) {
        // Any answer but a 5xx (a 404 from a server without /models, say) means it is back.
        return !isOutageFailure(err);
      }
    },

    async resetEndpointHealth(key: { campaignId: string; stage: string; iteration: number }): Promise<void> {
      await resetEndpointHealth(db, key);
    },

    /** The campaign paused itself (reason) or went on (null). */
    async recordPause({ campaignId, reason }: { campaignId: string; reason: string | null }): Promise<void> {
      await db
        .updateTable('campaigns')
        .set({ state: reason === null ? 'running' : 'paused', pause_reason: reason, updated_at: new Date() })
        .where('id', '=', campaignId)
        .where('state', 'in', ['running', 'paused'])
        .execute();
    },
  };
}
