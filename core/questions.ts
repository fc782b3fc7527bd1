/**
 * Question files: JSONL, one `{question, id?, title?, reference?}` per line. Loading is all or
 * nothing — every problem is reported with its file and line, and nothing is imported.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { unstorableStrings } from './db/storable-text';
import { fileProblem, UserError } from './errors';
import { formatZodIssues } from './spec-file';

export type Split = 'train' | 'eval';

/**
 * Text PostgreSQL cannot store (U+0000; half a surrogate pair, which jsonb refuses in the requests)
 * is refused here, naming the line, not by the database at launch.
 */
function storable(text: string, ctx: z.RefinementCtx): void {
  for (const issue of unstorableStrings(text)) ctx.addIssue({ code: 'custom', message: issue.message });
}

export const QuestionLineSchema = z.strictObject({
  question: z.string().trim().min(1, 'must not be empty').superRefine(storable),
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'letters, digits and . _ : - (at most 128)')
    .optional(),
  title: z.string().superRefine(storable).optional(),
  reference: z.string().superRefine(storable).optional(),
});

export interface Question {
  id: string;
  split: Split;
  /** Position in its file, so batches are stable and ordered. */
  ordinal: number;
  title: string | null;
  question: string;
  reference: string | null;
  contentHash: string;
}

const MAX_REPORTED = 20;

export function contentHash(q: {
  title?: string | null;
  question: string;
  reference?: string | null;
}): string {
  return createHash('sha256')
    .update(JSON.stringify([q.title ?? null, q.question, q.reference ?? null]))
    .digest('hex');
}

export async function loadQuestionFile(file: string, split: Split, label = file): Promise<Question[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UserError(
      `Cannot read ${split} question file ${label}${label === file ? '' : ` (${file})`}: ${fileProblem(err)}`,
    );
  }
  const problems: string[] = [];
  const questions: Question[] = [];
  const seen = new Map<string, number>();
  const lines = text.split('\n');
  lines.forEach((line, index) => {
    const lineNo = index + 1;
    if (line.trim() === '') return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      problems.push(`${label}:${lineNo}: not valid JSON (${(err as Error).message})`);
      return;
    }
    const parsed = QuestionLineSchema.safeParse(raw);
    if (!parsed.success) {
      for (const p of formatZodIssues(parsed.error.issues)) problems.push(`${label}:${lineNo}: ${p}`);
      return;
    }
    const hash = contentHash(parsed.data);
    const id = parsed.data.id ?? `q-${hash.slice(0, 12)}`;
    const first = seen.get(id);
    if (first !== undefined) {
      problems.push(`${label}:${lineNo}: duplicate id "${id}" (first on line ${first})`);
      return;
    }
    seen.set(id, lineNo);
    questions.push({
      id,
      split,
      ordinal: questions.length,
      title: parsed.data.title ?? null,
      question: parsed.data.question,
      reference: parsed.data.reference ?? null,
      contentHash: hash,
    });
  });
  if (problems.length > 0) {
    const shown = problems.slice(0, MAX_REPORTED);
    if (problems.length > MAX_REPORTED) shown.push(`… and ${problems.length - MAX_REPORTED} more`);
    throw new UserError(`${split} question file ${label} has ${problems.length} invalid line(s):`, shown);
  }
  if (questions.length === 0) {
    throw new UserError(`${split} question file ${label} holds no questions`);
  }
  return questions;
}

/** Ids must be unique across the train and eval files, since records are keyed by question id. */
export function assertDisjoint(train: Question[], evalQs: Question[]): void {
  const trainIds = new Set(train.map((q) => q.id));
  const clashes = evalQs.filter((q) => trainIds.has(q.id)).map((q) => q.id);
  if (clashes.length > 0) {
    throw new UserError(
      'Question ids appear in both the train and the eval file:',
      clashes.slice(0, MAX_REPORTED),
    );
  }
}
