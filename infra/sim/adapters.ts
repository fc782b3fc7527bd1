/**
 * Simulated LoRA adapters: the directory the simulated trainer writes (`adapter.json`) and the
 * in-memory form the server serves it from. An adapter "knows" the question → answer pairs it
 * was trained on (plus its parent's) that the server's grading finds right (see learnedOf), and
 * generalises to unseen questions according to its skills, which grow with what its lineage
 * learned (see skillsOf).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { QuestionIndex } from './questions';
import { parseSections } from './tasks';
import { normalize } from './text';

export const ADAPTER_FILE = 'adapter.json';

export const AdapterExample = z.object({ question: z.string(), answer: z.string() });
export type AdapterExample = z.infer<typeof AdapterExample>;

/** Dataset rows trained on along an adapter's lineage (its parent's counts plus its own dataset's). */
export const TrainingCounts = z.object({
  /** answer examples (SFT lines) */
  sft: z.number().int().min(0),
  /** critique examples (Stage 2: "Is this answer correct?" → a verdict) */
  critique: z.number().int().min(0),
  /** preference pairs (Stage 3) */
  preference: z.number().int().min(0),
});
export type TrainingCounts = z.infer<typeof TrainingCounts>;

/**
 * One answer or preference row a lineage was trained on (critique rows are counted, not kept):
 * what the server grades, at load, to know what the adapter actually learned (see learnedOf).
 */
export const TrainedRow = z.object({
  generation: z.number().int().min(1),
  kind: z.enum(['sft', 'preference']),
  question: z.string(),
  /** The answer taught (a preference row: its chosen answer). */
  answer: z.string(),
  /** A preference row's rejected answer. */
  rejected: z.string().optional(),
});
export type TrainedRow = z.infer<typeof TrainedRow>;

export const AdapterFile = z.object({
  simulation: z.literal(true),
  baseModel: z.string().min(1),
  examples: z.array(AdapterExample),
  trainedAt: z.string(),
  datasetRows: z.number().int().min(0),
  // Optional so that hand-written (and older) adapter files still load; see lineageOf.
  /** 1 for a fine-tune of the base model, the parent's generation + 1 for a fine-tune of an adapter. */
  generation: z.number().int().min(1).optional(),
  training: TrainingCounts.optional(),
  /** The lineage's answer and preference rows, parent's first (absent in older files: then ungraded). */
  trained: z.array(TrainedRow).optional(),
});
export type AdapterFile = z.infer<typeof AdapterFile>;

/**
 * The simulator's grading of one trained row against what it knows the answer to be (learning.ts):
 * good (an answer that is right; a chosen answer better than the rejected one), bad (wrong;
 * worse than the rejected one), neutral (a preference the grading cannot tell apart).
 */
export type Grade = 'good' | 'bad' | 'neutral';
export type Grader = (row: TrainedRow) => Grade;

/** What a lineage learned by the simulator's grading: counts that make skills, and answers it knows. */
export interface Learned {
  /** Generations that learned anything (a generation of wrong data consolidates nothing). */
  generation: number;
  training: TrainingCounts;
  /** Per question, the newest answer that was good to learn. */
  examples: AdapterExample[];
}

/**
 * Only what is right is learned: an answer row counts when it is correct; a generation's
 * preference pairs count by how many more of them prefer the better answer than the worse
 * (pairs with chosen and rejected swapped cancel out, or teach nothing); critique rows are
 * counted as the trainer saw them. A dataset whose answers are shuffled between questions, or
 * whose preferences are reversed, leaves the adapter where its parent was.
 */
export function learnedOf(file: AdapterFile, grade: Grader): Learned {
  const byGeneration = new Map<number, { sft: number; wins: number; losses: number }>();
  const known = new Map<string, AdapterExample>();
  for (const row of file.trained ?? []) {
    const g = byGeneration.get(row.generation) ?? { sft: 0, wins: 0, losses: 0 };
    byGeneration.set(row.generation, g);
    const verdict = grade(row);
    if (row.kind === 'sft' && verdict === 'good') g.sft++;
    if (row.kind === 'preference' && verdict === 'good') g.wins++;
    if (row.kind === 'preference' && verdict === 'bad') g.losses++;
    if (verdict === 'good') {
      const key = normalize(questionOfPrompt(row.question));
      known.delete(key);
      known.set(key, { question: row.question, answer: row.answer });
    }
  }
  let sft = 0;
  let preference = 0;
  let generations = 0;
  for (const g of byGeneration.values()) {
    const net = Math.max(0, g.wins - g.losses);
    sft += g.sft;
    preference += net;
    if (g.sft + net > 0) generations++;
  }
  const critique = lineageOf(file).training.critique;
  return {
    generation: Math.max(1, generations),
    training: { sft, critique, preference },
    examples: [...known.values()],
  };
}

/** An adapter's generation and training counts; a file without them is a first fine-tune on its examples. */
export function lineageOf(file: AdapterFile): { generation: number; training: TrainingCounts } {
  return {
    generation: file.generation ?? 1,
    training: file.training ?? { sft: file.examples.length, critique: 0, preference: 0 },
  };
}

/**
 * How well an adapter does on questions it was not trained on, each 0..1 and never 1 (a
 * simulated fine-tune is never perfect), saturating: more data helps less and less.
 * - knowledge (how much of the answer it states): answer examples, preference pairs (their chosen
 *   answers are answers too, half weight) and each further generation of fine-tuning;
 * - critique (leaving out what it cannot back up: hedges, digressions, generic advice): critique examples;
 * - preference (dropping filler the preferred answers did not have): preference pairs.
 */
export interface Skills {
  knowledge: number;
  critique: number;
  preference: number;
}

/** x / (x + half): 0 at 0, 0.5 at `half`, towards 1. */
const saturate = (x: number, half: number) => x / (x + half);
/** A generation of fine-tuning counts as this many answer examples (consolidation along the lineage). */
const GENERATION_WEIGHT = 40;

export function skillsOf(file: AdapterFile): Skills {
  return skillsFrom(lineageOf(file));
}

/** Skills from a lineage's generation and training counts (as trained, or as learned: learnedOf). */
export function skillsFrom({
  generation,
  training,
}: {
  generation: number;
  training: TrainingCounts;
}): Skills {
  const answers = training.sft + training.preference + GENERATION_WEIGHT * (generation - 1);
  return {
    knowledge: 0.85 * saturate(answers, 200),
    critique: 0.9 * saturate(training.critique, 60),
    preference: 0.9 * saturate(training.preference, 40),
  };
}

export interface LoadedAdapter {
  name: string;
  path: string;
  file: AdapterFile;
  index: QuestionIndex<AdapterExample>;
  skills: Skills;
  /** Graded, and nothing of its lineage was right to learn: it answers as the base model. */
  learnedNothing: boolean;
}

export class AdapterError extends Error {}

/** The bare question inside a training prompt (which may be a "Question:\n..." prompt or the question itself). */
export function questionOfPrompt(prompt: string): string {
  const q = parseSections(prompt).find((s) => /\bquestion\b/.test(s.label) && s.content);
  return q ? q.content.replace(/\n+\s*(Guideline|Answer):\s*$/i, '').trim() : prompt.trim();
}

/** A real PEFT adapter folder (what infra/trainer/run writes): its adapter_config.json. */
export const PEFT_CONFIG_FILE = 'adapter_config.json';

/**
 * A real PEFT adapter (trained by infra/trainer/run on a tiny local model) carries nothing the
 * simulation can read, so it is served as an adapter that learned nothing: it answers like the
 * base weak model. This lets the real trainer's output go through the same deploy path as vLLM's.
 */
function peftAdapterFile(dir: string): AdapterFile | null {
  let text: string;
  try {
    text = readFileSync(join(dir, PEFT_CONFIG_FILE), 'utf8');
  } catch {
    return null;
  }
  let config: { base_model_name_or_path?: unknown; peft_type?: unknown };
  try {
    config = JSON.parse(text) as typeof config;
  } catch {
    throw new AdapterError(`Invalid adapter: ${join(dir, PEFT_CONFIG_FILE)} is not valid JSON`);
  }
  if (config.peft_type !== 'LORA') throw new AdapterError(`Invalid adapter ${dir}: peft_type is not LORA`);
  return {
    simulation: true,
    baseModel:
      typeof config.base_model_name_or_path === 'string' ? config.base_model_name_or_path : 'unknown',
    examples: [],
    trainedAt: new Date(0).toISOString(),
    datasetRows: 0,
  };
}

export function readAdapterFile(dir: string): AdapterFile {
  const file = join(dir, ADAPTER_FILE);
  const peft = peftAdapterFile(dir);
  if (peft && !existsSync(file)) return peft;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new AdapterError(`No adapter found: cannot read ${file}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new AdapterError(`Invalid adapter: ${file} is not valid JSON`);
  }
  const parsed = AdapterFile.safeParse(raw);
  if (!parsed.success) throw new AdapterError(`Invalid adapter ${file}: ${parsed.error.message}`);
  return parsed.data;
}

/** Loads an adapter; with a grader, what it knows and its skills come from its graded rows. */
export function loadAdapter(name: string, dir: string, grade?: Grader): LoadedAdapter {
  const file = readAdapterFile(dir);
  const learned = grade && file.trained ? learnedOf(file, grade) : undefined;
  // Examples no graded row covers (a hand-written or older parent's) are kept as they are.
  const graded = new Set(file.trained?.map((r) => normalize(questionOfPrompt(r.question))) ?? []);
  const ungraded = file.examples.filter((ex) => !graded.has(normalize(questionOfPrompt(ex.question))));
  const index = new QuestionIndex<AdapterExample>();
  for (const ex of learned ? [...ungraded, ...learned.examples] : file.examples) {
    const bare = questionOfPrompt(ex.question);
    index.add(bare === ex.question ? [bare] : [bare, ex.question], ex);
  }
  const learnedNothing =
    learned !== undefined &&
    learned.examples.length + ungraded.length === 0 &&
    learned.training.sft + learned.training.preference + learned.training.critique === 0;
  return { name, path: dir, file, index, skills: skillsFrom(learned ?? lineageOf(file)), learnedNothing };
}
