/** Campaign bookkeeping: the plan the workflow follows, its state, the base model. */
import { sql } from 'kysely';
import { getCampaign } from '../core/campaigns';
import type { CampaignState } from '../core/db/types';
import { durationMs } from '../core/duration';
import type { CampaignPlan, ModelRef, StagePlan } from '../workflows/types';
import type { ActivityDeps } from './context';
import { toModelRef } from './models';
import { registeredStages, stageDefinition } from '../stages/registry';
import type { BaseStageOptions } from '../stages/stage';

export function campaignActivities({ db }: ActivityDeps) {
  return {
    async loadCampaignPlan({ campaignId }: { campaignId: string }): Promise<CampaignPlan> {
      const { spec, row } = await getCampaign(db, campaignId);
      // A forecast run (`campaign plan --no-train`) uses the base model throughout: no fine-tune.
      const trains = row.forecast?.train ?? true;
      const counts = await db
        .selectFrom('questions')
        .select(['split', sql<number>`count(*)::int`.as('n')])
        .where('campaign_id', '=', campaignId)
        .groupBy('split')
        .execute();
      const count = (split: string) => counts.find((c) => c.split === split)?.n ?? 0;
      // Enough questions in flight to keep the stage's endpoints busy: each question makes calls
      // to more than one endpoint in turn, and holds each slot a while beyond its call (the budget
      // check before it, the log after it), so four times the busiest endpoint's concurrency.
      const inFlightWanted =
        4 *
        Math.max(
          spec.models.weak.concurrency,
          spec.models.strong.concurrency,
          spec.models.judge?.concurrency ?? 0,
          spec.models.discriminator?.concurrency ?? 0,
        );
      const stages = registeredStages().map((definition): StagePlan => {
        const d = stageDefinition(definition.name);
        const o: BaseStageOptions = spec.stages[d.name];
        const questions = d.questions === 'eval' ? count('eval') : count('train');
        return {
          stage: d.name,
          // A stage with no questions to work on (e.g. no held-out set) is skipped.
          enabled: o.enabled && questions > 0,
          iterations: o.iterations ?? 1,
          batchSize: o.batchSize,
          // Two batches more than that: a batch's last questions leave slots idle while they
          // finish. In issue #9's bench (concurrency 32, batches of 100, 50 ms calls) 2 batches
          // kept the slots 70–85% busy; 4 kept them full.
          parallelBatches: o.parallelBatches ?? Math.min(100, Math.ceil(inFlightWanted / o.batchSize) + 2),
          questions: d.questions,
          fineTune:
            !d.dataset || !trains
              ? null
              : d.dataset.kind === 'sft'
                ? { kind: 'sft', loss: null }
                : { kind: 'preference', loss: d.dataset.loss(o) },
        };
      });
      return {
        campaignId,
        domain: spec.domain,
        trainTotal: count('train'),
        evalTotal: count('eval'),
        stages,
        fineTune: {
          backend: spec.fineTune.type,
          queue: spec.fineTune.queue,
          pollIntervalMs: durationMs(spec.fineTune.pollInterval),
          timeoutMs: durationMs(spec.fineTune.timeout),
        },
      };
    },

    async setCampaignState({
      campaignId,
      state,
      error,
    }: {
      campaignId: string;
      state: CampaignState;
      error?: string | null;
    }): Promise<void> {
      await db
        .updateTable('campaigns')
        .set({
          state,
          error: error ?? null,
          // The workflow pauses here only for the user; pauses with other reasons are recordPause's.
          pause_reason: state === 'paused' ? 'paused by user' : null,
          updated_at: new Date(),
        })
        .where('id', '=', campaignId)
        .execute();
    },

    /** M0: the weak model as given. Idempotent. */
    async registerBaseModel({ campaignId }: { campaignId: string }): Promise<ModelRef> {
      const { spec } = await getCampaign(db, campaignId);
      await db
        .insertInto('model_versions')
        .values({
          campaign_id: campaignId,
          label: 'M0',
          parent_label: null,
          served_model: spec.models.weak.model,
        })
        .onConflict((oc) => oc.columns(['campaign_id', 'label']).doNothing())
        .execute();
      const row = await db
        .selectFrom('model_versions')
        .selectAll()
        .where('campaign_id', '=', campaignId)
        .where('label', '=', 'M0')
        .executeTakeFirstOrThrow();
      return toModelRef(row);
    },
  };
}
