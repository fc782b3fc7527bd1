/**
 * The real trainer (infra/trainer/run) on the CPU: a tiny random Llama made locally, the project's
 * own dataset lines and trainer configs, the METEOR_* environment of job-layout.ts. An SFT run
 * from the base weights, then a DPO child that continues the SFT adapter, then a refused loss.
 *
 * Needs .venv-trainer (CI runs `bash infra/trainer/install.sh` first); without it the file fails.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobFiles, METRICS_PREFIX, trainerEnv } from '../../activities/finetune/job-layout';
import { preferenceLine, sftLine, type PreferenceExample, type SftExample } from '../../core/dataset-formats';
import { TrainerSchema } from '../../core/finetune-spec';
import { writeTrainerConfigs } from '../../core/trainer-config';
import type { PreferenceLoss } from '../../workflows/types';

const REPO = path.resolve(__dirname, '../..');
const PYTHON = path.join(REPO, '.venv-trainer/bin/python');
const RUN = path.join(REPO, 'infra/trainer/run');
const TINY_MODEL = path.join(REPO, 'infra/trainer/tiny-model');

const SYSTEM = 'you are a careful model . think step by step .';
const QUESTIONS = [
  'what is two plus two ?',
  'why is the sky blue ?',
  'how do models learn from data ?',
  'who is right , the test or the model ?',
  'when is a number even ?',
  'which is better , a good reason or a bad one ?',
];
const SFT: SftExample[] = QUESTIONS.map((q) => ({
  system: SYSTEM,
  user: q,
  assistant: `the answer is one step then two : ${q.replace(' ?', '')} is true because we think .`,
}));
const PREFERENCES: PreferenceExample[] = QUESTIONS.map((q) => ({
  system: SYSTEM,
  user: q,
  chosen: `the correct answer : ${q.replace(' ?', '')} , explained step by step .`,
  rejected: 'no . i do not know .',
}));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function exec(command: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, env: { ...process.env, HF_HUB_OFFLINE: '1', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, stdout, stderr, seconds: (performance.now() - started) / 1000 }),
    );
  });
}

/**
 * Loads each adapter with PEFT on a fresh copy of the base weights; prints, one line per adapter,
 * its LoRA tensors' names and sums. One Python process for several adapters: its start-up
 * (importing torch, transformers and peft) takes seconds.
 */
const LOAD_ADAPTERS = `
import json, sys
from peft import PeftModel
from transformers import AutoModelForCausalLM
for adapter in sys.argv[2:]:
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sys.argv[1]), adapter)
    print(json.dumps({n: float(p.detach().abs().sum()) for n, p in model.named_parameters() if "lora_" in n}))
`;

async function loadAdapters(base: string, adapters: string[]): Promise<Array<Record<string, number>>> {
  const run = await exec(PYTHON, ['-c', LOAD_ADAPTERS, base, ...adapters]);
  expect(run.code, run.stderr).toBe(0);
  const lines = run.stdout.trim().split('\n').slice(-adapters.length);
  expect(lines).toHaveLength(adapters.length);
  return lines.map((line) => JSON.parse(line) as Record<string, number>);
}

interface MetricsLine {
  step?: number;
  loss?: number | null;
  learning_rate?: number | null;
  epoch?: number | null;
  final?: boolean;
  train_loss?: number | null;
}

function printedMetrics(stdout: string): MetricsLine[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith(METRICS_PREFIX))
    .map((line) => JSON.parse(line.slice(METRICS_PREFIX.length)) as MetricsLine);
}

let tmp = '';
let base = '';
const timings: string[] = [];

/** Lays out one job folder (datasets, configs) and returns its trainer environment. */
async function prepareJob(
  name: string,
  kind: 'sft' | 'preference',
  loss: PreferenceLoss | null,
  parentAdapter: string | null,
): Promise<{ env: Record<string, string>; files: ReturnType<typeof jobFiles> }> {
  const files = jobFiles(path.join(tmp, name));
  await mkdir(files.datasetDir, { recursive: true });
  const lines = (format: 'openai' | 'trl' | 'llamafactory'): string =>
    (kind === 'sft'
      ? SFT.map((ex) => sftLine(format, ex))
      : PREFERENCES.map((ex) => preferenceLine(format, ex))
    )
      .map((line) => JSON.stringify(line))
      .join('\n') + '\n';
  const datasets = {
    openai: path.join(files.datasetDir, 'train.openai.jsonl'),
    trl: path.join(files.datasetDir, 'train.trl.jsonl'),
    llamafactory: path.join(files.datasetDir, 'train.llamafactory.jsonl'),
  };
  await writeFile(datasets.openai, lines('openai'));
  await writeFile(datasets.trl, lines('trl'));
  await writeFile(datasets.llamafactory, lines('llamafactory'));
  await writeTrainerConfigs(files.configDir, {
    kind,
    loss,
    baseWeights: base,
    datasets,
    outputDir: files.outputDir,
    trainer: TrainerSchema.parse({
      cpu: true,
      precision: 'fp32',
      maxSteps: 3,
      batchSize: 2,
      gradientAccumulation: 1,
      // Large enough for three steps to move a tiny model visibly.
      learningRate: 5e-3,
      lora: { enabled: true, r: 4, alpha: 8, dropout: 0, targetModules: 'all-linear' },
    }),
  });
  const env = trainerEnv({
    key: `smoke-${name}`,
    stage: 'contrast',
    kind,
    loss,
    jobDir: files.root,
    datasetFile: path.basename(datasets.openai),
    baseModel: 'tiny-llama',
    baseWeights: base,
    parentAdapter,
  });
  return { env, files };
}

async function checkRun(name: string, run: Run, metricsPath: string): Promise<MetricsLine[]> {
  expect(run.code, `${name} failed:\n${run.stderr.slice(-3000)}`).toBe(0);
  const written = (await readFile(metricsPath, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as MetricsLine);
  const steps = written.filter((line) => line.final !== true);
  expect(steps.length).toBeGreaterThanOrEqual(3);
  for (const line of steps) {
    expect(Number.isFinite(line.loss)).toBe(true);
    expect(typeof line.step).toBe('number');
    expect(typeof line.learning_rate).toBe('number');
    expect(typeof line.epoch).toBe('number');
  }
  const final = written.at(-1);
  expect(final?.final).toBe(true);
  expect(Number.isFinite(final?.train_loss)).toBe(true);
  // The job log carries the same lines, for backends that only see the log.
  expect(printedMetrics(run.stdout)).toEqual(written);
  const losses = steps.map((line) => line.loss?.toFixed(4)).join(', ');
  timings.push(`${name}: ${run.seconds.toFixed(1)} s, losses [${losses}], train_loss ${final?.train_loss}`);
  return written;
}

beforeAll(async () => {
  if (!existsSync(PYTHON)) {
    throw new Error(`No trainer venv at ${PYTHON}: run \`bash infra/trainer/install.sh\` before these tests`);
  }
  tmp = await mkdtemp(path.join(os.tmpdir(), 'meteor-trainer-'));
  base = path.join(tmp, 'tiny-llama');
  // The tokenizer learns the datasets' words, so the tiny model sees real token ids.
  const corpus = path.join(tmp, 'corpus.txt');
  await writeFile(
    corpus,
    [
      ...SFT.map((ex) => `${ex.system} ${ex.user} ${ex.assistant}`),
      ...PREFERENCES.map((ex) => `${ex.chosen} ${ex.rejected}`),
    ].join('\n'),
  );
  const made = await exec(TINY_MODEL, [base, corpus]);
  expect(made.code, made.stderr).toBe(0);
  timings.push(`tiny-model: ${made.seconds.toFixed(1)} s`);
}, 60_000);

afterAll(async () => {
  console.log(`trainer smoke timings:\n  ${timings.join('\n  ')}`);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('infra/trainer/run on the CPU', () => {
  let sftAdapter = '';

  it('fine-tunes the base weights with SFT and LoRA, leaving a PEFT adapter and metrics', async () => {
    const { env, files } = await prepareJob('sft', 'sft', null, null);
    const run = await exec(RUN, [], env);
    await checkRun('sft', run, files.metrics);
    expect(existsSync(path.join(files.outputDir, 'adapter_config.json'))).toBe(true);
    expect(existsSync(path.join(files.outputDir, 'adapter_model.safetensors'))).toBe(true);
    const adapterConfig = JSON.parse(
      await readFile(path.join(files.outputDir, 'adapter_config.json'), 'utf8'),
    ) as {
      r: number;
      peft_type: string;
    };
    expect(adapterConfig).toMatchObject({ r: 4, peft_type: 'LORA' });
    const [tensors] = await loadAdapters(base, [files.outputDir]);
    expect(Object.keys(tensors ?? {}).length).toBeGreaterThan(0);
    sftAdapter = files.outputDir;
  }, 60_000);

  it('trains a DPO child from the base weights plus the SFT adapter, and the child differs', async () => {
    expect(sftAdapter).not.toBe('');
    const { env, files } = await prepareJob('dpo', 'preference', 'dpo', sftAdapter);
    const run = await exec(RUN, [], env);
    await checkRun('dpo (child of sft)', run, files.metrics);
    expect(run.stderr).toContain(`continuing the adapter in ${sftAdapter}`);
    const [parent = {}, child = {}] = await loadAdapters(base, [sftAdapter, files.outputDir]);
    // Same adapter (same LoRA tensors), trained further.
    expect(Object.keys(child).sort()).toEqual(Object.keys(parent).sort());
    const moved = Object.keys(child).filter(
      (name) => Math.abs((child[name] ?? 0) - (parent[name] ?? 0)) > 1e-6,
    );
    expect(moved.length).toBeGreaterThan(0);
    // DPO's frozen reference copy of the parent is not saved with the result.
    expect(existsSync(path.join(files.outputDir, 'ref'))).toBe(false);
  }, 60_000);

  it('refuses a loss it does not support, naming it', async () => {
    const { env } = await prepareJob('unknown', 'preference', 'dpo', null);
    const run = await exec(RUN, [], { ...env, METEOR_LOSS: 'contrastive-magic' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unsupported preference loss 'contrastive-magic'/);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  }, 30_000);

  it('refuses a job with a missing environment variable, naming it', async () => {
    const { env } = await prepareJob('no-weights', 'sft', null, null);
    const run = await exec(RUN, [], { ...env, METEOR_BASE_WEIGHTS: '' });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('METEOR_BASE_WEIGHTS is not set');
  }, 30_000);
});
