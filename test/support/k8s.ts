/**
 * A Kubernetes API server for tests: infra/k8s-mock (fabric8's CRUD mock server, plain HTTP) in
 * a child process, a kubeconfig that points at it with a bearer token it requires, and helpers
 * with which a test plays the parts a real cluster's controllers play: the Job controller
 * (creates the job's pod, writes the Job's status) and the kubelet (pod status, the pod's log).
 *
 * Needs Java 17+ and Maven (the first start fetches the jars from Maven Central); without them
 * `startMockApiServer` fails with the reason, never skips.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { jobName, type FineTuneJobSpec } from '../../activities/finetune/backend';
import { FineTuneSchema, type KubernetesFineTuneSpec } from '../../core/finetune-spec';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const START_SCRIPT = path.join(REPO_ROOT, 'infra', 'k8s-mock', 'start.sh');
/** The first start fetches ~40 MB of jars; later ones take about a second. */
const START_TIMEOUT_MS = 180_000;

export type Json = Record<string, unknown>;

export interface MockApiServer {
  url: string;
  /** The bearer token the server requires (written into the kubeconfig). */
  token: string;
  /** A kubeconfig whose current context is the server (context `mock`), user `tester`. */
  kubeconfigPath: string;
  /** A folder for the test's own files, removed by stop(). */
  dir: string;
  /** Sends one request as the test (a controller): JSON in and out; null body on 404. */
  request(
    method: string,
    apiPath: string,
    body?: unknown,
    contentType?: string,
  ): Promise<{ status: number; body: Json | null }>;
  createNamespace(name: string): Promise<void>;
  stop(): Promise<void>;
}

function requireTools(): void {
  const missing = ['java', 'javac', 'mvn'].filter(
    (tool) => spawnSync('bash', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0,
  );
  if (missing.length > 0) {
    throw new Error(
      `the Kubernetes tests need ${missing.join(', ')} on PATH (a JDK 17+ and Maven; Debian: ` +
        'apt-get install openjdk-17-jdk-headless maven) to run the mock API server infra/k8s-mock',
    );
  }
}

function waitForReady(child: ChildProcess, stderr: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      reject(new Error(`infra/k8s-mock did not start in ${START_TIMEOUT_MS / 1000} s:\n${stderr()}`));
    }, START_TIMEOUT_MS);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const ready = /k8s-mock ready (http:\/\/\S+)/.exec(out);
      if (ready?.[1]) {
        clearTimeout(timer);
        resolve(ready[1]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(`infra/k8s-mock/start.sh exited (${code ?? signal}) before it was ready:\n${stderr()}`),
      );
    });
  });
}

export async function startMockApiServer(): Promise<MockApiServer> {
  requireTools();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meteor-k8s-'));
  const token = `test-token-${process.pid}`;
  const child = spawn('bash', [START_SCRIPT, '0'], {
    env: { ...process.env, K8S_MOCK_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let errText = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    errText = (errText + chunk.toString()).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let url: string;
  try {
    url = await waitForReady(child, () => errText);
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const kubeconfigPath = path.join(dir, 'kubeconfig.yaml');
  await writeFile(
    kubeconfigPath,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // client-node refuses plain http unless TLS verification is off (as for `kubectl proxy`).
      clusters: [{ name: 'mock', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'tester', user: { token } }],
      contexts: [{ name: 'mock', context: { cluster: 'mock', user: 'tester' } }],
      'current-context': 'mock',
    }),
  );

  const request: MockApiServer['request'] = async (
    method,
    apiPath,
    body,
    contentType = 'application/json',
  ) => {
    const res = await fetch(`${url}${apiPath}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'Content-Type': contentType }),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status === 404 || text === '') return { status: res.status, body: null };
    if (res.status >= 300) throw new Error(`${method} ${apiPath}: HTTP ${res.status}: ${text}`);
    return { status: res.status, body: JSON.parse(text) as Json };
  };

  return {
    url,
    token,
    kubeconfigPath,
    dir,
    request,
    async createNamespace(name) {
      await request('POST', '/api/v1/namespaces', {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name },
      });
    },
    async stop() {
      // start.sh execs java, so the child is the server itself.
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The Job controller's and kubelet's side of a Job, played by a test. */
export class JobController {
  constructor(
    private readonly server: MockApiServer,
    private readonly namespace: string,
  ) {}

  async job(name: string): Promise<Json | null> {
    return (await this.server.request('GET', `/apis/batch/v1/namespaces/${this.namespace}/jobs/${name}`))
      .body;
  }

  async jobs(labelSelector: string): Promise<Json[]> {
    const q = encodeURIComponent(labelSelector);
    const list = await this.server.request(
      'GET',
      `/apis/batch/v1/namespaces/${this.namespace}/jobs?labelSelector=${q}`,
    );
    return (list.body?.items as Json[] | undefined) ?? [];
  }

  /** Writes the Job's status (replaces the status subresource). */
  async setJobStatus(name: string, status: Json): Promise<void> {
    await this.replaceStatus(`/apis/batch/v1/namespaces/${this.namespace}/jobs/${name}`, status);
  }

  /**
   * GET, then PUT .../status: the mock applies a JSON merge patch to arrays by appending (RFC 7386
   * replaces them), so a patched containerStatuses or conditions would keep stale entries.
   */
  private async replaceStatus(objectPath: string, status: Json): Promise<void> {
    const current = (await this.server.request('GET', objectPath)).body;
    if (!current) throw new Error(`${objectPath} does not exist`);
    await this.server.request('PUT', `${objectPath}/status`, { ...current, status });
  }

  /** Creates the job's pod as the controller does: labelled with the job's name, owned by the Job. */
  async createPod(jobName: string, podName: string, phase = 'Pending'): Promise<void> {
    const job = await this.job(jobName);
    const uid = (job?.metadata as Json | undefined)?.uid;
    await this.server.request('POST', `/api/v1/namespaces/${this.namespace}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: podName,
        namespace: this.namespace,
        labels: { 'job-name': jobName, 'batch.kubernetes.io/job-name': jobName },
        ...(typeof uid === 'string'
          ? {
              ownerReferences: [
                { apiVersion: 'batch/v1', kind: 'Job', name: jobName, uid, controller: true },
              ],
            }
          : {}),
      },
      spec: { restartPolicy: 'Never', containers: [{ name: 'trainer', image: 'trainer:test' }] },
      status: { phase },
    });
  }

  /** The pod's phase and, once the trainer has exited, its exit code. */
  async setPodStatus(podName: string, phase: string, exitCode?: number): Promise<void> {
    const state =
      exitCode === undefined
        ? phase === 'Running'
          ? { running: { startedAt: new Date().toISOString() } }
          : { waiting: { reason: 'ContainerCreating' } }
        : { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error' } };
    await this.replaceStatus(`/api/v1/namespaces/${this.namespace}/pods/${podName}`, {
      phase,
      containerStatuses: [
        {
          name: 'trainer',
          image: 'trainer:test',
          imageID: '',
          ready: phase === 'Running',
          restartCount: 0,
          state,
        },
      ],
    });
  }

  /** The trainer's output so far (what the kubelet would serve as the pod's log). */
  async writeLog(podName: string, text: string): Promise<void> {
    await this.server.request(
      'PUT',
      `/mock/namespaces/${this.namespace}/pods/${podName}/log`,
      text,
      'text/plain',
    );
  }
}

/** A `fineTune` section of type kubernetes, with the schema's defaults filled in. */
export function kubernetesSpec(fields: Record<string, unknown> = {}): KubernetesFineTuneSpec {
  const spec = FineTuneSchema.parse({
    type: 'kubernetes',
    namespace: 'meteor-test',
    image: 'ghcr.io/acme/meteor-trainer:1.2',
    command: ['/opt/meteor/infra/trainer/run'],
    sharedDir: '/shared/meteor',
    ...fields,
  });
  if (spec.type !== 'kubernetes') throw new Error('not a kubernetes spec');
  return spec;
}

/** A fine-tune job as activities/finetune hands it to a backend. */
export function fineTuneJob(key = 'campaign-1:contrast:2'): FineTuneJobSpec {
  const [campaignId = 'campaign-1', , iteration = '2'] = key.split(':');
  const dir = `/shared/meteor/${campaignId}/finetune/contrast-${iteration}`;
  return {
    key,
    name: jobName(key, (s) => createHash('sha256').update(s).digest('hex')),
    campaignId,
    stage: 'contrast',
    iteration: Number(iteration),
    kind: 'preference',
    loss: 'dpo',
    dir: { worker: dir, job: dir },
    env: { METEOR_JOB_KEY: key, METEOR_JOB_DIR: dir, METEOR_STAGE: 'contrast' },
  };
}
