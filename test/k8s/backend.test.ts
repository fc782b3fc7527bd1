/**
 * The kubernetes backend over HTTP against a Kubernetes API server (infra/k8s-mock: fabric8's
 * CRUD mock server, one per file). There is no Job controller or kubelet behind it, so the test
 * plays them (test/support/k8s.ts): it creates the job's pod, writes the pod's log and status,
 * and writes the Job's status.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { FineTuneJobSpec } from '../../activities/finetune/backend';
import { KubernetesBackend } from '../../activities/finetune/kubernetes';
import { jobManifest, keyHash } from '../../activities/finetune/kubernetes-manifest';
import type { KubernetesFineTuneSpec } from '../../core/finetune-spec';
import {
  JobController,
  fineTuneJob,
  kubernetesSpec,
  startMockApiServer,
  type Json,
  type MockApiServer,
} from '../support/k8s';

const NS = 'meteor-test';
const SECRET_VALUE = 'hf_do_not_leak';

let server: MockApiServer;
let controller: JobController;
let spec: KubernetesFineTuneSpec;
let backend: KubernetesBackend;

/** A backend as createBackend builds it: the kubeconfig path is relative to the spec's folder. */
function backendFor(fields: Record<string, unknown> = {}): KubernetesBackend {
  return new KubernetesBackend(kubernetesSpec({ ...baseFields(), ...fields }), {
    env: {},
    specDir: server.dir,
  });
}

function baseFields(): Record<string, unknown> {
  return {
    namespace: NS,
    kubeconfig: 'kubeconfig.yaml',
    resources: { gpus: 1, memory: '16Gi' },
    volumes: [{ name: 'shared', claimName: 'meteor-shared', mountPath: '/shared/meteor' }],
    secretEnv: [{ name: 'HF_TOKEN', secret: 'hf', key: 'token' }],
    passEnv: ['HF_TOKEN'],
  };
}

beforeAll(async () => {
  server = await startMockApiServer();
  await server.createNamespace(NS);
  await server.request('POST', `/api/v1/namespaces/${NS}/persistentvolumeclaims`, {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'meteor-shared', namespace: NS },
    spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '1Gi' } } },
  });
  controller = new JobController(server, NS);
  spec = kubernetesSpec(baseFields());
  backend = backendFor();
});

afterAll(async () => {
  await server?.stop();
});

const meta = (o: Json | null) => (o?.metadata ?? {}) as Json;

interface KubeconfigFile {
  users: Json[];
  contexts: Json[];
  'current-context': string;
}

describe('preflight', () => {
  it('finds nothing wrong with a good spec', async () => {
    expect(await backend.preflight()).toEqual([]);
  });

  it('names fineTune.namespace when the namespace does not exist', async () => {
    expect(await backendFor({ namespace: 'nowhere' }).preflight()).toEqual([
      `fineTune.namespace: namespace "nowhere" does not exist on ${server.url}`,
    ]);
  });

  it('names fineTune.kubeconfig when the file is missing, and fineTune.context for an unknown context', async () => {
    const [missing] = await backendFor({ kubeconfig: 'no-such-kubeconfig.yaml' }).preflight();
    expect(missing).toBe(
      `fineTune.kubeconfig: ${path.join(server.dir, 'no-such-kubeconfig.yaml')} does not exist`,
    );
    const [context] = await backendFor({ context: 'prod' }).preflight();
    expect(context).toMatch(
      /^fineTune\.context: context "prod" is not in .*kubeconfig\.yaml \(it has: mock\)$/,
    );
  });

  it("uses the kubeconfig's context and credentials", async () => {
    // Two contexts: the current one with a token the server refuses, `mock` with the right one.
    const kubeconfig = parse(await readFile(server.kubeconfigPath, 'utf8')) as KubeconfigFile;
    kubeconfig.users.push({ name: 'intruder', user: { token: 'wrong' } });
    kubeconfig.contexts.push({ name: 'wrong-user', context: { cluster: 'mock', user: 'intruder' } });
    kubeconfig['current-context'] = 'wrong-user';
    await writeFile(path.join(server.dir, 'two-contexts.yaml'), JSON.stringify(kubeconfig));
    const [refused] = await backendFor({ kubeconfig: 'two-contexts.yaml' }).preflight();
    expect(refused).toMatch(/^fineTune\.kubeconfig: .* refused the credentials/);
    expect(await backendFor({ kubeconfig: 'two-contexts.yaml', context: 'mock' }).preflight()).toEqual([]);
  });

  it('names the server when the API is unreachable, and a missing claim by its field', async () => {
    await writeFile(
      path.join(server.dir, 'dead.yaml'),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'dead', cluster: { server: 'http://127.0.0.1:9', 'insecure-skip-tls-verify': true } },
        ],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'dead', context: { cluster: 'dead', user: 'u' } }],
        'current-context': 'dead',
      }),
    );
    const [unreachable] = await backendFor({ kubeconfig: 'dead.yaml' }).preflight();
    expect(unreachable).toMatch(
      /^fineTune\.kubeconfig: the Kubernetes API server http:\/\/127\.0\.0\.1:9 is unreachable/,
    );
    const noClaim = backendFor({
      volumes: [{ name: 'shared', claimName: 'missing-claim', mountPath: '/shared' }],
    });
    expect(await noClaim.preflight()).toEqual([
      `fineTune.volumes[0].claimName: PersistentVolumeClaim "missing-claim" does not exist in namespace "${NS}"`,
    ]);
  });

  it("takes a ready KubeConfig in place of the spec's", async () => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(server.kubeconfigPath);
    const injected = new KubernetesBackend(kubernetesSpec({ namespace: NS }), {
      env: {},
      specDir: '/',
      kubeConfig,
    });
    expect(await injected.preflight()).toEqual([]);
  });

  it('without a kubeconfig outside a cluster, says to set fineTune.kubeconfig', async () => {
    const inCluster = new KubernetesBackend(kubernetesSpec({ namespace: NS }), {
      env: {},
      specDir: server.dir,
    });
    const [problem] = await inCluster.preflight();
    expect(problem).toMatch(/^fineTune\.kubeconfig: not set, so the in-cluster service account is used/);
  });
});

describe('submit and lookup', () => {
  const job = fineTuneJob('campaign-1:contrast:2');

  it('creates the Job from the manifest, with no secret value in it', async () => {
    expect(await backend.lookup(job)).toBeNull();
    const result = await backend.submit(job);
    expect(result.externalId).toBe(`${NS}/${job.name}`);
    expect(result.submitted).not.toContain(SECRET_VALUE);
    expect(parse(result.submitted ?? '')).toEqual(jobManifest(spec, job));

    const created = await controller.job(job.name);
    expect(JSON.stringify(created)).not.toContain(SECRET_VALUE);
    const manifest = jobManifest(spec, job);
    expect(meta(created).labels).toEqual(manifest.metadata?.labels);
    expect(meta(created).annotations).toEqual(manifest.metadata?.annotations);
    expect(created?.spec).toEqual(JSON.parse(JSON.stringify(manifest.spec)));
  });

  it('adopts the Job on a second submit (409), leaving one Job', async () => {
    const again = await backend.submit(job);
    expect(again.externalId).toBe(`${NS}/${job.name}`);
    const jobs = await controller.jobs(
      `app.kubernetes.io/managed-by=meteor,meteor.dev/job-key-hash=${keyHash(job.key)}`,
    );
    expect(jobs.map((j) => meta(j).name)).toEqual([job.name]);
    expect(await backend.lookup(job)).toEqual({ externalId: `${NS}/${job.name}` });
  });

  it('never adopts a Job of another key under the same name', async () => {
    const impostor: FineTuneJobSpec = { ...fineTuneJob('campaign-9:contrast:1'), name: job.name };
    await expect(backend.lookup(impostor)).rejects.toThrow(
      /belongs to another fine-tune \(campaign-1:contrast:2\)/,
    );
    await expect(backend.submit(impostor)).rejects.toThrow(/belongs to another fine-tune/);
  });

  it('names fineTune.namespace when submitting into a namespace that does not exist', async () => {
    await expect(
      backendFor({ namespace: 'nowhere' }).submit(fineTuneJob('campaign-1:distill:7')),
    ).rejects.toThrow(/^fineTune\.namespace: namespace "nowhere" does not exist/);
  });
});

describe('poll', () => {
  it('follows a Job from submitted to running to succeeded, with its log', async () => {
    const job = fineTuneJob('campaign-1:distill:1');
    const { externalId } = await backend.submit(job);
    expect(await backend.poll(externalId, job, 0)).toMatchObject({
      status: 'submitted',
      detail: 'no pod yet',
      logLines: [],
    });

    const pod = `${job.name}-abcde`;
    await controller.createPod(job.name, pod, 'Pending');
    await controller.setJobStatus(job.name, { active: 1, ready: 0 });
    expect(await backend.poll(externalId, job, 0)).toMatchObject({ status: 'submitted', logLines: [] });

    await controller.setPodStatus(pod, 'Running');
    await controller.setJobStatus(job.name, { active: 1, ready: 1 });
    await controller.writeLog(pod, 'loading weights\nMETEOR_METRICS {"step":1,"loss":2.5}\nstep 2 of');
    const running = await backend.poll(externalId, job, 0);
    expect(running).toMatchObject({ status: 'running', detail: 'Running', error: null, exitCode: null });
    expect(running.logLines).toEqual(['loading weights', 'METEOR_METRICS {"step":1,"loss":2.5}']);

    await controller.writeLog(
      pod,
      'loading weights\nMETEOR_METRICS {"step":1,"loss":2.5}\nstep 2 of 2\nsaved adapter\n',
    );
    await controller.setPodStatus(pod, 'Succeeded', 0);
    await controller.setJobStatus(job.name, {
      active: 0,
      ready: 0,
      succeeded: 1,
      conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: new Date().toISOString() }],
    });
    expect(await backend.poll(externalId, job, 2)).toEqual({
      status: 'succeeded',
      detail: 'Complete',
      error: null,
      exitCode: 0,
      logLines: ['step 2 of 2', 'saved adapter'],
    });
  });

  it('reports BackoffLimitExceeded with the exit code and the last log lines', async () => {
    const job = fineTuneJob('campaign-2:assess:1');
    const { externalId } = await backend.submit(job);
    const pod = `${job.name}-xyz12`;
    await controller.createPod(job.name, pod, 'Running');
    await controller.writeLog(pod, 'starting\nTraceback (most recent call last):\nCUDA out of memory\n');
    await controller.setPodStatus(pod, 'Failed', 1);
    await controller.setJobStatus(job.name, {
      failed: 1,
      conditions: [
        {
          type: 'Failed',
          status: 'True',
          reason: 'BackoffLimitExceeded',
          message: 'Job has reached the specified backoff limit',
        },
      ],
    });
    const state = await backend.poll(externalId, job, 1);
    expect(state).toMatchObject({ status: 'failed', detail: 'BackoffLimitExceeded', exitCode: 1 });
    expect(state.logLines).toEqual(['Traceback (most recent call last):', 'CUDA out of memory']);
    expect(state.error).toBe(
      'BackoffLimitExceeded: Job has reached the specified backoff limit, exit code 1\n' +
        'last log lines:\nstarting\nTraceback (most recent call last):\nCUDA out of memory',
    );
  });

  it('reports DeadlineExceeded', async () => {
    const job = fineTuneJob('campaign-2:assess:2');
    const { externalId } = await backend.submit(job);
    await controller.setJobStatus(job.name, {
      conditions: [
        {
          type: 'Failed',
          status: 'True',
          reason: 'DeadlineExceeded',
          message: 'Job was active longer than specified deadline',
        },
      ],
    });
    expect(await backend.poll(externalId, job, 0)).toMatchObject({
      status: 'failed',
      detail: 'DeadlineExceeded',
      error: 'DeadlineExceeded: Job was active longer than specified deadline',
    });
  });
});

describe('cancel', () => {
  it('deletes the Job, and is idempotent', async () => {
    const job = fineTuneJob('campaign-3:contrast:1');
    const { externalId } = await backend.submit(job);
    await controller.createPod(job.name, `${job.name}-p0001`, 'Running');
    await backend.cancel(externalId, job);
    expect(await controller.job(job.name)).toBeNull();
    await backend.cancel(externalId, job);
    expect(await backend.lookup(job)).toBeNull();
    expect(await backend.poll(externalId, job, 0)).toMatchObject({
      status: 'cancelled',
      detail: 'Job deleted',
    });
  });

  it("leaves another fine-tune's Job alone", async () => {
    const job = fineTuneJob('campaign-3:contrast:2');
    const { externalId } = await backend.submit(job);
    const impostor: FineTuneJobSpec = { ...fineTuneJob('campaign-8:contrast:2'), name: job.name };
    await expect(backend.cancel(externalId, impostor)).rejects.toThrow(/belongs to another fine-tune/);
    expect(await controller.job(job.name)).not.toBeNull();
  });
});
