/**
 * Fine-tune activities: submit once per (campaign, stage, iteration), poll, cancel. The job row
 * is created before the backend is called and the backend is asked for the job by its key
 * first, so neither a retried activity nor a crashed worker submits twice.
 */
import path from 'node:path';
import { getCampaign } from '../../core/campaigns';
import type { FineTuneJobRow } from '../../core/db/types';
import type { Db } from '../../core/db/connection';
import { writeTrainerConfigs } from '../../core/trainer-config';
import type { PreferenceLoss, StageName } from '../../workflows/types';
import type { ActivityDeps } from '../context';
import { stageArtifactDir } from '../datasets';
import type { FineTuneBackend } from './backend';
import { LocalBackend } from './local';

export function fineTuneKey(campaignId: string, stage: string, iteration: number): string {
  return `${campaignId}:${stage}:${iteration}`;
}

async function backendFor(db: Db, campaignId: string, env: NodeJS.ProcessEnv): Promise<FineTuneBackend> {
  const { row, spec } = await getCampaign(db, campaignId);
  const ft = spec.fineTune;
  switch (ft.type) {
    case 'local':
      return new LocalBackend(
        {
          command: ft.command,
          cwd: path.resolve(row.spec_dir, ft.cwd ?? '.'),
          env: ft.env,
          passEnv: ft.passEnv,
        },
        env,
      );
  }
}

function fileUriPath(uri: string): string {
  return uri.startsWith('file://') ? uri.slice('file://'.length) : uri;
}

async function addEvent(db: Db, jobId: string, kind: string, message: string): Promise<void> {
  await db.insertInto('finetune_events').values({ job_id: jobId, kind, message }).execute();
}

export function fineTuneActivities({ db, env, artifactsDir }: ActivityDeps) {
  const jobById = (jobId: string): Promise<FineTuneJobRow> =>
    db.selectFrom('finetune_jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow();

  return {
    async submitFineTune(input: {
      campaignId: string;
      stage: StageName;
      iteration: number;
      datasetId: string;
      baseModel: string;
      parentLabel: string;
      kind: 'sft' | 'preference';
      loss: PreferenceLoss | null;
    }): Promise<{ jobId: string; externalId: string }> {
      const key = fineTuneKey(input.campaignId, input.stage, input.iteration);
      const backend = await backendFor(db, input.campaignId, env);
      const outputDir = path.join(
        stageArtifactDir(artifactsDir, input.campaignId, input.stage, input.iteration),
        'finetune',
      );
      await db
        .insertInto('finetune_jobs')
        .values({
          campaign_id: input.campaignId,
          stage: input.stage,
          iteration: input.iteration,
          idempotency_key: key,
          backend: backend.name,
          status: 'pending',
          base_model: input.baseModel,
          dataset_id: input.datasetId,
          output_dir: outputDir,
        })
        .onConflict((oc) => oc.column('idempotency_key').doNothing())
        .execute();
      const job = await db
        .selectFrom('finetune_jobs')
        .selectAll()
        .where('idempotency_key', '=', key)
        .executeTakeFirstOrThrow();
      if (job.external_id) return { jobId: job.id, externalId: job.external_id };

      const found = await backend.lookup(key, job.output_dir);
      let externalId: string;
      if (found) {
        externalId = found.externalId;
        await addEvent(
          db,
          job.id,
          'submit',
          `found job ${externalId} submitted earlier under key ${key}; not submitting again`,
        );
      } else {
        const dataset = await db
          .selectFrom('datasets')
          .selectAll()
          .where('id', '=', input.datasetId)
          .executeTakeFirstOrThrow();
        const parent = await db
          .selectFrom('model_versions')
          .select('checkpoint_uri')
          .where('campaign_id', '=', input.campaignId)
          .where('label', '=', input.parentLabel)
          .executeTakeFirst();
        // The trainer configurations travel with the job: the command can use them as they are.
        const files = await db
          .selectFrom('datasets')
          .select(['format', 'uri'])
          .where('campaign_id', '=', input.campaignId)
          .where('stage', '=', input.stage)
          .where('iteration', '=', input.iteration)
          .execute();
        const fileOf = (format: string) =>
          fileUriPath(files.find((f) => f.format === format)?.uri ?? dataset.uri);
        const trainerConfigDir = await writeTrainerConfigs(path.join(job.output_dir, 'config'), {
          kind: input.kind,
          loss: input.loss,
          baseModel: input.baseModel,
          datasets: { openai: fileOf('openai'), trl: fileOf('trl'), llamafactory: fileOf('llamafactory') },
          outputDir: job.output_dir,
        });
        ({ externalId } = await backend.submit({
          key,
          stage: input.stage,
          kind: input.kind,
          loss: input.loss,
          trainerConfigDir,
          datasetPath: fileUriPath(dataset.uri),
          outputDir: job.output_dir,
          baseModel: input.baseModel,
          parentCheckpoint: parent?.checkpoint_uri ? fileUriPath(parent.checkpoint_uri) : null,
        }));
        await addEvent(db, job.id, 'submit', `submitted to ${backend.name} as ${externalId}`);
      }
      await db
        .updateTable('finetune_jobs')
        .set({
          external_id: externalId,
          status: 'submitted',
          submitted_at: new Date(),
          updated_at: new Date(),
        })
        .where('id', '=', job.id)
        .execute();
      return { jobId: job.id, externalId };
    },

    async pollFineTune({ jobId }: { jobId: string }): Promise<{ status: string; error: string | null }> {
      const job = await jobById(jobId);
      if (job.status === 'succeeded' || job.status === 'failed' || job.status === 'cancelled') {
        return { status: job.status, error: job.error };
      }
      const backend = await backendFor(db, job.campaign_id, env);
      const seen = await db
        .selectFrom('finetune_events')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('job_id', '=', jobId)
        .where('kind', '=', 'log')
        .executeTakeFirstOrThrow();
      const state = await backend.poll(job.external_id ?? '', job.output_dir, Number(seen.n));
      if (state.logLines.length > 0) {
        await db
          .insertInto('finetune_events')
          .values(state.logLines.map((message) => ({ job_id: jobId, kind: 'log', message })))
          .execute();
      }
      const finished =
        state.status === 'succeeded' || state.status === 'failed' || state.status === 'cancelled';
      if (state.status !== job.status) {
        await db
          .updateTable('finetune_jobs')
          .set({
            status: state.status,
            error: state.error,
            checkpoint_uri: state.checkpointUri,
            finished_at: finished ? new Date() : null,
            updated_at: new Date(),
          })
          .where('id', '=', jobId)
          .execute();
        await addEvent(
          db,
          jobId,
          'status',
          `${job.status} → ${state.status}${state.error ? `: ${state.error}` : ''}`,
        );
      }
      return { status: state.status, error: state.error };
    },

    async cancelFineTune({ jobId, reason }: { jobId: string; reason: string }): Promise<void> {
      const job = await jobById(jobId);
      if (job.external_id && (job.status === 'submitted' || job.status === 'running')) {
        const backend = await backendFor(db, job.campaign_id, env);
        await backend.cancel(job.external_id, job.output_dir);
      }
      await db
        .updateTable('finetune_jobs')
        .set({ status: 'cancelled', finished_at: new Date(), updated_at: new Date(), error: reason })
        .where('id', '=', jobId)
        .where('status', 'not in', ['succeeded', 'failed'])
        .execute();
      await addEvent(db, jobId, 'cancel', reason);
    },
  };
}
