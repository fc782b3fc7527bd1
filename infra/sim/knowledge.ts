/**
 * What the simulated strong model "knows": question/reference pairs read from JSONL files
 * (one `{question, reference, title?}` object a line; other fields are ignored).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { QuestionIndex } from './questions';

export interface KnowledgeItem {
  title?: string;
  question: string;
  reference: string;
}

const KnowledgeLine = z.object({
  title: z.string().nullish(),
  question: z.string().min(1),
  reference: z.string().min(1),
});

export class KnowledgeBase {
  private readonly index = new QuestionIndex<KnowledgeItem>();

  get size(): number {
    return this.index.size;
  }

  add(item: KnowledgeItem): void {
    const keys = item.title ? [`${item.title}\n\n${item.question}`, item.question] : [item.question];
    this.index.add(keys, item);
  }

  find(questionText: string): KnowledgeItem | undefined {
    return this.index.find(questionText);
  }

  static fromFiles(files: readonly string[]): KnowledgeBase {
    const kb = new KnowledgeBase();
    for (const file of files) {
      for (const item of readKnowledgeFile(file)) kb.add(item);
    }
    return kb;
  }
}

export function readKnowledgeFile(file: string): KnowledgeItem[] {
  const items: KnowledgeItem[] = [];
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new Error(`${file}:${i + 1}: not valid JSON`);
    }
    const r = KnowledgeLine.safeParse(parsed);
    if (!r.success)
      throw new Error(`${file}:${i + 1}: expected {question, reference, title?}: ${r.error.message}`);
    items.push({
      question: r.data.question,
      reference: r.data.reference,
      ...(r.data.title ? { title: r.data.title } : {}),
    });
  });
  return items;
}
