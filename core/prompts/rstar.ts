/**
 * rStar prompts (REFERENCE §7; core/search/rstar.ts): one prompt per generator action on the
 * trajectory so far — A1 one next step, A2 the rest to a final answer, A3 a sub-question and its
 * answer, A4 the last sub-question answered again, A5 the question's conditions — and the
 * discriminator's completion of a cut trajectory. A reply that reaches the final answer ends with
 * the line `The answer is: …`, which is what self-consistency and the discriminator compare.
 */
import type { ChatMessage } from '../llm/types';
import type { RStarAction } from '../search/rstar';
import { renderQuestion, type QuestionText } from './common';

export const RSTAR_PROMPT_VERSIONS = {
  action: 'rstar-action.v1',
  discriminate: 'rstar-discriminate.v1',
} as const;

/** How every rStar prompt's system message begins; also how the simulator recognises one. */
export const RSTAR_MARKER = 'Solve the question by reasoning actions';

const ANSWER_LINE = 'a last line `The answer is:` followed by the final answer in one sentence';

export const RSTAR_ACTION_INSTRUCTIONS: Record<RStarAction, string> = {
  A1: `Action A1: propose one next step only. Reply \`Next step:\` and the step; when that step reaches the final answer, add ${ANSWER_LINE}.`,
  A2: `Action A2: complete the reasoning to the end. Reply with the remaining steps, then ${ANSWER_LINE}.`,
  A3: `Action A3: ask the next sub-question and answer it. Reply \`Sub-question:\` and the sub-question, then \`Sub-answer:\` and its answer; when the sub-question is the question itself, add ${ANSWER_LINE}.`,
  A4: 'Action A4: answer the last sub-question again, reasoning step by step. Reply `Sub-answer:` and the answer.',
  A5: 'Action A5: rephrase the question as the list of its conditions. Reply `Conditions:` and the list.',
};

/** One step of a trajectory as the prompts show it. */
export interface TrajectoryStep {
  action: RStarAction | null;
  text: string;
}

const trajectoryBlock = (steps: readonly TrajectoryStep[]) =>
  `Reasoning so far:\n${
    steps.length === 0
      ? 'None'
      : steps.map((s, i) => `${i + 1}. ${s.text.replace(/\s*\n\s*/g, ' ')}`).join('\n')
  }`;

export function rstarActionPrompt(
  domain: string,
  q: QuestionText,
  steps: readonly TrajectoryStep[],
  action: RStarAction,
): ChatMessage[] {
  return [
    {
      role: 'system',
      content: `${RSTAR_MARKER}, as an expert in ${domain}. ${RSTAR_ACTION_INSTRUCTIONS[action]}`,
    },
    { role: 'user', content: `Question:\n${renderQuestion(q)}\n\n${trajectoryBlock(steps)}` },
  ];
}

/** The discriminator completes a trajectory cut after `prefix` (A2's instruction, its own model). */
export function rstarDiscriminatePrompt(
  domain: string,
  q: QuestionText,
  prefix: readonly TrajectoryStep[],
): ChatMessage[] {
  return rstarActionPrompt(domain, q, prefix, 'A2');
}

/** The final answer of a reply (`The answer is: …`), or null. */
export function extractFinalAnswer(reply: string): string | null {
  const m = /the answer is\s*[:：]\s*(.+)\s*$/im.exec(reply);
  const answer = m?.[1]?.trim();
  return answer ? answer : null;
}

/** A reply without its final-answer line: the step text a node keeps. */
export function withoutFinalAnswer(reply: string): string {
  return reply.replace(/\n?\s*the answer is\s*[:：].*$/im, '').trim();
}

/** The `Label: …` part of a reply (Next step, Sub-question, Sub-answer, Conditions), or null. */
export function labelled(reply: string, label: string): string | null {
  const m = new RegExp(
    `${label}\\s*[:：]\\s*([\\s\\S]*?)(?=\\n\\s*(?:sub-question|sub-answer|the answer is)\\s*[:：]|$)`,
    'i',
  ).exec(reply);
  const text = m?.[1]?.trim();
  return text ? text : null;
}
