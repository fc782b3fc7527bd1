/**
 * Stage 3 prompts. The model answers the question exactly as it will be trained to (the
 * preference examples' prompt), once greedily and once with more compute; its own critique ranks
 * best-of-N samples and, when asked, checks that it prefers the high-compute output.
 */
import type { ChatMessage } from '../../core/llm/types';
import { renderQuestion, sftSystemPrompt, type QuestionText } from '../../core/prompts/common';

export const CONTRAST_PROMPT_VERSIONS = {
  answer: 'contrast-answer.v1',
  selfCritique: 'self-critique.v1',
  pairwiseSelfCritique: 'pairwise-self-critique.v1',
} as const;

/** Both decodes of a question; the same prompt the preference dataset pairs its outputs with. */
export function contrastAnswerPrompt(domain: string, q: QuestionText): ChatMessage[] {
  return [
    { role: 'system', content: sftSystemPrompt(domain) },
    { role: 'user', content: renderQuestion(q) },
  ];
}

/** JSON schema of the model's critique of one of its own answers (ranks best-of-N samples). */
export const SELF_CRITIQUE_SCHEMA = {
  name: 'self_critique',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['reason', 'score'],
    properties: {
      reason: { type: 'string', description: 'what is right, wrong or missing in the answer' },
      score: {
        type: 'integer',
        minimum: 1,
        maximum: 10,
        description: '1 = wrong or useless, 10 = correct, complete and clear',
      },
    },
  },
} as const;

/** The model critiques one of its own answers. Reply per SELF_CRITIQUE_SCHEMA. */
export function selfCritiquePrompt(domain: string, q: QuestionText, answer: string): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        `You are an expert in ${domain}. Critique the answer to the question below: check that it is ` +
        'correct, complete, relevant and clear, then score it from 1 (wrong or useless) to 10 (correct, ' +
        'complete and clear). Reply as JSON: {"reason": string, "score": integer 1-10}.',
    },
    { role: 'user', content: `Question:\n${renderQuestion(q)}\n\nAnswer:\n${answer}` },
  ];
}

/** JSON schema of the model's comparison of two of its own answers. */
export const PAIRWISE_SELF_CRITIQUE_SCHEMA = {
  name: 'pairwise_self_critique',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['reason', 'better'],
    properties: {
      reason: { type: 'string', description: 'how the two answers differ in correctness and completeness' },
      better: {
        type: 'string',
        enum: ['A', 'B', 'tie'],
        description: 'the better answer, or tie when neither is clearly better',
      },
    },
  },
} as const;

/** The model compares two of its own answers. Reply per PAIRWISE_SELF_CRITIQUE_SCHEMA. */
export function pairwiseSelfCritiquePrompt(
  domain: string,
  q: QuestionText,
  answerA: string,
  answerB: string,
): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        `You are an expert in ${domain}. Compare two answers to the question below for correctness, ` +
        'completeness, relevance and clarity; ignore their order and length as such. Reply as JSON: ' +
        '{"reason": string, "better": "A" | "B" | "tie"}.',
    },
    {
      role: 'user',
      content: `Question:\n${renderQuestion(q)}\n\nAnswer A:\n${answerA}\n\nAnswer B:\n${answerB}`,
    },
  ];
}
