/**
 * Evaluation prompts (DESIGN §1, REFERENCE §5). Every model answers a held-out question as it was
 * trained to (the SFT system prompt, the question alone, greedy); the judge compares two answers on
 * five dimensions, with MT-Bench-style delimited answers, and replies per PAIRWISE_JUDGMENT_SCHEMA.
 * The activity asks twice per pair with the positions swapped; the statistics combine the two.
 * The self-correction probe asks each model to revise its answer (SCoRe's instruction); the strong
 * model's stage-2 verdict (assess.ts) then judges both attempts.
 */
import { EVAL_DIMENSIONS } from '../../core/evaluation/stats';
import type { ChatMessage } from '../../core/llm/types';
import { renderQuestion, sftSystemPrompt, type QuestionText } from '../../core/prompts/common';

export const EVALUATE_PROMPT_VERSIONS = {
  answer: 'eval-answer.v1',
  judge: 'pairwise-judge.v1',
  selfRevision: 'self-revision.v1',
} as const;

/** A model's answer to a held-out question: the same messages it was fine-tuned on. */
export function evalAnswerPrompt(domain: string, q: QuestionText): ChatMessage[] {
  return [
    { role: 'system', content: sftSystemPrompt(domain) },
    { role: 'user', content: renderQuestion(q) },
  ];
}

/**
 * SCoRe's second-turn instruction (REFERENCE §7): it says there *might* be an error and asks for a
 * revision, without telling the model whether its first attempt was right.
 */
export const SELF_REVISION_INSTRUCTION =
  'There might be an error in the solution above because of lack of understanding of the question. ' +
  'Please correct the error, if any, and rewrite the solution.';

/** The self-correction probe's second attempt: the first answer, then SCoRe's instruction. */
export function selfRevisionPrompt(domain: string, q: QuestionText, firstAnswer: string): ChatMessage[] {
  return [
    ...evalAnswerPrompt(domain, q),
    { role: 'assistant', content: firstAnswer },
    { role: 'user', content: SELF_REVISION_INSTRUCTION },
  ];
}

const SIDE = { type: 'string', enum: ['A', 'B', 'tie'] } as const;
const SCORE = { type: 'integer', minimum: 1, maximum: 10 } as const;
const SCORE_KEYS = [...EVAL_DIMENSIONS, 'overall'] as const;
const answerScores = {
  type: 'object',
  additionalProperties: false,
  required: SCORE_KEYS,
  properties: Object.fromEntries(SCORE_KEYS.map((k) => [k, SCORE])),
} as const;

/**
 * JSON schema of the judge's reply (OpenAI strict mode: every property required). The
 * explanation comes first so the judge reasons before it decides.
 */
export const PAIRWISE_JUDGMENT_SCHEMA = {
  name: 'pairwise_judgment',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['explanation', 'dimensions', 'winner', 'scores'],
    properties: {
      explanation: { type: 'string', description: 'a short comparison of the two answers, before deciding' },
      dimensions: {
        type: 'object',
        additionalProperties: false,
        required: EVAL_DIMENSIONS,
        properties: Object.fromEntries(EVAL_DIMENSIONS.map((d) => [d, SIDE])),
        description: 'per dimension: the better answer, A or B, or tie',
      },
      winner: { ...SIDE, description: 'the better answer overall, or tie' },
      scores: {
        type: 'object',
        additionalProperties: false,
        required: ['A', 'B'],
        properties: { A: answerScores, B: answerScores },
        description: 'each answer scored 1–10 per dimension and overall',
      },
    },
  },
} as const;

const DIMENSION_HELP: Record<(typeof EVAL_DIMENSIONS)[number], string> = {
  accuracy: 'are its statements and instructions correct?',
  completeness: 'does it cover everything the question needs?',
  relevance: 'does it address this question, without digressions?',
  coherence: 'is it well organised and easy to follow?',
  reliability: 'can it be acted on safely: no fabricated facts, caveats where they matter?',
};

/**
 * The judge compares answer A and answer B to a question, on the five dimensions. A reference
 * answer, when the question file has one, is shown as a guide to what is correct.
 */
export function pairwiseJudgePrompt(
  domain: string,
  q: QuestionText & { reference?: string | null },
  answerA: string,
  answerB: string,
): ChatMessage[] {
  const dims = EVAL_DIMENSIONS.map((d) => `- ${d}: ${DIMENSION_HELP[d]}`).join('\n');
  const reference = q.reference
    ? `[The Start of Reference Answer]\n${q.reference}\n[The End of Reference Answer]\n\n`
    : '';
  return [
    {
      role: 'system',
      content:
        `You are an impartial expert judge in ${domain}. Compare two AI assistants' answers to the same ` +
        `question on five dimensions:\n${dims}\n` +
        'For each dimension say which answer is better (A or B), or tie when neither is. Then name the better ' +
        'answer overall, and score each answer from 1 to 10 on every dimension and overall. ' +
        (q.reference
          ? 'A reference answer is given as a guide to what is correct; an answer need not match its wording. '
          : '') +
        'Do not let the order of the answers, their length or their style sway you: a longer answer is ' +
        'better only when what it adds is correct and useful. Explain briefly first, then decide. ' +
        'Reply as JSON with "explanation", "dimensions", "winner" and "scores".',
    },
    {
      role: 'user',
      content:
        `[User Question]\n${renderQuestion(q)}\n\n${reference}` +
        `[The Start of Assistant A's Answer]\n${answerA}\n[The End of Assistant A's Answer]\n\n` +
        `[The Start of Assistant B's Answer]\n${answerB}\n[The End of Assistant B's Answer]`,
    },
  ];
}
