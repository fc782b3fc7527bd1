/**
 * `mcts` stage prompts, SRA-MCTS's (REFERENCE §7; core/search/sra-mcts.ts): the current model reflects on the
 * reasoning so far (solved, or what the next step should address), proposes one next step unlike
 * the ones already proposed, and scores the reasoning so far 0–10 (its self-evaluation). The
 * reflection and the score are structured replies (JSON schema); a proposal is plain text whose
 * step follows `Next step:`.
 */
import type { ChatMessage } from '../../core/llm/types';
import { renderQuestion, type QuestionText } from '../../core/prompts/common';

export const MCTS_PROMPT_VERSIONS = {
  reflect: 'mcts-reflect.v1',
  propose: 'mcts-propose.v1',
  score: 'mcts-score.v1',
} as const;

/** How the proposal prompt's system message begins; also how the simulator recognises it. */
export const STEP_PROPOSAL_MARKER = 'Propose the next reasoning step';

const reasoningBlock = (steps: readonly string[]) =>
  `Reasoning so far:\n${steps.length === 0 ? 'None' : steps.map((s, i) => `${i + 1}. ${s}`).join('\n')}`;

export const MCTS_REFLECTION_SCHEMA = {
  name: 'mcts_reflection',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['solved', 'nextFocus'],
    properties: {
      solved: { type: 'boolean', description: 'true when the reasoning so far already answers the question' },
      nextFocus: { type: 'string', description: 'what the next step should address (empty when solved)' },
    },
  },
} as const;

export const MCTS_SCORE_SCHEMA = {
  name: 'mcts_step_score',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['reason', 'score'],
    properties: {
      reason: { type: 'string', description: 'a short assessment of the reasoning so far, before scoring' },
      score: {
        type: 'number',
        minimum: 0,
        maximum: 10,
        description: '0 (wrong or useless) to 10 (correct and complete)',
      },
    },
  },
} as const;

export function mctsReflectPrompt(domain: string, q: QuestionText, steps: readonly string[]): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        `You are an expert in ${domain}, solving a question step by step. Decide whether the reasoning so far ` +
        'already answers the question. If it does not, say in one or two sentences what the next step should ' +
        'address. Reply as JSON: {"solved": boolean, "nextFocus": string}.',
    },
    { role: 'user', content: `Question:\n${renderQuestion(q)}\n\n${reasoningBlock(steps)}` },
  ];
}

export function mctsProposePrompt(
  domain: string,
  q: QuestionText,
  steps: readonly string[],
  focus: string | null,
  earlier: readonly string[],
): ChatMessage[] {
  const guidance = focus ? `\n\nAdvice for the next step:\n${focus}` : '';
  const others =
    earlier.length > 0
      ? `\n\nRejected reasoning steps (propose a different one):\n${earlier.map((s, i) => `${i + 1}. ${s}`).join('\n')}`
      : '';
  return [
    {
      role: 'system',
      content:
        `${STEP_PROPOSAL_MARKER} towards answering the question, as an expert in ${domain}: one step only, ` +
        'building on the reasoning so far. Reply with `Next step:` followed by the step.',
    },
    {
      role: 'user',
      content: `Question:\n${renderQuestion(q)}\n\n${reasoningBlock(steps)}${guidance}${others}`,
    },
  ];
}

export function mctsScorePrompt(domain: string, q: QuestionText, steps: readonly string[]): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        `You are an expert critic in ${domain}. Score the reasoning so far towards answering the question, from 0 ` +
        '(wrong or useless) to 10 (correct and complete); explain briefly first. Reply as JSON: ' +
        '{"reason": string, "score": number}.',
    },
    { role: 'user', content: `Question:\n${renderQuestion(q)}\n\n${reasoningBlock(steps)}` },
  ];
}

/** The step of a proposal reply: what follows `Next step:` (or the whole reply); null when empty. */
export function extractProposedStep(reply: string): string | null {
  const m = /next step\s*[:：]\s*([\s\S]*)/i.exec(reply);
  const step = (m?.[1] ?? reply).trim().replace(/^\d+\.\s*/, '');
  return step === '' ? null : step;
}

/** A step that states the final answer: `Final answer: …` or `Answer: …`. */
const FINAL_ANSWER = /^\s*(?:final\s+)?answer\s*[:：]\s*([\s\S]*\S)\s*$/i;

/**
 * The final answer made of a chosen path (what the SFT example ends with). The paper's code works
 * in programming, where one more call turns the reasoning into code; in a free-text domain the
 * path's steps already are the answer's content, so no call is made: when the last step states a
 * final answer (`Final answer: …`), that statement is the answer; otherwise the answer is the
 * steps in order, one per line. '' for a path with no step (the root judged solved as is).
 */
export function mctsFinalAnswer(steps: readonly string[]): string {
  const last = steps.at(-1);
  const stated = last === undefined ? null : FINAL_ANSWER.exec(last);
  if (stated?.[1]) return stated[1];
  return steps.map((s) => s.trim()).join('\n');
}

/**
 * The assistant message of an `mcts` SFT example: the reasoning (the path's steps, numbered, less
 * a last step that states the final answer) and then the final answer — the shape the model is
 * asked to answer in elsewhere (reason step by step, then answer).
 */
export function mctsSftCompletion(steps: readonly string[], answer: string): string {
  const last = steps.at(-1);
  const reasoning = last !== undefined && FINAL_ANSWER.test(last) ? steps.slice(0, -1) : steps;
  const numbered = reasoning.map((s, i) => `${i + 1}. ${s.trim()}`).join('\n');
  return numbered === '' ? `Final answer:\n${answer}` : `Reasoning:\n${numbered}\n\nFinal answer:\n${answer}`;
}
