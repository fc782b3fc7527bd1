/**
 * `meteorctl deployment …`: the Worker Deployment the workers poll as (Temporal Worker
 * Versioning): which build takes new campaigns, and which older builds still hold pinned runs.
 * The upgrade procedure is in the README ("Upgrading a running platform").
 * Registered from cli/main.ts; errors reach main's handler (stderr, non-zero exit).
 */
import os from 'node:os';
import { Command } from 'commander';
import { UserError } from '../core/errors';
import {
  describeDeployment,
  packageBuildId,
  promoteVersion,
  workerVersion,
  type DeploymentSummary,
} from '../core/worker-deployment';
import { printJson, withClients } from './common';

function renderDeployment(d: DeploymentSummary | null, name: string): string[] {
  if (!d) return [`deployment ${name}: no versioned worker has polled yet`];
  const lines = [
    `deployment ${d.deploymentName}`,
    `  new campaigns start on: ${d.currentBuildId ? `build ${d.currentBuildId}` : 'unversioned workers'}` +
      (d.rampingBuildId ? ` (ramping to ${d.rampingBuildId})` : ''),
    '  builds:',
  ];
  for (const v of d.versions) {
    const drain =
      v.drainage === 'draining'
        ? '  pinned runs remain: keep its workers'
        : v.drainage === 'drained' || v.status === 'drained'
          ? '  no pinned runs left: its workers may stop'
          : '';
    lines.push(`    ${v.buildId.padEnd(20)} ${v.status.padEnd(9)}${drain}`);
  }
  lines.push(`  this checkout is build ${packageBuildId()}`);
  return lines;
}

export function deploymentCommand(): Command {
  const deployment = new Command('deployment').description(
    'Worker Versioning: which worker build takes new campaigns, which builds still run pinned ones',
  );
  const nameOption = [
    '--deployment-name <name>',
    'the Worker Deployment (default: $METEOR_DEPLOYMENT_NAME or "meteor")',
  ] as const;

  deployment
    .command('status')
    .description(
      "The deployment's builds: the current one, and whether older ones still run pinned campaigns",
    )
    .option(...nameOption)
    .option('--json', 'print the deployment as JSON')
    .action(async (opts: { deploymentName?: string; json?: boolean }) => {
      const name = workerVersion({ deploymentName: opts.deploymentName })?.deploymentName ?? '';
      await withClients(async (c) => {
        const d = await describeDeployment(c.temporal.workflowService, c.services.namespace, name);
        if (opts.json) {
          printJson(d ? { ...d, conflictToken: undefined } : { deploymentName: name, versions: [] });
        } else {
          process.stdout.write(`${renderDeployment(d, name).join('\n')}\n`);
        }
      });
    });

  deployment
    .command('promote <buildId>')
    .description(
      'Start new campaigns on <buildId> from now on (its workers must be polling); runs pinned to older builds stay there',
    )
    .option(...nameOption)
    .option(
      '--ignore-missing-task-queues',
      'promote even if the build does not yet serve a task queue the current one does (a fine-tune host not upgraded)',
    )
    .action(async (buildId: string, opts: { deploymentName?: string; ignoreMissingTaskQueues?: boolean }) => {
      const version = workerVersion({ deploymentName: opts.deploymentName, buildId });
      if (!version) throw new UserError('promote: no version');
      await withClients(async (c) => {
        await promoteVersion(c.temporal.workflowService, c.services.namespace, version, {
          identity: `meteorctl@${os.hostname()}`,
          ignoreMissingTaskQueues: opts.ignoreMissingTaskQueues ?? false,
        });
        process.stdout.write(
          `build ${version.buildId} of deployment ${version.deploymentName} now takes new campaigns; ` +
            'runs pinned to other builds finish there (`meteorctl deployment status` shows when they are drained)\n',
        );
      });
    });

  return deployment;
}
