/**
 * Simulated LoRA adapters: the directory the simulated trainer writes (`adapter.json`) and the
 * in-memory form the server serves it from. An adapter "knows" the question → answer pairs it
 * was trained on (plus its parent's).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { QuestionIndex } from './questions';
import { parseSections } from './tasks';

export const ADAPTER_FILE = 'adapter.json';

export const AdapterExample = z.object({ question: z.string(), answer: z.string() });
export type AdapterExample = z.infer<typeof AdapterExample>;

export const AdapterFile = z.object({
  simulation: z.literal(true),
  baseModel: z.string().min(1),
  examples: z.array(AdapterExample),
  trainedAt: z.string(),
  datasetRows: z.number().int().min(0),
});
export type AdapterFile = z.infer<typeof AdapterFile>;

export interface LoadedAdapter {
  name: string;
  path: string;
  file: AdapterFile;
  index: QuestionIndex<AdapterExample>;
}

export class AdapterError extends Error {}

/** The bare question inside a training prompt (which may be a "Question:\n..." prompt or the question itself). */
export function questionOfPrompt(prompt: string): string {
  const q = parseSections(prompt).find((s) => /\bquestion\b/.test(s.label) && s.content);
  return q ? q.content.replace(/\n+\s*(Guideline|Answer):\s*$/i, '').trim() : prompt.trim();
}

export function readAdapterFile(dir: string): AdapterFile {
  const file = join(dir, ADAPTER_FILE);
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
  return { name, path: dir, file, index };
}
