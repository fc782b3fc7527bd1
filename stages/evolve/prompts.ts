/**
 * Task-evolution prompts (Evol-Instruct style; the self-evolution survey's knowledge-free task
 * evolution, REFERENCE §7): the strong model rewrites a training question into a new one — harder
 * in depth (constraints, deeper, more concrete, more reasoning steps) or new in breadth (another
 * question of the same domain, as rare as the seed). It sees training questions only, never
 * held-out ones. Reply per EVOLVED_QUESTION_SCHEMA.
 */
import type { ChatMessage } from '../../core/llm/types';
import { renderQuestion, type QuestionText } from '../../core/prompts/common';

export const EVOLVE_PROMPT_VERSION = 'evolve-question.v1';

export const EVOLUTION_METHODS = [
  'add-constraints',
  'deepen',
  'concretize',
  'more-reasoning',
  'breadth',
] as const;
export type EvolutionMethod = (typeof EVOLUTION_METHODS)[number];

const INSTRUCTIONS: Record<EvolutionMethod, string> = {
  'add-constraints': 'Add one realistic constraint or requirement that the answer must respect.',
  deepen: 'Ask about the issue in more depth: the cause behind it, or what follows from it.',
  concretize: 'Replace general notions with a specific, realistic situation.',
  'more-reasoning': 'Make it need several explicit reasoning steps to answer.',
  breadth:
    'Write a brand-new question of the same domain and difficulty on a different, rarer topic, inspired by this one.',
};

export const EVOLVED_QUESTION_SCHEMA = {
  name: 'evolved_question',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['title', 'question'],
    properties: {
      title: { type: 'string', description: 'a short title of the new question' },
      question: { type: 'string', description: 'the new question, self-contained' },
    },
  },
} as const;

export function evolvePrompt(domain: string, seed: QuestionText, method: EvolutionMethod): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        `You write questions for training an expert assistant in ${domain}. Rewrite the given question into a new ` +
        `one (method: ${method}). ${INSTRUCTIONS[method]} The new question must be answerable, self-contained and ` +
        'reasonable for a human expert; do not answer it. Reply as JSON: {"title": string, "question": string}.',
    },
    { role: 'user', content: `Question:\n${renderQuestion(seed)}` },
  ];
}
