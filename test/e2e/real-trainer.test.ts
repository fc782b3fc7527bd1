/**
 * One campaign trained by the real trainer: distill and one assess iteration, each fine-tuned by
 * `infra/trainer/run` (TRL + PEFT on the CPU) from a tiny Llama made locally, the adapter loaded
 * into the (simulated) weak endpoint through vLLM's LoRA API, M2 trained on top of M1's adapter.
 * Needs `bash infra/trainer/install.sh` (CI runs it); fails, never skips, without it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFineTunes } from '../../client/finetunes';
import {
  exampleQuestions,
  launch,
  REPO_ROOT,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';

const TRAINER_PYTHON = path.join(REPO_ROOT, '.venv-trainer', 'bin', 'python');

describe('a campaign trained by the real trainer', () => {
  let h: Harness;
  let modelDir: string;
  let tinyModel: string;
  beforeAll(async () => {
    if (!existsSync(TRAINER_PYTHON)) {
      throw new Error('the trainer venv is missing: run `bash infra/trainer/install.sh` first');
    }
    // The tiny model (seconds of Python start-up) is made while the harness starts.
    modelDir = await mkdtemp(path.join(os.tmpdir(), 'meteor-tiny-llama-'));
    tinyModel = path.join(modelDir, 'tiny-llama');
    const made = promisify(execFile)(path.join(REPO_ROOT, 'infra', 'trainer', 'tiny-model'), [tinyModel], {
      env: { ...process.env, HF_HUB_OFFLINE: '1' },
    });
    made.catch(() => undefined); // awaited below, after the harness
    h = await startHarness();
    await made;
  }, 120_000);
  afterAll(async () => {
    await h?.close();
    if (modelDir) await rm(modelDir, { recursive: true, force: true });
  });

  it('makes M1 and M2 with TRL: PEFT adapters, finite losses, M2 starting from M1', async () => {
    const train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(8));
    const spec = await writeSpec(h, {
      questions: { train, eval: undefined },
      models: { weak: { weights: tinyModel } },
      stages: {
        distill: { batchSize: 4 },
        // Every question yields a training row, whatever the simulated model answers.
        assess: { enabled: true, iterations: 1, maxRounds: 1, batchSize: 4, unsolved: 'distilled-answer' },
      },
      fineTune: {
        command: 'infra/trainer/run',
        env: { HF_HUB_OFFLINE: '1', TOKENIZERS_PARALLELISM: 'false' },
        trainer: {
          cpu: true,
          precision: 'fp32',
          maxSteps: 3,
          batchSize: 2,
          gradientAccumulation: 1,
          learningRate: 1e-3,
        },
      },
    });
    const { campaignId } = await launch(h, spec);
    const final = await waitDone(h, campaignId, 300_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => m.label)).toEqual(['M0', 'M1', 'M2']);

    const jobs = await listFineTunes(h.clients.db, campaignId);
    expect(jobs.map((j) => [j.stage, j.state])).toEqual([
      ['distill', 'succeeded'],
      ['assess', 'succeeded'],
    ]);
    for (const j of jobs) {
      expect(Number.isFinite(j.finalLoss)).toBe(true);
      const out = (j.checkpointUri ?? '').replace(/^file:\/\//, '');
      expect(existsSync(path.join(out, 'adapter_config.json'))).toBe(true);
      expect(existsSync(path.join(out, 'adapter_model.safetensors'))).toBe(true);
    }
    const rows = await h.clients.db
      .selectFrom('finetune_jobs')
      .select(['stage', 'base_model', 'parent_checkpoint', 'output_dir'])
      .where('campaign_id', '=', campaignId)
      .execute();
    const m1 = rows.find((r) => r.stage === 'distill');
    const m2 = rows.find((r) => r.stage === 'assess');
    // Weights, never a served name; the child starts from its parent's adapter.
    expect(m1?.base_model).toBe(tinyModel);
    expect(m2?.base_model).toBe(tinyModel);
    expect(m1?.parent_checkpoint).toBeNull();
    expect(m2?.parent_checkpoint).toBe(m1?.output_dir);
    const metrics = await h.clients.db
      .selectFrom('finetune_events')
      .innerJoin('finetune_jobs', 'finetune_jobs.id', 'finetune_events.job_id')
      .select(['finetune_events.message'])
      .where('finetune_jobs.campaign_id', '=', campaignId)
      .where('finetune_events.kind', '=', 'metrics')
      .execute();
    expect(metrics.length).toBeGreaterThan(0);
  }, 360_000);
});
