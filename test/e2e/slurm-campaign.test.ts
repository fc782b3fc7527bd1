/**
 * Campaigns whose fine-tunes run on the real dev Slurm (infra/slurm/dev-cluster.sh), through
 * each transport: distill and assess train M1 and M2 as sbatch jobs (the simulator's trainer as
 * the job command), the datasets travel through the shared folder, Slurm's accounting shows each
 * job COMPLETED, and the adapters are loaded from the shared folder. Prints the time from a
 * stage's end to its job running, per transport.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFineTunes } from '../../client/finetunes';
import { buildReport, renderReportText } from '../../client/report';
import {
  exampleQuestions,
  launch,
  REPO_ROOT,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  waitFor,
  type Harness,
} from '../support/harness';
import { startDevSlurm, type DevSlurm } from '../support/slurm';

let h: Harness;
let slurm: DevSlurm;

beforeAll(async () => {
  slurm = startDevSlurm();
  // What a worker next to this cluster has: the Slurm config and a token for slurmrestd.
  process.env.SLURM_CONF = slurm.conf;
  process.env.SLURM_JWT = slurm.jwt;
  h = await startHarness();
}, 180_000);
afterAll(async () => {
  await h?.close();
});

/** Seconds from the end of each training stage to its job's first RUNNING poll. */
async function stageEndToRunning(campaignId: string): Promise<number[]> {
  const runs = await h.clients.db
    .selectFrom('stage_runs')
    .select(['stage', 'iteration', 'finished_at'])
    .where('campaign_id', '=', campaignId)
    .execute();
  const out: number[] = [];
  for (const job of await h.clients.db
    .selectFrom('finetune_jobs')
    .select(['id', 'stage', 'iteration'])
    .where('campaign_id', '=', campaignId)
    .execute()) {
    const running = await h.clients.db
      .selectFrom('finetune_events')
      .select('at')
      .where('job_id', '=', job.id)
      .where('kind', '=', 'status')
      .where('message', 'like', '%→ running%')
      .orderBy('id')
      .executeTakeFirst();
    const run = runs.find((r) => r.stage === job.stage && r.iteration === job.iteration);
    if (running && run?.finished_at) out.push((+new Date(running.at) - +new Date(run.finished_at)) / 1000);
  }
  return out;
}

describe('fine-tunes on the dev Slurm', () => {
  for (const transport of ['cli', 'rest'] as const) {
    it(`${transport}: trains M1 and M2 as Slurm jobs, exactly one each, adapters from the shared folder`, async () => {
      const train = await writeQuestions(h.tmp, `train-${transport}.jsonl`, await exampleQuestions(8));
      const spec = await writeSpec(h, {
        questions: { train },
        stages: {
          distill: { batchSize: 4 },
          assess: { enabled: true, iterations: 1, maxRounds: 2, batchSize: 4, unsolved: 'distilled-answer' },
        },
        fineTune: {
          type: 'slurm',
          transport,
          ...(transport === 'rest' ? { rest: { url: slurm.restUrl, userName: slurm.restUser } } : {}),
          command: `${path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx')} ${path.join(REPO_ROOT, 'infra', 'sim', 'train.ts')}`,
          sharedDir: slurm.sharedDir,
          partition: 'debug',
          gpusPerNode: 0,
          timeLimit: '10',
          env: { METEOR_SIM_TRAIN_SECONDS: '0.5' },
          cwd: undefined,
        },
      });
      const { campaignId } = await launch(h, spec);
      const final = await waitDone(h, campaignId, 180_000);
      expect(final.error).toBeNull();
      expect(final.state).toBe('completed');
      expect(final.lineage.map((m) => m.label)).toEqual(['M0', 'M1', 'M2']);

      const jobs = await listFineTunes(h.clients.db, campaignId);
      expect(jobs.map((j) => [j.stage, j.backend, j.state])).toEqual([
        ['distill', 'slurm', 'succeeded'],
        ['assess', 'slurm', 'succeeded'],
      ]);
      const rows = await h.clients.db
        .selectFrom('finetune_jobs')
        .select(['name', 'external_id', 'output_dir', 'parent_checkpoint', 'submitted', 'stage'])
        .where('campaign_id', '=', campaignId)
        .execute();
      for (const row of rows) {
        // Slurm's own accounting (slurmdbd writes it a moment later): one job under the name, completed.
        const acct = await waitFor(`sacct to record ${row.name}`, async () => {
          const lines = execFileSync(
            'sacct',
            ['-X', '-n', '-P', '-a', '-S', '2020-01-01', '--name', row.name ?? '', '-o', 'JobID,State'],
            { env: slurm.env, encoding: 'utf8' },
          )
            .trim()
            .split('\n')
            .filter((l) => l !== '');
          return lines.length > 0 && lines.every((l) => !/RUNNING|PENDING/.test(l)) ? lines : undefined;
        });
        expect(acct).toEqual([`${row.external_id}|COMPLETED`]);
        expect(row.output_dir.startsWith(slurm.sharedDir)).toBe(true);
        expect(existsSync(path.join(row.output_dir, 'adapter.json'))).toBe(true);
        // The job script is kept with the job, and carries no secret.
        expect(row.submitted).toContain(`#SBATCH --job-name=${row.name}`);
        expect(row.submitted).not.toContain(slurm.jwt);
      }
      const m1 = rows.find((r) => r.stage === 'distill');
      expect(rows.find((r) => r.stage === 'assess')?.parent_checkpoint).toBe(m1?.output_dir);

      const report = await buildReport(h.clients.db, campaignId);
      expect(report.fineTunes.map((f) => f.externalId)).toEqual(jobs.map((j) => j.externalId));
      expect(renderReportText(report)).toContain('fine-tunes');
      const delays = await stageEndToRunning(campaignId);
      console.log(
        `[slurm ${transport}] stage end → job RUNNING (s): ${delays.map((d) => d.toFixed(2)).join(', ')}`,
      );
    }, 240_000);
  }
});
