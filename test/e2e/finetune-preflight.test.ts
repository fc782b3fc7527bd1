/**
 * Launch preflight checks the fine-tune backend before anything is created, and names the spec
 * field to fix: the `local` command, the Kubernetes namespace (over HTTP against a Kubernetes API
 * server process), the shared folder, the Slurm partition (against the dev Slurm).
 */
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../core/errors';
import { startMockApiServer, type MockApiServer } from '../support/k8s';
import { startDevSlurm, type DevSlurm } from '../support/slurm';
import { launch, startHarness, writeSpec, type Harness } from '../support/harness';

let h: Harness;
let k8s: MockApiServer;
let slurm: DevSlurm;

async function campaignCount(): Promise<number> {
  const row = await h.clients.db
    .selectFrom('campaigns')
    .select(sql<number>`count(*)::int`.as('n'))
    .executeTakeFirstOrThrow();
  return row.n;
}

/** The launch must be refused with a UserError naming each problem, and create nothing. */
async function refused(overrides: Record<string, unknown>): Promise<string> {
  const spec = await writeSpec(h, overrides);
  const before = await campaignCount();
  const err = await launch(h, spec).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'expected the launch to be refused').toBeInstanceOf(UserError);
  expect(await campaignCount()).toBe(before);
  return (err as UserError).message;
}

beforeAll(async () => {
  h = await startHarness({ worker: false });
  k8s = await startMockApiServer();
  await k8s.request('POST', '/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'ml' },
  });
  slurm = startDevSlurm();
  // The Slurm commands find this cluster through SLURM_CONF, as on a login node.
  process.env.SLURM_CONF = slurm.conf;
}, 240_000);
afterAll(async () => {
  await k8s?.stop();
  await h?.close();
});

describe('launch preflight of the fine-tune backend', () => {
  it('local: names fineTune.command when the trainer does not exist', async () => {
    const message = await refused({ fineTune: { command: 'infra/trainer/no-such-trainer --fast' } });
    expect(message).toContain('Preflight failed; nothing was created');
    expect(message).toMatch(
      /fineTune\.command: "infra\/trainer\/no-such-trainer" is neither a file under .* nor on PATH/,
    );
  });

  it('kubernetes: names fineTune.namespace when it does not exist, and a shared folder it cannot write', async () => {
    const readOnly = path.join(h.tmp, 'read-only');
    await mkdir(readOnly, { recursive: true });
    await chmod(readOnly, 0o500);
    const message = await refused({
      fineTune: {
        type: 'kubernetes',
        namespace: 'nowhere',
        image: 'ghcr.io/acme/trainer:1',
        command: ['/opt/meteor/infra/trainer/run'],
        kubeconfig: k8s.kubeconfigPath,
        sharedDir: path.join(readOnly, 'inner'),
        cwd: undefined,
        env: undefined,
        pollInterval: undefined,
      },
    });
    expect(message).toContain(`fineTune.namespace: namespace "nowhere" does not exist`);
    // As root every folder is writable; the check still runs and says nothing then.
    if (process.getuid?.() !== 0) expect(message).toContain('fineTune.sharedDir:');
  });

  it('kubernetes: a good namespace passes the backend check', async () => {
    const message = await refused({
      models: { weak: { apiKeyEnv: 'METEOR_TEST_UNSET_KEY' } },
      fineTune: {
        type: 'kubernetes',
        namespace: 'ml',
        image: 'ghcr.io/acme/trainer:1',
        command: ['/opt/meteor/infra/trainer/run'],
        kubeconfig: k8s.kubeconfigPath,
        sharedDir: path.join(h.tmp, 'shared'),
        cwd: undefined,
        env: undefined,
        pollInterval: undefined,
      },
    });
    // Refused for the key only: nothing about the backend.
    expect(message).toContain('METEOR_TEST_UNSET_KEY');
    expect(message).not.toContain('fineTune');
  });

  it('slurm: names fineTune.partition when the cluster has no such partition', async () => {
    const message = await refused({
      fineTune: {
        type: 'slurm',
        command: '/bin/true',
        sharedDir: slurm.sharedDir,
        partition: 'a100-nowhere',
        gpusPerNode: 0,
        cwd: undefined,
        env: undefined,
        pollInterval: undefined,
      },
    });
    expect(message).toMatch(/fineTune\.partition: partition "a100-nowhere" does not exist/);
  });
});
