/**
 * The stage workflow's side of provider batches (core/llm/provider-batches.ts): submit a round of
 * the calls that wait for one, poll it, cancel it. Each reads the endpoints from the campaign's spec.
 */
import { Context } from '@temporalio/activity';
import { getCampaign } from '../core/campaigns';
import type { Db } from '../core/db/connection';
import { durationMs } from '../core/duration';
import { BudgetReachedError } from '../core/llm/budget-guard';
import type { Endpoint } from '../core/llm/gateway';
import { ProviderBatches, type BatchCycleKey, type BatchCycleState } from '../core/llm/provider-batches';
import { ROLES } from '../core/spec';
import type { BatchHalt } from '../workflows/types';
import type { ActivityDeps } from './context';
import { runWithHeartbeat } from './heartbeat';

export type ProviderBatchRound = BatchCycleState & {
  /** The shortest `batch.pollInterval` of the endpoints in batch mode, in ms. */
  pollIntervalMs: number;
  /** The budget is spent: nothing was submitted, the stage pauses. */
  halted: BatchHalt | null;
};

/** The campaign's endpoints in batch mode, by role. */
async function batchEndpoints(db: Db, campaignId: string): Promise<Map<string, Endpoint>> {
  const { spec } = await getCampaign(db, campaignId);
  const out = new Map<string, Endpoint>();
  for (const role of ROLES) {
    const ep = spec.models[role];
    if (ep?.mode === 'batch') out.set(role, { ...ep, role });
  }
  return out;
}

function pollIntervalOf(endpoints: Map<string, Endpoint>): number {
  const every = [...endpoints.values()].map((ep) => durationMs(ep.batch.pollInterval));
  return every.length > 0 ? Math.min(...every) : 60_000;
}

export function providerBatchActivities({ db, llm }: ActivityDeps) {
  const batches = new ProviderBatches(db, llm.batchApi());
  // Heartbeats on a timer through uploads and downloads, so a dead worker's attempt is retried soon.
  const beating = <T>(fn: () => Promise<T>) => runWithHeartbeat(Context.current(), () => null, fn);
  return {
    /** Submits the calls waiting for a batch as this round's provider batches, once across attempts. */
    async submitProviderBatches(key: BatchCycleKey): Promise<ProviderBatchRound> {
      return beating(async () => {
        const endpoints = await batchEndpoints(db, key.campaignId);
        const pollIntervalMs = pollIntervalOf(endpoints);
        try {
          await llm.batchApi().checkBudget(key);
        } catch (err) {
          if (!(err instanceof BudgetReachedError)) throw err;
          const state = await batches.roundState(key);
          // A round already submitted is paid for: let it finish; only a new one waits for the budget.
          if (state.batches === 0)
            return { ...state, pollIntervalMs, halted: { reason: err.message, probe: null } };
        }
        return { ...(await batches.submit(key, endpoints)), pollIntervalMs, halted: null };
      });
    },

    /** Polls the round's provider batches and logs the answers of those that ended. */
    async pollProviderBatches(key: BatchCycleKey): Promise<ProviderBatchRound> {
      return beating(async () => {
        const endpoints = await batchEndpoints(db, key.campaignId);
        return {
          ...(await batches.poll(key, endpoints)),
          pollIntervalMs: pollIntervalOf(endpoints),
          halted: null,
        };
      });
    },

    /** Cancels the round's provider batches still running (the stage was cancelled). */
    async cancelProviderBatches(key: BatchCycleKey): Promise<number> {
      return batches.cancel(key, await batchEndpoints(db, key.campaignId));
    },
  };
}
