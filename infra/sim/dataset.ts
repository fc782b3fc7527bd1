/**
 * Reading the fine-tune datasets the platform exports (REFERENCE.md §3) into question → answer
 * examples for the simulated trainer: OpenAI SFT lines, OpenAI preference lines, and TRL
 * preference lines ({prompt, chosen, rejected}).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { AdapterExample } from './adapters';

const Msg = z.object({ role: z.string(), content: z.string() });
const Sft = z.object({ messages: z.array(Msg).min(1) });
const OpenAiPreference = z.object({
  input: z.object({ messages: z.array(Msg).min(1) }),
  preferred_output: z.array(Msg).min(1),
  non_preferred_output: z.array(Msg),
});
const TrlPreference = z.object({
  prompt: z.array(Msg).min(1),
  chosen: z.array(Msg).min(1),
  rejected: z.array(Msg),
});

export class DatasetError extends Error {}

/** One dataset line: the question → answer it teaches (a preference line: its preferred answer). */
export interface DatasetRow extends AdapterExample {
  kind: 'sft' | 'preference';
  /** A preference line's non-preferred answer (empty when the line has none). */
  rejected?: string;
}

type Msg = z.infer<typeof Msg>;

function lastOf(messages: readonly Msg[], role: string): string | undefined {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]?.role === role) return messages[i]?.content;
  return undefined;
}

/** One dataset line as an example, or a reason it is not one. */
export function exampleOfLine(raw: unknown): DatasetRow | string {
  const pref = OpenAiPreference.safeParse(raw);
  if (pref.success)
    return withRejected(
      pair(pref.data.input.messages, pref.data.preferred_output, 'preference'),
      pref.data.non_preferred_output,
    );
  const trl = TrlPreference.safeParse(raw);
  if (trl.success)
    return withRejected(pair(trl.data.prompt, trl.data.chosen, 'preference'), trl.data.rejected);
  const sft = Sft.safeParse(raw);
  if (sft.success) {
    const msgs = sft.data.messages;
    const lastAssistant = msgs.map((m) => m.role).lastIndexOf('assistant');
    if (lastAssistant < 0) return 'SFT line has no assistant message';
    return pair(msgs.slice(0, lastAssistant), msgs.slice(lastAssistant), 'sft');
  }
  return 'expected {"messages":[...]} or {"input":{"messages":[...]},"preferred_output":[...],"non_preferred_output":[...]}';
}

function pair(prompt: readonly Msg[], output: readonly Msg[], kind: DatasetRow['kind']): DatasetRow | string {
  const question = lastOf(prompt, 'user');
  const answer = lastOf(output, 'assistant');
  if (!question) return 'no user message before the answer';
  if (!answer) return 'no assistant answer';
  return { question, answer, kind };
}

function withRejected(row: DatasetRow | string, rejected: readonly Msg[]): DatasetRow | string {
  return typeof row === 'string' ? row : { ...row, rejected: lastOf(rejected, 'assistant') ?? '' };
}

export function readDataset(file: string): DatasetRow[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DatasetError(
      `${file}: cannot read dataset (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  const out: DatasetRow[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      throw new DatasetError(`${file}:${i + 1}: not valid JSON`);
    }
    const ex = exampleOfLine(raw);
    if (typeof ex === 'string') throw new DatasetError(`${file}:${i + 1}: ${ex}`);
    out.push(ex);
  });
  if (out.length === 0) throw new DatasetError(`${file}: dataset is empty`);
  return out;
}
