/**
 * Reading a chat request the way the platform's prompts (core/prompts.ts) write it: which task
 * it is, and the labelled parts of its text (question, guideline, answers, feedback...).
 *
 * Tasks: `guideline` (system prompt says "Do not answer the question yourself"),
 * `strong_answer`, `verdict` (json_schema `assessment_verdict`), `judge` (json_schema
 * `pairwise_judgment`), `structured` (any other json_schema), `answer` (everything else).
 *
 * Labelled parts: a line that is only a label ending in ':' ("Question:", "Answer A:"), a
 * bracketed or markdown-heading label ("[Answer A]", "### Reference answer"), or
 * "Label: text" on one line for labels of at most three words. Only labels containing one of
 * LABEL_WORDS count, so ordinary lines of a question body are not mistaken for labels.
 */
import type { ChatMessageBody } from './protocol';
import { messageText } from './protocol';

export type TaskKind =
  | 'guideline'
  | 'strong_answer'
  | 'verdict'
  | 'judge'
  | 'structured'
  | 'answer'
  | 'step'
  | 'reflection'
  | 'step_score'
  | 'row_score'
  | 'rstar'
  | 'evolve';

export const GUIDELINE_MARKER = 'Do not answer the question yourself';
/** SCoRe's second-turn instruction: revise your own answer, told only that it *might* be wrong. */
export const SELF_REVISION_MARKER = 'There might be an error in the solution above';
/** A tree search's step proposal (SRA-MCTS, stages/mcts/prompts.ts). */
export const STEP_PROPOSAL_MARKER = 'Propose the next reasoning step';
/** An rStar generator action or discriminator completion (core/prompts/rstar.ts). */
export const RSTAR_MARKER = 'Solve the question by reasoning actions';

export interface Section {
  /** lower-case label without punctuation, e.g. "answer a", "reference answer" */
  label: string;
  content: string;
}

export interface TaskInput {
  kind: TaskKind;
  /** The question as extracted (title and body when both were sent). */
  question: string;
  domain?: string;
  /** The last user message whole: a second way to find the question when labels mislead. */
  text: string;
  /** Sections of the last user message, in order. */
  sections: Section[];
  /** The answer under assessment (verdict), or the previous answer (a re-answer). */
  candidate?: string;
  reference?: string;
  feedback?: string;
  previousAnswer?: string;
  /** Asked to check its own previous answer with no feedback on it (the self-correction probe). */
  selfRevision?: boolean;
  /** A tree search's reasoning so far, and the step proposals it already rejected. */
  steps?: string[];
  earlierSteps?: string[];
  /** Task evolution: the method asked for (`method: …` in the system prompt). */
  evolveMethod?: string;
  /** The rStar action asked for (A1…A5). */
  action?: 'A1' | 'A2' | 'A3' | 'A4' | 'A5';
  answerA?: string;
  answerB?: string;
  schemaName?: string;
  schema?: Record<string, unknown>;
  jsonObject: boolean;
}

const LABEL_WORDS =
  /\b(question|guideline|answer|answers|response|assistant|reference|feedback|critique|advice|reasoning|verdict|judgment|judgement|instructions?|title|rubric|end)\b/;
// "Label: text" on one line is common inside question bodies ("Response: 503"), so only these count.
const INLINE_LABEL =
  /^(question|title|guideline|feedback|critique|reference|((reference|previous|your previous|candidate|model|student|proposed) )?answer( [ab12])?|response [ab12])$/;

function cleanLabel(raw: string): string {
  return raw
    .toLowerCase()
    .replace(/['’]s\b/g, '')
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();
}

function asLabel(raw: string, maxWords: number): string | undefined {
  const label = cleanLabel(raw);
  if (!label || label.split(' ').length > maxWords || !LABEL_WORDS.test(label)) return undefined;
  return label;
}

interface Header {
  label: string;
  inline: string;
}

function headerOf(line: string): Header | undefined {
  const t = line
    .trim()
    .replace(/^\*\*(.*)\*\*$/, '$1')
    .replace(/^\*\*(.*?):\*\*/, '$1:');
  if (!t || t.length > 80) return undefined;
  const heading = /^#{1,4}\s+(.+?):?\s*$/.exec(t);
  if (heading?.[1]) {
    const label = asLabel(heading[1], 8);
    return label ? { label, inline: '' } : undefined;
  }
  const bracket = /^\[([^\]]+)\]:?\s*$/.exec(t) ?? /^<([a-z_ -]+)>\s*$/i.exec(t);
  if (bracket?.[1]) {
    const label = asLabel(bracket[1], 8);
    return label ? { label, inline: '' } : undefined;
  }
  const colon = /^([A-Za-z][A-Za-z0-9 '’()_/-]*?):\s*(.*)$/.exec(t);
  if (colon?.[1] !== undefined) {
    const inline = colon[2] ?? '';
    const label = asLabel(colon[1], 8);
    if (!label || (inline && !INLINE_LABEL.test(label))) return undefined;
    return { label, inline };
  }
  return undefined;
}

/** Split a prompt into labelled sections; text before the first label is dropped. */
export function parseSections(text: string): Section[] {
  const out: Section[] = [];
  let current: { label: string; lines: string[] } | undefined;
  const flush = () => {
    if (current && !/^(the )?end\b|\bend$/.test(current.label)) {
      out.push({
        label: current.label.replace(/^(the )?start of /, ''),
        content: current.lines.join('\n').trim(),
      });
    }
  };
  for (const line of text.split('\n')) {
    const h = headerOf(line);
    if (h) {
      flush();
      current = { label: h.label, lines: h.inline ? [h.inline] : [] };
    } else if (current) {
      current.lines.push(line);
    }
  }
  flush();
  return out;
}

function lastSection(sections: readonly Section[], test: (label: string) => boolean): string | undefined {
  for (let i = sections.length - 1; i >= 0; i--) {
    const s = sections[i];
    if (s && test(s.label) && s.content) return s.content;
  }
  return undefined;
}

const isReferenceLabel = (l: string) => /\b(reference|expected|gold|ideal|correct answer)\b/.test(l);
const isPreviousLabel = (l: string) => /\b(previous|earlier|prior|last|first attempt)\b/.test(l);
const sideOf = (l: string): 'A' | 'B' | undefined => {
  const m =
    /\b(?:answer|response|assistant|output|model|candidate)\s+(a|b|1|2)\b/.exec(l) ??
    /\b(a|b|1|2)\s+(?:answer|response)\b/.exec(l);
  if (!m?.[1]) return undefined;
  return m[1] === 'a' || m[1] === '1' ? 'A' : 'B';
};

export function readTask(
  messages: readonly ChatMessageBody[],
  responseFormat: ResponseFormatInput,
): TaskInput {
  const texts = messages.map((m) => ({ role: m.role, text: messageText(m) }));
  const system = texts.filter((m) => m.role === 'system' || m.role === 'developer').map((m) => m.text);
  const users = texts.filter((m) => m.role === 'user');
  const lastUser = users[users.length - 1]?.text ?? texts[texts.length - 1]?.text ?? '';
  const sections = parseSections(lastUser);

  const schemaName = responseFormat?.type === 'json_schema' ? responseFormat.json_schema.name : undefined;
  let kind: TaskKind;
  if (schemaName === 'strong_answer') kind = 'strong_answer';
  else if (schemaName === 'assessment_verdict') kind = 'verdict';
  else if (schemaName === 'pairwise_judgment') kind = 'judge';
  // A model's critique of its own answers (contrast stage): graded like the verdict and the judge.
  else if (schemaName === 'self_critique') kind = 'verdict';
  else if (schemaName === 'pairwise_self_critique') kind = 'judge';
  else if (schemaName === 'mcts_reflection') kind = 'reflection';
  else if (schemaName === 'mcts_step_score') kind = 'step_score';
  else if (schemaName === 'training_row_score') kind = 'row_score';
  else if (schemaName === 'evolved_question') kind = 'evolve';
  else if (schemaName) kind = 'structured';
  else if (system.some((s) => s.includes(GUIDELINE_MARKER))) kind = 'guideline';
  else if (system.some((s) => s.includes(STEP_PROPOSAL_MARKER))) kind = 'step';
  else if (system.some((s) => s.includes(RSTAR_MARKER))) kind = 'rstar';
  // The strong-answer prompt spells its JSON out, so json_object mode (no schema) is recognised too.
  else if (responseFormat?.type === 'json_object' && system.some((s) => s.includes('"guidelineCorrect"')))
    kind = 'strong_answer';
  else kind = 'answer';

  // Multi-turn re-answer: [user question, assistant answer, user feedback].
  const lastAssistantIdx = texts.map((m) => m.role).lastIndexOf('assistant');
  const multiTurn = lastAssistantIdx >= 0 && texts.slice(lastAssistantIdx + 1).some((m) => m.role === 'user');

  let question = lastSection(sections, (l) => /\bquestion\b/.test(l) && !isPreviousLabel(l));
  if (!question) {
    for (let i = users.length - 2; i >= 0 && !question; i--) {
      question = lastSection(parseSections(users[i]?.text ?? ''), (l) => /\bquestion\b/.test(l));
    }
  }
  if (!question) question = multiTurn ? (users[0]?.text ?? lastUser) : lastUser;
  question = question.replace(/\n+\s*(Guideline|Answer):\s*$/i, '').trim();

  const input: TaskInput = {
    kind,
    question,
    text: lastUser,
    sections,
    jsonObject: responseFormat?.type === 'json_object',
  };
  const domain =
    /You are an expert in ([^.]+)\./.exec(system.join('\n'))?.[1] ??
    /expert in ([^.,]+)[.,]/.exec(system.join('\n'))?.[1];
  if (domain) input.domain = domain.trim();
  if (schemaName) input.schemaName = schemaName;
  if (responseFormat?.type === 'json_schema' && responseFormat.json_schema.schema)
    input.schema = responseFormat.json_schema.schema;

  const reference = lastSection(sections, isReferenceLabel);
  if (reference) input.reference = reference;
  const steps = lastSection(sections, (l) => /\breasoning so far\b/.test(l));
  const method = /\(method: ([a-z-]+)\)/.exec(system.join('\n'))?.[1];
  if (kind === 'evolve' && method) input.evolveMethod = method;
  const action = /\bAction (A[1-5])\b/.exec(system.join('\n'))?.[1];
  if (kind === 'rstar' && action) input.action = action as NonNullable<TaskInput['action']>;
  if (steps !== undefined || ['step', 'reflection', 'step_score', 'rstar'].includes(kind)) {
    input.steps = numberedItems(steps ?? '');
    input.earlierSteps = numberedItems(lastSection(sections, (l) => /\brejected reasoning\b/.test(l)) ?? '');
  }
  const feedback = lastSection(sections, (l) => /\b(feedback|critique|advice)\b/.test(l));
  const previous =
    lastSection(sections, (l) => /\b(answer|response)\b/.test(l) && isPreviousLabel(l)) ??
    (multiTurn ? texts[lastAssistantIdx]?.text : undefined);
  if (previous) input.previousAnswer = previous;
  if (feedback) input.feedback = feedback;
  else if (multiTurn && kind === 'answer' && lastUser.includes(SELF_REVISION_MARKER))
    input.selfRevision = true;
  else if (multiTurn && kind === 'answer') input.feedback = lastUser;

  for (const s of sections) {
    const side = sideOf(s.label);
    if (side === 'A' && s.content) input.answerA = s.content;
    if (side === 'B' && s.content) input.answerB = s.content;
  }
  const candidate = lastSection(
    sections,
    (l) =>
      /\b(answer|response)\b/.test(l) &&
      !isReferenceLabel(l) &&
      !isPreviousLabel(l) &&
      sideOf(l) === undefined,
  );
  if (candidate) input.candidate = candidate;
  else if (kind === 'verdict') input.candidate = input.previousAnswer ?? lastAssistantText(texts) ?? lastUser;
  return input;
}

/** "1. a\n2. b" → ["a", "b"]; "None" → []. */
function numberedItems(block: string): string[] {
  return block
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^none$/i.test(l))
    .map((l) => l.replace(/^\d+\.\s*/, ''));
}

function lastAssistantText(texts: ReadonlyArray<{ role: string; text: string }>): string | undefined {
  for (let i = texts.length - 1; i >= 0; i--) if (texts[i]?.role === 'assistant') return texts[i]?.text;
  return undefined;
}

export type ResponseFormatInput =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name: string; schema?: Record<string, unknown> | undefined } }
  | null
  | undefined;
