/**
 * The batch/v1 Job a fine-tune runs as (pure: no cluster access).
 *
 * Secrets: on Kubernetes the trainer's secrets come from Secrets, by reference (`secretEnv` →
 * `valueFrom.secretKeyRef`), so no secret value ever passes through meteor or lands in the
 * manifest kept with the job row. `passEnv` is therefore not passed: the worker's environment is
 * not the job's, and copying values from it would put them in the manifest.
 */
import { createHash } from 'node:crypto';
import type { V1EnvVar, V1Job, V1ResourceRequirements } from '@kubernetes/client-node';
import type { KubernetesFineTuneSpec } from '../../core/finetune-spec';
import type { FineTuneJobSpec } from './backend';

/** The container that runs the trainer; its log is the job's output. */
export const TRAINER_CONTAINER = 'trainer';

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** A label-safe hash of the job key (label values allow ≤ 63 chars of [A-Za-z0-9-_.]). */
export const LABEL_KEY_HASH = 'meteor.dev/job-key-hash';
export const ANNOTATION_KEY = 'meteor.dev/job-key';
export const ANNOTATION_CAMPAIGN = 'meteor.dev/campaign';
export const ANNOTATION_STAGE = 'meteor.dev/stage';
export const ANNOTATION_ITERATION = 'meteor.dev/iteration';

export function keyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 40);
}

/** The trainer's environment: spec.env, then the METEOR_* contract (which wins), then Secrets. */
function containerEnv(spec: KubernetesFineTuneSpec, job: FineTuneJobSpec): V1EnvVar[] {
  const fromSecrets = new Set(spec.secretEnv.map((s) => s.name));
  const plain = Object.entries({ ...spec.env, ...job.env })
    .filter(([name]) => !fromSecrets.has(name))
    .map(([name, value]): V1EnvVar => ({ name, value }));
  const secret = spec.secretEnv.map((s): V1EnvVar => ({
    name: s.name,
    valueFrom: { secretKeyRef: { name: s.secret, key: s.key } },
  }));
  return [...plain, ...secret];
}

function containerResources(spec: KubernetesFineTuneSpec): V1ResourceRequirements {
  const { gpus, cpu, memory, extra } = spec.resources;
  const requests: Record<string, string> = {};
  // Extended resources (GPUs, RDMA, …) need only limits: their requests default to the limits.
  const limits: Record<string, string> = { ...extra };
  if (gpus > 0) limits['nvidia.com/gpu'] = String(gpus);
  if (cpu) requests.cpu = limits.cpu = cpu;
  if (memory) requests.memory = limits.memory = memory;
  return {
    ...(Object.keys(requests).length > 0 ? { requests } : {}),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
  };
}

export function jobManifest(spec: KubernetesFineTuneSpec, job: FineTuneJobSpec): V1Job {
  const labels = { [LABEL_MANAGED_BY]: 'meteor', [LABEL_KEY_HASH]: keyHash(job.key) };
  const annotations = {
    [ANNOTATION_KEY]: job.key,
    [ANNOTATION_CAMPAIGN]: job.campaignId,
    [ANNOTATION_STAGE]: job.stage,
    [ANNOTATION_ITERATION]: String(job.iteration),
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: job.name, namespace: spec.namespace, labels, annotations },
    spec: {
      backoffLimit: spec.backoffLimit,
      ...(spec.activeDeadlineSeconds !== undefined
        ? { activeDeadlineSeconds: spec.activeDeadlineSeconds }
        : {}),
      ...(spec.ttlSecondsAfterFinished !== undefined
        ? { ttlSecondsAfterFinished: spec.ttlSecondsAfterFinished }
        : {}),
      template: {
        metadata: { labels, annotations },
        spec: {
          restartPolicy: 'Never',
          ...(spec.serviceAccount ? { serviceAccountName: spec.serviceAccount } : {}),
          ...(Object.keys(spec.nodeSelector).length > 0 ? { nodeSelector: spec.nodeSelector } : {}),
          ...(spec.tolerations.length > 0 ? { tolerations: spec.tolerations } : {}),
          containers: [
            {
              name: TRAINER_CONTAINER,
              image: spec.image,
              command: spec.command,
              env: containerEnv(spec, job),
              resources: containerResources(spec),
              volumeMounts: spec.volumes.map((v) => ({
                name: v.name,
                mountPath: v.mountPath,
                readOnly: v.readOnly,
              })),
            },
          ],
          volumes: spec.volumes.map((v) => ({
            name: v.name,
            persistentVolumeClaim: { claimName: v.claimName, readOnly: v.readOnly },
          })),
        },
      },
    },
  };
}
