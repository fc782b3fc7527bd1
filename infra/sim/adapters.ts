/**
 * Simulated LoRA adapters: the directory the simulated trainer writes (`adapter.json`) and the
 * in-memory form the server serves it from. An adapter "knows" the question → answer pairs it
 * was trained on (plus its parent's), and generalises to unseen questions according to its
 * skills, which grow with what its lineage was trained on (see skillsOf).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { QuestionIndex } from './questions';
import { parseSections } from './tasks';

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
});
export type AdapterFile = z.infer<typeof AdapterFile>;

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
  const { generation, training } = lineageOf(file);
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

export function loadAdapter(name: string, dir: string): LoadedAdapter {
  const file = readAdapterFile(dir);
  const index = new QuestionIndex<AdapterExample>();
  for (const ex of file.examples) {
    const bare = questionOfPrompt(ex.question);
    index.add(bare === ex.question ? [bare] : [bare, ex.question], ex);
  }
  return { name, path: dir, file, index, skills: skillsOf(file) };
}
