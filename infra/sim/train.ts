/**
 * The simulated trainer: what the platform's `local` fine-tune backend runs
 * (`tsx infra/sim/train.ts`). It trains nothing — it pretends to (progress lines, a falling
 * loss), then writes an adapter.json holding the dataset's question → answer pairs (plus the
 * parent adapter's), which the simulator serves as a "fine-tuned" LoRA adapter, and what the
 * lineage was trained on (its generation, row counts by kind, and its answer and preference rows,
 * which the server grades at load so that only right data is learned: adapters.ts, learnedOf),
 * from which the simulator derives how well the adapter generalises to unseen questions.
 *
 * Env: METEOR_DATASET_PATH (JSONL: OpenAI SFT or preference lines), METEOR_OUTPUT_DIR,
 * METEOR_BASE_MODEL, optional METEOR_PARENT_ADAPTER (dir), METEOR_SIM_TRAIN_SECONDS (default 2),
 * optional METEOR_EPOCHS (default 3).
 * Exit: 0 done, 1 invalid input (message on stderr), 143 on SIGTERM, 130 on SIGINT.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AdapterExample, AdapterFile, TrainedRow, TrainingCounts } from './adapters';
import { ADAPTER_FILE, AdapterError, lineageOf, questionOfPrompt, readAdapterFile } from './adapters';
import type { DatasetRow } from './dataset';
import { DatasetError, readDataset } from './dataset';
import { hash32, normalize } from './text';
import { METRICS_PREFIX } from '../../activities/finetune/job-layout';

const TAG = '[simulated trainer]';
const BATCH_SIZE = 4;
/** Progress lines per epoch at most, so a large dataset does not flood the job log. */
const MAX_LINES_PER_EPOCH = 20;

process.on('SIGTERM', () => {
  process.stdout.write(`${TAG} received SIGTERM, stopping\n`);
  process.exit(143);
});
process.on('SIGINT', () => process.exit(130));

class InputError extends Error {}

function requiredEnv(name: string): string {
  const v = process.env[name];
  if (!v) throw new InputError(`${name} is not set`);
  return v;
}

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0)
    throw new InputError(`${name} must be a non-negative number, got '${raw}'`);
  return v;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The question a critique example ends with (core/prompts/assess.ts, CRITIQUE_QUESTION). */
const CRITIQUE_QUESTION = 'Is this answer correct?';

/** A verdict reply ({"correct": boolean, ...}): the target of a critique example, not an answer. */
function isVerdict(answer: string): boolean {
  try {
    const v: unknown = JSON.parse(answer);
    return (
      typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)['correct'] === 'boolean'
    );
  } catch {
    return false;
  }
}

/** Stage 2's critique example: asks whether an answer is correct, or replies with a verdict. */
function isCritique(row: DatasetRow): boolean {
  return row.question.includes(CRITIQUE_QUESTION) || isVerdict(row.answer);
}

/** Parent examples first, then the new ones; a question trained again keeps its newest answer. */
function merge(parent: readonly AdapterExample[], fresh: readonly AdapterExample[]): AdapterExample[] {
  const byQuestion = new Map<string, AdapterExample>();
  for (const ex of [...parent, ...fresh]) {
    const key = normalize(questionOfPrompt(ex.question));
    byQuestion.delete(key);
    byQuestion.set(key, ex);
  }
  return [...byQuestion.values()];
}

async function main(): Promise<void> {
  const datasetPath = requiredEnv('METEOR_DATASET_PATH');
  const outputDir = requiredEnv('METEOR_OUTPUT_DIR');
  const baseModel = requiredEnv('METEOR_BASE_MODEL');
  const parentDir = process.env['METEOR_PARENT_ADAPTER'] || undefined;
  const seconds = positiveNumber('METEOR_SIM_TRAIN_SECONDS', 2);
  const epochs = Math.max(1, Math.round(positiveNumber('METEOR_EPOCHS', 3)));

  const rows = readDataset(datasetPath);
  // Critique examples (Stage 2's self-assessment data) teach judging, not answering: not learned
  // as answers, counted as a skill of their own (the adapter cuts what it cannot back up).
  const critiques = rows.filter(isCritique).length;
  const fresh = rows.filter((ex) => !isCritique(ex)).map(({ question, answer }) => ({ question, answer }));
  const parentFile = parentDir ? readAdapterFile(parentDir) : undefined;
  const parent = parentFile ? lineageOf(parentFile) : undefined;
  const before = parent?.training ?? { sft: 0, critique: 0, preference: 0 };
  const training: TrainingCounts = {
    sft: before.sft + rows.filter((r) => r.kind === 'sft' && !isCritique(r)).length,
    critique: before.critique + critiques,
    preference: before.preference + rows.filter((r) => r.kind === 'preference').length,
  };
  const generation = (parent?.generation ?? 0) + 1;
  const log = (line: string) => process.stdout.write(`${TAG} ${line}\n`);
  log(
    `simulation: no real training. base ${baseModel}${parentDir ? `, parent adapter ${parentDir}` : ''}, ${rows.length} rows from ${datasetPath}` +
      (critiques > 0 ? ` (${critiques} critique examples not learned as answers)` : ''),
  );

  const stepsPerEpoch = Math.max(1, Math.ceil(rows.length / BATCH_SIZE));
  const totalSteps = epochs * stepsPerEpoch;
  const every = Math.max(1, Math.ceil(stepsPerEpoch / MAX_LINES_PER_EPOCH));
  const stepMs = (seconds * 1000) / totalSteps;
  const noiseSeed = hash32(datasetPath, rows.length);
  // The same metrics lines as the real trainer (infra/trainer), so the platform's events and
  // reports read a simulated run like a real one; the numbers are made up.
  const metrics = (m: Record<string, number | boolean>) =>
    process.stdout.write(`${METRICS_PREFIX}${JSON.stringify({ simulated: true, ...m })}\n`);
  let lastLoss = 0;
  for (let epoch = 1; epoch <= epochs; epoch++) {
    for (let step = 1; step <= stepsPerEpoch; step++) {
      await sleep(stepMs);
      const done = ((epoch - 1) * stepsPerEpoch + step) / totalSteps;
      const noise = ((hash32(noiseSeed, epoch, step) % 1000) / 1000 - 0.5) * 0.08;
      const loss = 2.2 * Math.exp(-3 * done) + 0.35 + noise;
      lastLoss = loss;
      if (step % every === 0 || step === stepsPerEpoch) {
        log(`epoch ${epoch}/${epochs} step ${step}/${stepsPerEpoch} loss ${loss.toFixed(3)}`);
        const globalStep = (epoch - 1) * stepsPerEpoch + step;
        metrics({
          step: globalStep,
          loss: Number(loss.toFixed(4)),
          learning_rate: 3e-5,
          epoch: globalStep / stepsPerEpoch,
        });
      }
    }
  }
  metrics({ final: true, step: totalSteps, train_loss: Number(lastLoss.toFixed(4)) });

  // Every answer and preference row of the lineage, for the server to grade at load (adapters.ts,
  // learnedOf): what the adapter learns depends on whether the data is right, not only its size.
  const trained: TrainedRow[] = [
    ...(parentFile?.trained ?? []),
    ...rows
      .filter((r) => !isCritique(r))
      .map((r): TrainedRow => ({
        generation,
        kind: r.kind,
        question: r.question,
        answer: r.answer,
        ...(r.rejected !== undefined ? { rejected: r.rejected } : {}),
      })),
  ];
  const adapter: AdapterFile = {
    simulation: true,
    baseModel,
    examples: merge(parentFile?.examples ?? [], fresh),
    trainedAt: new Date().toISOString(),
    datasetRows: rows.length,
    generation,
    training,
    trained,
  };
  mkdirSync(outputDir, { recursive: true });
  // Write then rename, so a reader never sees a half-written adapter.
  const target = join(outputDir, ADAPTER_FILE);
  const tmp = `${target}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(adapter, null, 2)}\n`);
  renameSync(tmp, target);
  log(
    `wrote ${target} (${adapter.examples.length} examples; generation ${generation}, lineage trained on ` +
      `${training.sft} answer, ${training.critique} critique and ${training.preference} preference rows)`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    const known = err instanceof InputError || err instanceof DatasetError || err instanceof AdapterError;
    process.stderr.write(
      `${TAG} ${known ? 'invalid input' : 'failed'}: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(1);
  },
);
