/** Model versions: registering a fine-tuned model and serving it to the next stage. */
import { getCampaign } from '../core/campaigns';
import type { ModelVersionRow } from '../core/db/types';
import { loadLoraAdapter, mapAdapterPath } from '../core/llm/adapters';
import type { AwaitingRegistration, ModelRef, StageName } from '../workflows/types';
import type { ActivityDeps } from './context';

export function toModelRef(row: ModelVersionRow): ModelRef {
  return {
    label: row.label,
    parent: row.parent_label,
    servedModel: row.served_model,
    stage: (row.stage as StageName | null) ?? null,
    iteration: row.iteration,
    datasetId: row.dataset_id,
    jobId: row.finetune_job_id,
  };
}

export function modelActivities({ db, env }: ActivityDeps) {
  return {
    /**
     * Registers the version a finished job made and serves it: vllm-lora loads the adapter;
     * manual takes the served name the user registered (`servedModel`), and without one says
     * what the campaign waits for; none keeps the weak model's name.
     */
    async registerModelVersion(input: {
      campaignId: string;
      stage: StageName;
      iteration: number;
      jobId: string;
      label: string;
      parentLabel: string;
      datasetId: string;
      servedModel?: string;
    }): Promise<ModelRef | AwaitingRegistration> {
      const { spec } = await getCampaign(db, input.campaignId);
      const job = await db
        .selectFrom('finetune_jobs')
        .selectAll()
        .where('id', '=', input.jobId)
        .executeTakeFirstOrThrow();
      const checkpointUri = job.checkpoint_uri ?? `file://${job.output_dir}`;
      if (spec.deploy.type === 'manual' && input.servedModel === undefined) {
        return { awaitingRegistration: { label: input.label, checkpointUri } };
      }
      const servedModel =
        spec.deploy.type === 'vllm-lora'
          ? `${input.campaignId}-${input.label.toLowerCase()}`
          : (input.servedModel ?? spec.models.weak.model);

      if (spec.deploy.type === 'vllm-lora') {
        // The adapter as the vLLM host sees it: the job wrote it on shared storage.
        await loadLoraAdapter(
          { ...spec.models.weak, role: 'weak' },
          servedModel,
          mapAdapterPath(spec.deploy.pathMap, job.output_dir),
          env,
        );
      }

      await db
        .insertInto('model_versions')
        .values({
          campaign_id: input.campaignId,
          label: input.label,
          parent_label: input.parentLabel,
          served_model: servedModel,
          stage: input.stage,
          iteration: input.iteration,
          dataset_id: input.datasetId,
          finetune_job_id: input.jobId,
          checkpoint_uri: checkpointUri,
          deployed_at: new Date(),
        })
        .onConflict((oc) => oc.columns(['campaign_id', 'label']).doUpdateSet({ deployed_at: new Date() }))
        .execute();
      await db
        .updateTable('stage_runs')
        .set({ model_out: input.label })
        .where('campaign_id', '=', input.campaignId)
        .where('stage', '=', input.stage)
        .where('iteration', '=', input.iteration)
        .execute();
      const row = await db
        .selectFrom('model_versions')
        .selectAll()
        .where('campaign_id', '=', input.campaignId)
        .where('label', '=', input.label)
        .executeTakeFirstOrThrow();
      return toModelRef(row);
    },
  };
}
