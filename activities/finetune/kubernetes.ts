/**
 * The `kubernetes` backend: each fine-tune is a batch/v1 Job named after its key, so a repeated
 * create answers 409 and the existing Job is adopted (after checking its key annotation). Its
 * state comes from the Job's conditions and its newest pod, its log from that pod's log.
 * The manifest is in kubernetes-manifest.ts, the state and log parsing in kubernetes-status.ts.
 *
 * Auth: `fineTune.kubeconfig` (relative to the spec file, optional `fineTune.context`) or, when
 * omitted, the pod's in-cluster service account.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ApiException, BatchV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { KubernetesFineTuneSpec } from '../../core/finetune-spec';
import { UserError, errorMessage } from '../../core/errors';
import type { BackendJobState, FineTuneBackend, FineTuneJobSpec, SubmitResult } from './backend';
import { ANNOTATION_KEY, TRAINER_CONTAINER, jobManifest } from './kubernetes-manifest';
import { jobState, newestPod } from './kubernetes-status';

export interface KubernetesBackendOptions {
  env: NodeJS.ProcessEnv;
  specDir: string;
  /** A ready KubeConfig (tests); otherwise loaded from the spec. */
  kubeConfig?: KubeConfig;
}

interface Clients {
  batch: BatchV1Api;
  core: CoreV1Api;
  /** The API server's address, for messages. */
  server: string;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** Preflight gives up on an API server that does not answer (a dropped connection never errors). */
const PREFLIGHT_TIMEOUT_MS = 15_000;

/** The kubeconfig the spec names, or the in-cluster service account; UserError naming the field. */
export function loadKubeConfig(
  spec: KubernetesFineTuneSpec,
  opts: { env: NodeJS.ProcessEnv; specDir: string },
): KubeConfig {
  const kc = new KubeConfig();
  if (!spec.kubeconfig) {
    if (spec.context)
      throw new UserError('fineTune.context: only used with fineTune.kubeconfig, which is not set');
    if (!opts.env.KUBERNETES_SERVICE_HOST || !existsSync(SERVICE_ACCOUNT_TOKEN)) {
      throw new UserError(
        'fineTune.kubeconfig: not set, so the in-cluster service account is used, but this worker does not ' +
          `run in a Kubernetes pod (KUBERNETES_SERVICE_HOST unset or no ${SERVICE_ACCOUNT_TOKEN}); set fineTune.kubeconfig`,
      );
    }
    kc.loadFromCluster();
    return kc;
  }
  const file = path.resolve(opts.specDir, spec.kubeconfig);
  if (!existsSync(file)) throw new UserError(`fineTune.kubeconfig: ${file} does not exist`);
  try {
    kc.loadFromFile(file);
  } catch (err) {
    throw new UserError(`fineTune.kubeconfig: ${file} is not a valid kubeconfig: ${errorMessage(err)}`);
  }
  if (spec.context) {
    if (!kc.getContextObject(spec.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new UserError(
        `fineTune.context: context "${spec.context}" is not in ${file} (it has: ${known.join(', ') || 'none'})`,
      );
    }
    kc.setCurrentContext(spec.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new UserError(
      `fineTune.kubeconfig: ${file}: context "${kc.getCurrentContext()}" names no known cluster`,
    );
  }
  return kc;
}

function httpStatus(err: unknown): number | null {
  return err instanceof ApiException ? (err as ApiException<unknown>).code : null;
}

/** The API server's own words from an error (its Status message), without headers. */
function apiMessage(err: unknown): string {
  if (!(err instanceof ApiException)) return errorMessage(err);
  const body: unknown = (err as ApiException<unknown>).body;
  let message: string | null = null;
  if (typeof body === 'string') {
    try {
      const parsed: unknown = JSON.parse(body);
      if (parsed && typeof parsed === 'object' && 'message' in parsed) message = String(parsed.message);
    } catch {
      message = body.trim() || null;
    }
  } else if (body && typeof body === 'object' && 'message' in body) {
    message = String(body.message);
  }
  return `HTTP ${err.code}${message ? `: ${message}` : ''}`;
}

/** Errors a retry cannot fix (auth, RBAC, an invalid manifest) become UserErrors. */
function apiError(err: unknown, what: string): Error {
  const code = httpStatus(err);
  const message = `Kubernetes ${what}: ${apiMessage(err)}`;
  if (code === 401) return new UserError(`${message} (fineTune.kubeconfig: the credentials were refused)`);
  if (code === 403)
    return new UserError(`${message} (RBAC: the identity in fineTune.kubeconfig may not do this)`);
  if (code === 400 || code === 422) return new UserError(`${message} (check fineTune)`);
  return new Error(message);
}

function parseExternalId(externalId: string): { namespace: string; name: string } {
  const [namespace, name, ...rest] = externalId.split('/');
  if (!namespace || !name || rest.length > 0) {
    throw new UserError(`not a Kubernetes job id: ${externalId} (expected <namespace>/<name>)`);
  }
  return { namespace, name };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class KubernetesBackend implements FineTuneBackend {
  readonly name = 'kubernetes';
  private clients: Clients | null = null;

  constructor(
    private readonly spec: KubernetesFineTuneSpec,
    private readonly opts: KubernetesBackendOptions,
  ) {}

  /** The API clients, built on first use so that a bad kubeconfig is a preflight problem, not a crash. */
  private api(): Clients {
    if (!this.clients) {
      const kc = this.opts.kubeConfig ?? loadKubeConfig(this.spec, this.opts);
      this.clients = {
        batch: kc.makeApiClient(BatchV1Api),
        core: kc.makeApiClient(CoreV1Api),
        server: kc.getCurrentCluster()?.server ?? '(no server)',
      };
    }
    return this.clients;
  }

  async preflight(): Promise<string[]> {
    let api: Clients;
    try {
      api = this.api();
    } catch (err) {
      return [errorMessage(err)];
    }
    const { namespace } = this.spec;
    const call = <T>(promise: Promise<T>) => withTimeout(promise, PREFLIGHT_TIMEOUT_MS, api.server);
    try {
      await call(api.core.readNamespace({ name: namespace }));
    } catch (err) {
      const code = httpStatus(err);
      if (code === 404)
        return [`fineTune.namespace: namespace "${namespace}" does not exist on ${api.server}`];
      if (code === 401)
        return [`fineTune.kubeconfig: ${api.server} refused the credentials (${apiMessage(err)})`];
      if (code === null) {
        return [
          `fineTune.kubeconfig: the Kubernetes API server ${api.server} is unreachable: ${errorMessage(err)}`,
        ];
      }
      // 403: many identities may not read namespaces (cluster-scoped); listing Jobs below tells.
      if (code !== 403) return [`fineTune.namespace: reading namespace "${namespace}": ${apiMessage(err)}`];
    }
    const problems: string[] = [];
    try {
      await call(api.batch.listNamespacedJob({ namespace, limit: 1 }));
    } catch (err) {
      problems.push(
        `fineTune.namespace: listing Jobs in "${namespace}" on ${api.server}: ${apiMessage(err)}`,
      );
    }
    for (const [i, volume] of this.spec.volumes.entries()) {
      try {
        await call(api.core.readNamespacedPersistentVolumeClaim({ name: volume.claimName, namespace }));
      } catch (err) {
        if (httpStatus(err) === 404) {
          problems.push(
            `fineTune.volumes[${i}].claimName: PersistentVolumeClaim "${volume.claimName}" does not exist in namespace "${namespace}"`,
          );
        }
        // Other answers (403 …): the identity may create Jobs without reading claims; leave it.
      }
    }
    return problems;
  }

  async lookup(job: FineTuneJobSpec): Promise<{ externalId: string } | null> {
    const found = await this.readJob(this.spec.namespace, job.name);
    if (!found) return null;
    this.checkKey(found, job);
    return { externalId: `${this.spec.namespace}/${job.name}` };
  }

  async submit(job: FineTuneJobSpec): Promise<SubmitResult> {
    const manifest = jobManifest(this.spec, job);
    const submitted = stringify(manifest);
    const { namespace } = this.spec;
    try {
      await this.api().batch.createNamespacedJob({ namespace, body: manifest });
    } catch (err) {
      const code = httpStatus(err);
      if (code === 404) {
        throw new UserError(
          `fineTune.namespace: namespace "${namespace}" does not exist (${apiMessage(err)})`,
        );
      }
      if (code !== 409) throw apiError(err, `creating Job ${namespace}/${job.name}`);
      // Already there (a retried submit): adopt it if it is this fine-tune's.
      const adopted = await this.lookup(job);
      if (!adopted)
        throw new Error(`Kubernetes Job ${namespace}/${job.name} answered 409 but is gone; retry`);
      return { externalId: adopted.externalId, submitted };
    }
    return { externalId: `${namespace}/${job.name}`, submitted };
  }

  async poll(externalId: string, job: FineTuneJobSpec, logLinesSeen: number): Promise<BackendJobState> {
    const { namespace, name } = parseExternalId(externalId);
    const found = await this.readJob(namespace, name);
    if (!found) {
      return {
        status: 'cancelled',
        detail: 'Job deleted',
        error: `Kubernetes Job ${externalId} no longer exists (cancelled, deleted by someone, or removed by ttlSecondsAfterFinished)`,
        exitCode: null,
        logLines: [],
      };
    }
    this.checkKey(found, job);
    const pod = newestPod(await this.jobPods(namespace, name), found.metadata?.uid);
    const log = pod?.metadata?.name ? await this.podLog(namespace, pod.metadata.name) : '';
    return jobState(found, pod, log, logLinesSeen);
  }

  async cancel(externalId: string, job: FineTuneJobSpec): Promise<void> {
    const { namespace, name } = parseExternalId(externalId);
    const found = await this.readJob(namespace, name);
    if (!found) return;
    this.checkKey(found, job);
    try {
      // Background: the Job goes now and its pods after it (the trainer gets SIGTERM).
      await this.api().batch.deleteNamespacedJob({
        name,
        namespace,
        propagationPolicy: 'Background',
        body: { preconditions: { uid: found.metadata?.uid } },
      });
    } catch (err) {
      if (httpStatus(err) !== 404) throw apiError(err, `deleting Job ${externalId}`);
    }
  }

  private async readJob(namespace: string, name: string): Promise<V1Job | null> {
    try {
      return await this.api().batch.readNamespacedJob({ name, namespace });
    } catch (err) {
      if (httpStatus(err) === 404) return null;
      throw apiError(err, `reading Job ${namespace}/${name}`);
    }
  }

  /** A Job of this name that is not this fine-tune's (another campaign, or not meteor's) is never adopted. */
  private checkKey(found: V1Job, job: FineTuneJobSpec): void {
    const key = found.metadata?.annotations?.[ANNOTATION_KEY];
    if (key !== job.key) {
      throw new UserError(
        `Kubernetes Job ${found.metadata?.namespace ?? this.spec.namespace}/${job.name} belongs to ` +
          `${key ? `another fine-tune (${key})` : 'something other than meteor (no meteor.dev/job-key annotation)'}, ` +
          `not ${job.key}: delete it or use another fineTune.namespace`,
      );
    }
  }

  private async jobPods(namespace: string, name: string): Promise<V1Pod[]> {
    // The Job controller labels its pods with both (batch.kubernetes.io/job-name since 1.27).
    for (const label of ['job-name', 'batch.kubernetes.io/job-name']) {
      try {
        const pods = await this.api().core.listNamespacedPod({
          namespace,
          labelSelector: `${label}=${name}`,
        });
        if (pods.items.length > 0) return pods.items;
      } catch (err) {
        throw apiError(err, `listing the pods of Job ${namespace}/${name}`);
      }
    }
    return [];
  }

  /** The trainer's whole output so far; '' while its container has not started or the pod is gone. */
  private async podLog(namespace: string, pod: string): Promise<string> {
    try {
      return await this.api().core.readNamespacedPodLog({
        name: pod,
        namespace,
        container: TRAINER_CONTAINER,
      });
    } catch (err) {
      const code = httpStatus(err);
      if (code === 400 || code === 404) return '';
      throw apiError(err, `reading the log of pod ${namespace}/${pod}`);
    }
  }
}
