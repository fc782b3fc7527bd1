/**
 * The training-row filter's prompt (the self-evolution survey's filtering, REFERENCE §7): the judge,
 * or the model being trained, scores one training example 1–10 for how good a target it is; the
 * export keeps rows scored at least `filter.minScore`. A preference pair is scored on its chosen
 * output: that is what the fine-tune pulls the model toward.
 */
import type { ChatMessage } from '../llm/types';

export const ROW_SCORE_PROMPT_VERSION = 'row-score.v1';

export const ROW_SCORE_SCHEMA = {
  name: 'training_row_score',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['reason', 'score'],
    properties: {
      reason: { type: 'string', description: 'a short assessment of the response, before scoring' },
      score: {
        type: 'number',
        minimum: 1,
        maximum: 10,
        description: '1 (wrong or harmful to train on) to 10 (correct, complete, a model answer)',
      },
    },
  },
} as const;

/** `prompt` is the example's user turn (the question, as the trainer sees it). */
export function rowScorePrompt(domain: string, prompt: string, response: string): ChatMessage[] {
  return [
    {
      role: 'system',
      content:
        `You are an expert in ${domain}, reviewing examples before a model is trained on them. Score ` +
        'the response to the question from 1 to 10: correct, complete and clear scores high; wrong, ' +
        'missing key points or padded scores low. Reply with JSON {"reason": string, "score": number}.',
    },
    { role: 'user', content: `Question:\n${prompt}\n\nResponse:\n${response}` },
  ];
}
