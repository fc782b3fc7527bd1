/**
 * Stage 1 prompts. Stage 1 follows the METEOR paper's figure (REFERENCE.md §1): the weak model writes a guideline
 * and must not answer; the strong model answers following it, or corrects it and says so.
 */
import type { ChatMessage } from '../../core/llm/types';
import { renderQuestion, type QuestionText } from '../../core/prompts/common';

export const DISTILL_PROMPT_VERSIONS = {
  guideline: 'guideline.v1',
  strongAnswer: 'strong-answer.v1',
} as const;

/** Stage 1, weak model: write a guideline, do not answer. */
export function guidelinePrompt(domain: string, q: QuestionText): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        `You are an expert in ${domain}. Do not answer the question yourself: a stronger model will answer it. ` +
        'Write a detailed guideline (numbered steps) that tells it how to answer precisely: the concepts to ' +
        'check, the order to reason in, and the pitfalls to avoid.',
    },
    { role: 'user', content: `Question:\n${renderQuestion(q)}\n\nGuideline:` },
  ];
}

/** JSON schema of the strong model's structured Stage-1 reply. */
export const STRONG_ANSWER_SCHEMA = {
  name: 'strong_answer',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['guidelineCorrect', 'correction', 'answer'],
    properties: {
      guidelineCorrect: { type: 'boolean', description: 'true when the guideline was sound as given' },
      correction: {
        type: ['string', 'null'],
        description: 'what was wrong in the guideline and the corrected step, or null',
      },
      answer: { type: 'string', description: 'the answer to the question' },
    },
  },
} as const;

/** Stage 1, strong model: answer following the guideline, or correct it. Reply per STRONG_ANSWER_SCHEMA. */
export function strongAnswerPrompt(domain: string, q: QuestionText, guideline: string): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        `Here is a guideline written by an expert in ${domain}, and a question. Use the guideline to answer ` +
        'the question precisely and accurately. If a step of the guideline is wrong, say what is wrong and ' +
        'answer correctly anyway. Reply as JSON: {"guidelineCorrect": boolean, "correction": string|null, "answer": string}.',
    },
    { role: 'user', content: `Guideline:\n${guideline}\n\nQuestion:\n${renderQuestion(q)}` },
  ];
}
