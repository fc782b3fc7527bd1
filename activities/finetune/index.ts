/**
 * Fine-tune activities. `prepareFineTune` creates the job row and its folder (dataset copied
 * from Postgres, trainer configs) and says which queue owns the job; `submitFineTune` claims the
 * row, looks the job up on the backend by its name and submits only if it is not there;
 * `pollFineTune` follows it and turns its log into events; `cancelFineTune` stops it — also when
 * the cancel races the submit (the row's cancel flag is read back when the external id is
 * recorded).
 */
import { createHash, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { sql } from 'kysely';
import { createArtifactStores } from '../../core/artifacts';
import { getCampaign } from '../../core/campaigns';
import type { Db } from '../../core/db/connection';
import type { FineTuneJobRow, FineTuneStatus } from '../../core/db/types';
import { writeJsonl } from '../../core/jsonl';
import { writeTrainerConfigs } from '../../core/trainer-config';
import { TRAINING_FORMATS, trainingLines, type TrainingFormat } from '../../core/training-data';
import type { CampaignSpec } from '../../core/spec';
import type { PreferenceLoss, TrainingStage } from '../../workflows/types';
import type { ActivityDeps } from '../context';
import { jobName, type FineTuneBackend, type FineTuneJobSpec } from './backend';
import { createBackend, hostQueue, jobDirs } from './backends';
import { jobFiles, trainerEnv } from './job-layout';
import { parseMetricsLine } from './metrics';
import { stageDefinition } from '../../stages/registry';

export function fineTuneKey(campaignId: string, stage: string, iteration: number): string {
  return `${campaignId}:${stage}:${iteration}`;
}

const shortHash = (s: string) => createHash('sha256').update(s).digest('hex');

/** A claim older than this is taken over even by an attempt that is not newer (a lost worker). */
const CLAIM_LEASE_SECONDS = 120;
/** Log lines turned into events per poll at most; the rest come with the next poll. */
const MAX_LOG_LINES_PER_POLL = 2_000;

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export interface PrepareFineTuneInput {
  campaignId: string;
  stage: TrainingStage;
  iteration: number;
  datasetId: string;
  parentLabel: string;
  kind: 'sft' | 'preference';
  loss: PreferenceLoss | null;
}

async function addEvent(db: Db, jobId: string, kind: string, message: string): Promise<void> {
  await db.insertInto('finetune_events').values({ job_id: jobId, kind, message }).execute();
}

function fileUriPath(uri: string): string {
  return uri.startsWith('file://') ? uri.slice('file://'.length) : uri;
}

/** Where a parent adapter kept in an object store is staged, inside the job's folder. */
const PARENT_DIR = 'parent';

/** A fine-tune's checkpoint in the artifact store: `<campaign>/finetune/<stage>-<iteration>/output`. */
export function checkpointKey(campaignId: string, stage: string, iteration: number): string {
  return `${campaignId}/finetune/${stage}-${iteration}/output`;
}

/** The attempt number of the running activity (1 outside an activity, e.g. a direct call). */
function currentAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

export function fineTuneActivities(deps: ActivityDeps) {
  const { db, env, artifactsDir, hostId, crashPoint } = deps;
  const stores = deps.artifacts ?? createArtifactStores(deps);
  /**
   * Where `local` jobs keep their folders: in the artifact store itself when it is a filesystem
   * (the checkpoint is then already in place), else in this worker's own folder, as scratch.
   */
  const localRootOf = async (spec: CampaignSpec): Promise<string> =>
    (await stores.forCampaign(spec)).localPath('') ?? artifactsDir;

  /**
   * The checkpoint's URI once a job succeeded. A filesystem store keeps today's answer, the
   * output folder as the jobs see it (shared storage); an object store gets the output uploaded.
   */
  const publishCheckpoint = async (job: FineTuneJobRow): Promise<string> => {
    const { spec } = await getCampaign(db, job.campaign_id);
    const store = await stores.forCampaign(spec);
    if (store.localPath('') !== null || !job.job_dir) return `file://${job.output_dir}`;
    return await store.putDir(
      checkpointKey(job.campaign_id, job.stage, job.iteration),
      jobFiles(job.job_dir).outputDir,
    );
  };

  const jobById = (jobId: string): Promise<FineTuneJobRow> =>
    db.selectFrom('finetune_jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow();

  const backendOf = async (campaignId: string): Promise<FineTuneBackend> => {
    const { row, spec } = await getCampaign(db, campaignId);
    return await createBackend(spec.fineTune, { env, specDir: row.spec_dir });
  };

  /** The backend's view of a job row (what lookup, submit, poll and cancel take). */
  const jobSpecOf = async (job: FineTuneJobRow): Promise<FineTuneJobSpec> => {
    const { spec } = await getCampaign(db, job.campaign_id);
    const stage = job.stage as TrainingStage;
    const { dataset } = stageDefinition(stage);
    const kind = dataset?.kind ?? 'sft';
    const loss = dataset?.kind === 'preference' ? dataset.loss(spec.stages[stage]) : null;
    const dirs = jobDirs(spec.fineTune, await localRootOf(spec), job.campaign_id, job.stage, job.iteration);
    const remote = job.job_dir_remote ?? dirs.job;
    return {
      key: job.idempotency_key,
      name: job.name ?? jobName(job.idempotency_key, shortHash),
      campaignId: job.campaign_id,
      stage,
      iteration: job.iteration,
      kind,
      loss,
      dir: { worker: job.job_dir ?? dirs.worker, job: remote },
      env: trainerEnv({
        key: job.idempotency_key,
        stage,
        kind,
        loss,
        jobDir: remote,
        datasetFile: `${kind}.openai.jsonl`,
        baseModel: job.parent_served ?? spec.models.weak.model,
        baseWeights: job.base_model,
        parentAdapter: job.parent_checkpoint,
      }),
    };
  };

  return {
    /**
     * Creates (or finds) the job row and lays out its folder: the dataset, exported again from
     * Postgres and checked against the recorded sha256 (so no worker-local file is needed), and
     * the trainer configs. Returns the job and the queue that owns it.
     */
    async prepareFineTune(input: PrepareFineTuneInput): Promise<{ jobId: string; queue: string }> {
      const { spec } = await getCampaign(db, input.campaignId);
      const ft = spec.fineTune;
      const parent = await db
        .selectFrom('model_versions')
        .select(['served_model', 'checkpoint_uri'])
        .where('campaign_id', '=', input.campaignId)
        .where('label', '=', input.parentLabel)
        .executeTakeFirstOrThrow();
      const key = fineTuneKey(input.campaignId, input.stage, input.iteration);
      const dirs = jobDirs(ft, await localRootOf(spec), input.campaignId, input.stage, input.iteration);
      const files = jobFiles(dirs.job);
      // The parent adapter as the job reads it: a file:// checkpoint where it lies (shared
      // storage), one in an object store staged into the job's folder below.
      const parentUri = parent.checkpoint_uri;
      const parentStaged = parentUri !== null && !parentUri.startsWith('file://');
      const baseWeights = spec.models.weak.weights ?? spec.models.weak.model;
      await db
        .insertInto('finetune_jobs')
        .values({
          campaign_id: input.campaignId,
          stage: input.stage,
          iteration: input.iteration,
          idempotency_key: key,
          backend: ft.type,
          status: 'pending',
          base_model: baseWeights,
          dataset_id: input.datasetId,
          output_dir: files.outputDir,
          job_dir: dirs.worker,
          job_dir_remote: dirs.job,
          name: jobName(key, shortHash),
          parent_label: input.parentLabel,
          parent_served: parent.served_model,
          parent_checkpoint:
            parentUri === null
              ? null
              : parentStaged
                ? path.join(dirs.job, PARENT_DIR)
                : fileUriPath(parentUri),
          // A local job belongs to the host that prepares it: only that host can see its process.
          queue: ft.type === 'local' ? hostQueue(ft.queue, hostId) : ft.queue,
        })
        .onConflict((oc) => oc.column('idempotency_key').doNothing())
        .execute();
      const job = await db
        .selectFrom('finetune_jobs')
        .selectAll()
        .where('idempotency_key', '=', key)
        .executeTakeFirstOrThrow();
      const queue = job.queue ?? ft.queue;
      // Once submitted, the job may be reading its folder: leave it alone.
      if (job.external_id || TERMINAL.has(job.status)) return { jobId: job.id, queue };

      const workerFiles = jobFiles(job.job_dir ?? dirs.worker);
      if (parentUri !== null && parentStaged) {
        const staged = path.join(workerFiles.root, PARENT_DIR);
        await rm(staged, { recursive: true, force: true });
        const n = await (await stores.forUri(parentUri)).getDir(parentUri, staged);
        await addEvent(db, job.id, 'prepare', `parent adapter ${parentUri} staged (${n} files)`);
      }
      const recorded = await db
        .selectFrom('datasets')
        .select(['format', 'sha256', 'rows'])
        .where('campaign_id', '=', input.campaignId)
        .where('stage', '=', input.stage)
        .where('iteration', '=', input.iteration)
        .execute();
      const kind = input.kind;
      const datasetPath = (format: TrainingFormat, view: 'worker' | 'job') =>
        path.join(view === 'worker' ? workerFiles.datasetDir : files.datasetDir, `${kind}.${format}.jsonl`);
      for (const format of TRAINING_FORMATS) {
        const written = await writeJsonl(
          datasetPath(format, 'worker'),
          trainingLines(db, spec, input.campaignId, input.stage, input.iteration, format),
        );
        const want = recorded.find((r) => r.format === format);
        if (want && want.sha256 !== written.sha256) {
          throw ApplicationFailure.nonRetryable(
            `dataset ${input.stage}-${input.iteration} (${format}) changed since it was exported: ` +
              `sha256 ${written.sha256.slice(0, 12)} ≠ recorded ${want.sha256.slice(0, 12)}`,
            'DatasetChanged',
          );
        }
      }
      await writeTrainerConfigs(workerFiles.configDir, {
        kind,
        loss: input.loss,
        baseWeights,
        datasets: {
          openai: datasetPath('openai', 'job'),
          trl: datasetPath('trl', 'job'),
          llamafactory: datasetPath('llamafactory', 'job'),
        },
        datasetInfoDir: workerFiles.datasetDir,
        outputDir: files.outputDir,
        trainer: ft.trainer,
      });
      await addEvent(db, job.id, 'prepare', `job folder ready at ${dirs.job} (queue ${queue})`);
      return { jobId: job.id, queue };
    },

    /**
     * Submits the job exactly once. The row is claimed first (one attempt at a time; a later
     * attempt of the same activity takes over a crashed one's claim), then the backend is asked
     * for the job by name — a crash after the backend accepted it ends in adoption, not a second job.
     */
    async submitFineTune({ jobId }: { jobId: string }): Promise<{ externalId: string }> {
      const attempt = currentAttempt();
      const token = randomUUID();
      const claimed = await db
        .updateTable('finetune_jobs')
        .set({ claim_token: token, claim_attempt: attempt, claimed_at: sql`now()`, updated_at: new Date() })
        .where('id', '=', jobId)
        .where('external_id', 'is', null)
        .where((eb) =>
          eb.or([
            eb('claim_token', 'is', null),
            eb('claim_attempt', '<', attempt),
            eb('claimed_at', '<', sql<Date>`now() - make_interval(secs => ${CLAIM_LEASE_SECONDS})`),
          ]),
        )
        .returning('id')
        .executeTakeFirst();
      const job = await jobById(jobId);
      if (job.external_id) return { externalId: job.external_id };
      if (!claimed) {
        throw ApplicationFailure.retryable(
          `fine-tune job ${job.idempotency_key} is being submitted by another attempt (${job.claim_attempt}); looking again`,
          'FineTuneSubmitInProgress',
        );
      }
      if (job.cancel_requested) {
        throw ApplicationFailure.nonRetryable(
          'fine-tune cancelled before it was submitted',
          'FineTuneCancelled',
        );
      }
      await crashPoint?.('after-claim');

      const backend = await backendOf(job.campaign_id);
      const spec = await jobSpecOf(job);
      const found = await backend.lookup(spec);
      let externalId: string;
      let submitted: string | null = null;
      if (found) {
        externalId = found.externalId;
        await addEvent(
          db,
          jobId,
          'submit',
          `adopted ${backend.name} job ${externalId} found under name ${spec.name}; not submitting again`,
        );
      } else {
        // A claim taken over by a newer attempt means this one must not submit.
        const stillOurs = await db
          .selectFrom('finetune_jobs')
          .select('claim_token')
          .where('id', '=', jobId)
          .executeTakeFirstOrThrow();
        if (stillOurs.claim_token !== token) {
          throw ApplicationFailure.retryable(
            'another attempt took over this submit',
            'FineTuneSubmitInProgress',
          );
        }
        await rm(jobFiles(spec.dir.worker).outputDir, { recursive: true, force: true });
        ({ externalId, submitted } = await backend.submit(spec));
        await addEvent(db, jobId, 'submit', `submitted to ${backend.name} as ${externalId}`);
      }
      await crashPoint?.('before-record');
      const recorded = await db
        .updateTable('finetune_jobs')
        .set({
          external_id: externalId,
          submitted,
          // A cancel that came first keeps its word: the job is stopped just below.
          status: sql<FineTuneStatus>`case when status = 'cancelled' then status else 'submitted' end`,
          submitted_at: new Date(),
          updated_at: new Date(),
        })
        .where('id', '=', jobId)
        .where('external_id', 'is', null)
        .returning(['cancel_requested'])
        .executeTakeFirst();
      await crashPoint?.('after-record');
      // A cancel that came while we were submitting: it could not see the job yet, so stop it here.
      if (recorded?.cancel_requested) {
        await backend.cancel(externalId, spec);
        await addEvent(db, jobId, 'cancel', 'cancelled right after submit (the cancel raced the submit)');
      }
      return { externalId: recorded ? externalId : ((await jobById(jobId)).external_id ?? externalId) };
    },

    async pollFineTune({
      jobId,
    }: {
      jobId: string;
    }): Promise<{ status: string; error: string | null; detail: string | null }> {
      const job = await jobById(jobId);
      if (TERMINAL.has(job.status)) return { status: job.status, error: job.error, detail: job.detail };
      if (!job.external_id)
        throw ApplicationFailure.nonRetryable(`fine-tune job ${jobId} was never submitted`);
      const backend = await backendOf(job.campaign_id);
      const spec = await jobSpecOf(job);
      const seen = await db
        .selectFrom('finetune_events')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('job_id', '=', jobId)
        .where('kind', 'in', ['log', 'metrics'])
        .executeTakeFirstOrThrow();
      const state = await backend.poll(job.external_id, spec, Number(seen.n));
      const lines = state.logLines.slice(0, MAX_LOG_LINES_PER_POLL);
      let finalLoss: number | null = null;
      if (lines.length > 0) {
        const rows = lines.map((line) => {
          const metrics = parseMetricsLine(line);
          if (metrics) {
            const loss = metrics.final === true ? metrics.train_loss : metrics.loss;
            if (typeof loss === 'number' && Number.isFinite(loss)) finalLoss = loss;
          }
          return {
            job_id: jobId,
            kind: metrics ? 'metrics' : 'log',
            message: metrics ? JSON.stringify(metrics) : line,
          };
        });
        await db.insertInto('finetune_events').values(rows).execute();
      }
      // Lines still to read: report the job as it was, so the status stays in step with the log.
      const moreToRead = state.logLines.length > lines.length;
      const status = moreToRead && TERMINAL.has(state.status) ? 'running' : state.status;
      const finished = TERMINAL.has(status);
      // Uploaded before the row says succeeded: a crash in between uploads again, harmlessly.
      const checkpointUri =
        status === 'succeeded' && job.status !== 'succeeded' ? await publishCheckpoint(job) : null;
      if (status !== job.status || state.detail !== job.detail || finalLoss !== null) {
        await db
          .updateTable('finetune_jobs')
          .set({
            status,
            detail: state.detail,
            error: state.error,
            exit_code: state.exitCode,
            ...(finalLoss !== null ? { final_loss: finalLoss } : {}),
            ...(status === 'running' && !job.started_at ? { started_at: new Date() } : {}),
            ...(finished ? { finished_at: new Date() } : {}),
            ...(checkpointUri !== null ? { checkpoint_uri: checkpointUri } : {}),
            updated_at: new Date(),
          })
          .where('id', '=', jobId)
          .where('status', 'not in', ['succeeded', 'failed', 'cancelled'])
          .execute();
        if (status !== job.status) {
          await addEvent(
            db,
            jobId,
            'status',
            `${job.status} → ${status}${state.detail ? ` (${state.detail})` : ''}${state.error ? `: ${state.error}` : ''}`,
          );
        }
      }
      return { status, error: state.error, detail: state.detail };
    },

    async cancelFineTune({ jobId, reason }: { jobId: string; reason: string }): Promise<void> {
      // The flag first: a submit in flight reads it back when it records the external id.
      const job = await db
        .updateTable('finetune_jobs')
        .set({ cancel_requested: true, updated_at: new Date() })
        .where('id', '=', jobId)
        .returningAll()
        .executeTakeFirstOrThrow();
      if (TERMINAL.has(job.status) && job.status !== 'cancelled') return;
      const backend = await backendOf(job.campaign_id);
      const spec = await jobSpecOf(job);
      const externalId = job.external_id ?? (await backend.lookup(spec))?.externalId ?? null;
      if (externalId) await backend.cancel(externalId, spec);
      await db
        .updateTable('finetune_jobs')
        .set({ status: 'cancelled', finished_at: new Date(), updated_at: new Date(), error: reason })
        .where('id', '=', jobId)
        .where('status', 'not in', ['succeeded', 'failed'])
        .execute();
      await addEvent(
        db,
        jobId,
        'cancel',
        `${reason}${externalId ? ` (${backend.name} job ${externalId})` : ' (not submitted yet)'}`,
      );
    },
  };
}
