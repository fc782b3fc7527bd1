/**
 * The kubernetes backend's pure parts: the Job manifest, and the state and log read from a Job
 * and its newest pod (no API server here; backend.test.ts runs them against one).
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import {
  ANNOTATION_KEY,
  LABEL_KEY_HASH,
  jobManifest,
  keyHash,
} from '../../activities/finetune/kubernetes-manifest';
import { jobState, logLinesAfter, newestPod, podDetail } from '../../activities/finetune/kubernetes-status';
import { fineTuneJob, kubernetesSpec } from '../support/k8s';

describe('jobManifest', () => {
  const spec = kubernetesSpec({
    resources: { gpus: 2, cpu: '8', memory: '64Gi', extra: { 'rdma/ib': '1' } },
    nodeSelector: { 'nvidia.com/gpu.product': 'H100' },
    tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    serviceAccount: 'meteor-trainer',
    volumes: [{ name: 'shared', claimName: 'meteor-shared', mountPath: '/shared' }],
    secretEnv: [{ name: 'HF_TOKEN', secret: 'hf', key: 'token' }],
    env: { HF_HOME: '/shared/hf', METEOR_STAGE: 'overridden?' },
    passEnv: ['HF_TOKEN'],
    backoffLimit: 1,
    activeDeadlineSeconds: 7200,
    ttlSecondsAfterFinished: 86400,
  });
  const job = fineTuneJob();
  const manifest = jobManifest(spec, job);
  const pod = manifest.spec?.template.spec;
  const container = pod?.containers[0];

  it('names the Job after the job and marks it with the key', () => {
    expect(manifest.apiVersion).toBe('batch/v1');
    expect(manifest.kind).toBe('Job');
    expect(manifest.metadata?.name).toBe(job.name);
    expect(manifest.metadata?.namespace).toBe('meteor-test');
    expect(manifest.metadata?.labels).toEqual({
      'app.kubernetes.io/managed-by': 'meteor',
      [LABEL_KEY_HASH]: keyHash(job.key),
    });
    expect(keyHash(job.key)).toMatch(/^[a-f0-9]{1,63}$/);
    expect(manifest.metadata?.annotations).toEqual({
      [ANNOTATION_KEY]: 'campaign-1:contrast:2',
      'meteor.dev/campaign': 'campaign-1',
      'meteor.dev/stage': 'contrast',
      'meteor.dev/iteration': '2',
    });
  });

  it('takes the retry, deadline and TTL settings from the spec', () => {
    expect(manifest.spec).toMatchObject({
      backoffLimit: 1,
      activeDeadlineSeconds: 7200,
      ttlSecondsAfterFinished: 86400,
    });
    expect(pod?.restartPolicy).toBe('Never');
  });

  it('schedules onto GPU nodes with the service account, selector and tolerations', () => {
    expect(pod?.serviceAccountName).toBe('meteor-trainer');
    expect(pod?.nodeSelector).toEqual({ 'nvidia.com/gpu.product': 'H100' });
    expect(pod?.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(container?.name).toBe('trainer');
    expect(container?.image).toBe('ghcr.io/acme/meteor-trainer:1.2');
    expect(container?.command).toEqual(['/opt/meteor/infra/trainer/run']);
    expect(container?.resources).toEqual({
      requests: { cpu: '8', memory: '64Gi' },
      limits: { 'nvidia.com/gpu': '2', cpu: '8', memory: '64Gi', 'rdma/ib': '1' },
    });
  });

  it('mounts the PVCs', () => {
    expect(pod?.volumes).toEqual([
      { name: 'shared', persistentVolumeClaim: { claimName: 'meteor-shared', readOnly: false } },
    ]);
    expect(container?.volumeMounts).toEqual([{ name: 'shared', mountPath: '/shared', readOnly: false }]);
  });

  it('passes secrets by reference only, and the METEOR_* contract over spec.env', () => {
    const env = container?.env ?? [];
    expect(env).toContainEqual({
      name: 'HF_TOKEN',
      valueFrom: { secretKeyRef: { name: 'hf', key: 'token' } },
    });
    expect(env.filter((e) => e.name === 'HF_TOKEN')).toHaveLength(1);
    expect(env).toContainEqual({ name: 'HF_HOME', value: '/shared/hf' });
    expect(env).toContainEqual({ name: 'METEOR_STAGE', value: 'contrast' });
    expect(env).toContainEqual({ name: 'METEOR_JOB_DIR', value: job.dir.job });
    // passEnv is not read on Kubernetes: jobManifest never sees the worker's environment, so
    // a secret there cannot reach the manifest; HF_TOKEN is a reference and nothing else.
    expect(JSON.stringify(manifest)).not.toMatch(/hf_[A-Za-z0-9]/);
  });

  it('asks for no GPU when gpus is 0, and leaves out what the spec does not set', () => {
    const cpuOnly = jobManifest(kubernetesSpec({ resources: { gpus: 0 } }), job);
    const cpuPod = cpuOnly.spec?.template.spec;
    expect(cpuPod?.containers[0]?.resources).toEqual({});
    expect(cpuPod?.serviceAccountName).toBeUndefined();
    expect(cpuPod?.nodeSelector).toBeUndefined();
    expect(cpuPod?.tolerations).toBeUndefined();
    expect(cpuOnly.spec?.activeDeadlineSeconds).toBeUndefined();
    expect(cpuOnly.spec?.backoffLimit).toBe(0);
  });
});

describe('logLinesAfter', () => {
  it('returns the lines after the ones already seen', () => {
    expect(logLinesAfter('a\nb\nc\n', 0, false)).toEqual(['a', 'b', 'c']);
    expect(logLinesAfter('a\nb\nc\n', 2, false)).toEqual(['c']);
    expect(logLinesAfter('a\nb\nc\n', 5, false)).toEqual([]);
    expect(logLinesAfter('', 0, true)).toEqual([]);
    expect(logLinesAfter('a\r\nb\r\n', 0, false)).toEqual(['a', 'b']);
  });

  it('holds back a line still being written until it ends or the job finishes', () => {
    expect(logLinesAfter('a\nhalf', 0, false)).toEqual(['a']);
    expect(logLinesAfter('a\nhalf a line\n', 1, false)).toEqual(['half a line']);
    expect(logLinesAfter('a\nlast words', 1, true)).toEqual(['last words']);
  });
});

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

function pod(
  name: string,
  created: number,
  phase: string,
  extra: Partial<V1Pod['status']> = {},
  uid?: string,
): V1Pod {
  return {
    metadata: {
      name,
      creationTimestamp: at(created),
      ...(uid ? { ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid }] } : {}),
    },
    status: { phase, ...extra },
  };
}

function job(status: V1Job['status'] = {}, suspend = false): V1Job {
  return { metadata: { name: 'j', uid: 'job-uid' }, spec: { suspend, template: {} }, status };
}

const cond = (type: string, reason?: string, message?: string) => ({ type, status: 'True', reason, message });

describe('jobState', () => {
  it('is submitted before any pod, and while the pod waits for a node or its image', () => {
    expect(jobState(job(), null, '', 0)).toMatchObject({ status: 'submitted', detail: 'no pod yet' });
    const unschedulable = pod('p', 0, 'Pending', {
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message: '0/3 nodes are available',
        },
      ],
    });
    expect(jobState(job({ active: 1 }), unschedulable, '', 0)).toMatchObject({
      status: 'submitted',
      detail: 'Pending (Unschedulable: 0/3 nodes are available)',
    });
    const pulling = pod('p', 0, 'Pending', {
      containerStatuses: [
        {
          name: 'trainer',
          image: 'x',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: 'ImagePullBackOff' } },
        },
      ],
    });
    expect(podDetail(pulling)).toBe('Pending (ImagePullBackOff)');
    expect(jobState(job({}, true), null, '', 0)).toMatchObject({ status: 'submitted', detail: 'suspended' });
  });

  it('is running once the pod runs, or when the Job counts an active pod it cannot show', () => {
    expect(jobState(job({ active: 1 }), pod('p', 0, 'Running'), 'step 1\n', 0)).toMatchObject({
      status: 'running',
      detail: 'Running',
      logLines: ['step 1'],
    });
    expect(jobState(job({ active: 1, ready: 1 }), null, '', 0).status).toBe('running');
    // A retry (backoffLimit > 0) waiting for a node: an attempt already ran.
    expect(jobState(job({ active: 1, failed: 1 }), pod('p2', 5, 'Pending'), '', 0).status).toBe('running');
  });

  it('succeeds on the Complete condition, with the exit code and the last lines', () => {
    const done = pod('p', 0, 'Succeeded', {
      containerStatuses: [
        {
          name: 'trainer',
          image: 'x',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: 0 } },
        },
      ],
    });
    expect(jobState(job({ succeeded: 1, conditions: [cond('Complete')] }), done, 'a\nb\nfinal', 1)).toEqual({
      status: 'succeeded',
      detail: 'Complete',
      error: null,
      exitCode: 0,
      logLines: ['b', 'final'],
    });
  });

  it('fails on the Failed condition with its reason, the exit code and the log tail', () => {
    const crashed = pod('p', 0, 'Failed', {
      containerStatuses: [
        {
          name: 'trainer',
          image: 'x',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: 3 } },
        },
      ],
    });
    const log = Array.from({ length: 15 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    const state = jobState(
      job({
        failed: 1,
        conditions: [cond('Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit')],
      }),
      crashed,
      log,
      15,
    );
    expect(state.status).toBe('failed');
    expect(state.detail).toBe('BackoffLimitExceeded');
    expect(state.exitCode).toBe(3);
    expect(state.logLines).toEqual([]);
    expect(state.error).toBe(
      'BackoffLimitExceeded: Job has reached the specified backoff limit, exit code 3\nlast log lines:\n' +
        Array.from({ length: 10 }, (_, i) => `line ${i + 6}`).join('\n'),
    );
    const deadline = jobState(job({ conditions: [cond('Failed', 'DeadlineExceeded')] }), null, '', 0);
    expect(deadline).toMatchObject({
      status: 'failed',
      detail: 'DeadlineExceeded',
      error: 'DeadlineExceeded',
      exitCode: null,
    });
  });
});

describe('newestPod', () => {
  it("takes the newest of the Job's own pods", () => {
    const first = pod('j-aaaaa', 1, 'Failed', {}, 'job-uid');
    const retry = pod('j-bbbbb', 9, 'Running', {}, 'job-uid');
    const stale = pod('j-zzzzz', 20, 'Running', {}, 'an-earlier-job-of-that-name');
    expect(newestPod([retry, stale, first], 'job-uid')?.metadata?.name).toBe('j-bbbbb');
    expect(newestPod([], 'job-uid')).toBeNull();
  });
});
