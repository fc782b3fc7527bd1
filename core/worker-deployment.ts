/**
 * Temporal Worker Versioning for meteor's workers: which Worker Deployment Version a worker
 * polls as (deployment name + build id), and the routing calls an upgrade needs (which version
 * takes new campaigns; which versions still hold pinned runs). Campaigns, stages, fine-tunes and
 * line iterations are PINNED (the worker's default behaviour, workers/worker.ts): a run finishes on the build it started on
 * unless moved on purpose, so an upgrade never replays a running campaign on new code.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { temporal } from '@temporalio/proto';
import { errorMessage, UserError } from './errors';

type WorkflowService = temporal.api.workflowservice.v1.WorkflowService;

export const DEFAULT_DEPLOYMENT_NAME = 'meteor';

/** One Worker Deployment Version: the deployment (the service) and the build of its code. */
export interface WorkerVersion {
  deploymentName: string;
  buildId: string;
}

/** The version this checkout's code is: package.json's `version`. */
export function packageBuildId(): string {
  const pkg: unknown = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
  const version = (pkg as { version?: unknown }).version;
  if (typeof version !== 'string' || version === '') throw new Error('package.json has no version');
  return version;
}

/**
 * The version a worker polls as: `--deployment-name` / `--build-id`, else METEOR_DEPLOYMENT_NAME /
 * METEOR_BUILD_ID, else `meteor` and the package version; null with `--unversioned`.
 */
export function workerVersion(
  flags: { deploymentName?: string; buildId?: string; unversioned?: boolean },
  env: NodeJS.ProcessEnv = process.env,
): WorkerVersion | null {
  if (flags.unversioned) {
    if (flags.deploymentName !== undefined || flags.buildId !== undefined) {
      throw new UserError('--unversioned: leave out --deployment-name and --build-id, or drop --unversioned');
    }
    return null;
  }
  const deploymentName = pick(flags.deploymentName, '--deployment-name', env, 'METEOR_DEPLOYMENT_NAME');
  const buildId = pick(flags.buildId, '--build-id', env, 'METEOR_BUILD_ID');
  const version = {
    deploymentName: deploymentName?.value ?? DEFAULT_DEPLOYMENT_NAME,
    buildId: buildId?.value ?? packageBuildId(),
  };
  // Temporal joins the two as "<deployment>.<build>": a dot in the name would be ambiguous.
  if (deploymentName && !/^[A-Za-z0-9_-]{1,200}$/.test(version.deploymentName)) {
    throw new UserError(
      `${deploymentName.source}: '${version.deploymentName}' is not a deployment name (letters, digits, '_' and '-')`,
    );
  }
  if (buildId && !/^[A-Za-z0-9._+-]{1,200}$/.test(version.buildId)) {
    throw new UserError(
      `${buildId.source}: '${version.buildId}' is not a build id (letters, digits, '.', '_', '+' and '-')`,
    );
  }
  return version;
}

function pick(
  flag: string | undefined,
  flagName: string,
  env: NodeJS.ProcessEnv,
  envName: string,
): { value: string; source: string } | null {
  if (flag !== undefined) return { value: flag, source: flagName };
  const fromEnv = env[envName];
  return fromEnv ? { value: fromEnv, source: envName } : null;
}

export function versionLabel(v: WorkerVersion): string {
  return `${v.deploymentName} build ${v.buildId}`;
}

/** A version's place in its deployment, as `meteorctl deployment status` shows it. */
export interface VersionSummary {
  buildId: string;
  /** inactive, ramping, current, draining (pinned runs may remain) or drained. */
  status: string;
  /** Whether pinned runs still need this version's workers (known while draining). */
  drainage: 'draining' | 'drained' | null;
  createdAt: Date | null;
}

export interface DeploymentSummary {
  deploymentName: string;
  /** The build new campaigns start on; null: unversioned workers take them. */
  currentBuildId: string | null;
  rampingBuildId: string | null;
  /** Whether anyone ever set the routing (a first deployment has not). */
  routingSet: boolean;
  versions: VersionSummary[];
  conflictToken: Uint8Array | null;
}

const VERSION_STATUS: Record<number, string> = {
  1: 'inactive',
  2: 'current',
  3: 'ramping',
  4: 'draining',
  5: 'drained',
  6: 'created',
};

/** The deployment as the server sees it; null when no worker of it has polled yet. */
export async function describeDeployment(
  service: WorkflowService,
  namespace: string,
  deploymentName: string,
): Promise<DeploymentSummary | null> {
  let info;
  let conflictToken: Uint8Array | null = null;
  try {
    const res = await service.describeWorkerDeployment({ namespace, deploymentName });
    info = res.workerDeploymentInfo;
    conflictToken = res.conflictToken ?? null;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
  if (!info) return null;
  const routing = info.routingConfig;
  return {
    deploymentName,
    currentBuildId: routing?.currentDeploymentVersion?.buildId || null,
    rampingBuildId: routing?.rampingDeploymentVersion?.buildId || null,
    routingSet:
      Boolean(routing?.revisionNumber && Number(routing.revisionNumber) > 0) ||
      !!routing?.currentVersionChangedTime,
    versions: (info.versionSummaries ?? []).map((v) => ({
      buildId: v.deploymentVersion?.buildId ?? '',
      status: VERSION_STATUS[v.status ?? 0] ?? 'unknown',
      drainage: v.drainageStatus === 1 ? 'draining' : v.drainageStatus === 2 ? 'drained' : null,
      createdAt: v.createTime?.seconds ? new Date(Number(v.createTime.seconds) * 1000) : null,
    })),
    conflictToken,
  };
}

/**
 * Makes `version` the one new campaigns (and unversioned runs, on their next task) go to. The
 * server refuses a version none of whose workers polls yet, and one missing a task queue the
 * current version serves (a fine-tune host not upgraded yet) unless told to ignore that.
 */
export async function promoteVersion(
  service: WorkflowService,
  namespace: string,
  version: WorkerVersion,
  opts: { identity: string; ignoreMissingTaskQueues?: boolean; conflictToken?: Uint8Array | null },
): Promise<void> {
  try {
    await service.setWorkerDeploymentCurrentVersion({
      namespace,
      deploymentName: version.deploymentName,
      buildId: version.buildId,
      identity: opts.identity,
      ignoreMissingTaskQueues: opts.ignoreMissingTaskQueues ?? false,
      ...(opts.conflictToken ? { conflictToken: opts.conflictToken } : {}),
    });
  } catch (err) {
    if (isNotFound(err)) {
      throw new UserError(
        `No worker of ${versionLabel(version)} has polled yet: start \`meteorctl worker --build-id ${version.buildId}\` first`,
      );
    }
    throw new UserError(`Temporal refused to make ${versionLabel(version)} current: ${errorMessage(err)}`);
  }
}

export type FirstPromotion = 'promoted' | 'already-routed' | 'gave-up' | 'stopped';

/**
 * On a deployment whose routing nobody has set (its first version ever), makes `version` current
 * so a fresh install runs campaigns without an extra step. Once routing is set, an upgrade is the
 * operator's call (`meteorctl deployment promote`), never a worker's. Waits for the server to
 * register this worker's version (the first polls), up to `withinMs`.
 */
export async function promoteIfFirst(
  service: WorkflowService,
  namespace: string,
  version: WorkerVersion,
  opts: { identity: string; withinMs?: number; signal?: AbortSignal },
): Promise<FirstPromotion> {
  const deadline = Date.now() + (opts.withinMs ?? 60_000);
  for (;;) {
    // A worker shut down while its server was still coming up must not linger here.
    if (opts.signal?.aborted) return 'stopped';
    try {
      const d = await describeDeployment(service, namespace, version.deploymentName);
      if (d?.routingSet) return 'already-routed';
      if (d?.versions.some((v) => v.buildId === version.buildId)) {
        // The token makes a second worker's promotion fail rather than overwrite the first's.
        await service.setWorkerDeploymentCurrentVersion({
          namespace,
          deploymentName: version.deploymentName,
          buildId: version.buildId,
          identity: opts.identity,
          ...(d.conflictToken ? { conflictToken: d.conflictToken } : {}),
        });
        return 'promoted';
      }
    } catch {
      // Not registered yet, a race with another worker, or the server briefly away: look again.
    }
    if (Date.now() > deadline) return 'gave-up';
    await abortableSleep(250, opts.signal);
  }
}

function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

function isNotFound(err: unknown): boolean {
  // gRPC status 5 (NOT_FOUND), as the client and the native connection report it.
  return (err as { code?: unknown } | null)?.code === 5;
}
