/**
 * Stage 2 prompts (DESIGN §1, REFERENCE.md §1): the current model answers with its reasoning; the
 * strong model returns a structured verdict (JSON schema `assessment_verdict`, never a substring
 * test); the model re-answers given its previous answer and the feedback. The critique example is
 * how a recorded verdict becomes training data for the self-assessment ability.
 *
 * The user messages carry labelled blocks (`Question:`, `Reference answer:`, `Answer:`,
 * `Previous answer:`, `Feedback:`), each label alone on its line, instructions before them.
 */
import { z } from 'zod';
import type { SftExample } from '../../core/dataset-formats';
import type { ChatMessage } from '../../core/llm/types';
import { renderQuestion, sftSystemPrompt, type QuestionText } from '../../core/prompts/common';

export const ASSESS_PROMPT_VERSIONS = {
  answer: 'assess-answer.v1',
  verdict: 'assessment-verdict.v1',
  reanswer: 'assess-reanswer.v1',
  critique: 'assess-critique.v1',
} as const;

/** Stage 2, current model, round 1: answer with the reasoning first. */
export function assessAnswerPrompt(domain: string, q: QuestionText): ChatMessage[] {
  return [
    { role: 'system', content: sftSystemPrompt(domain) },
    {
      role: 'user',
      content:
        'Answer the question below. First reason through it step by step, then give your final answer.\n\n' +
        `Question:\n${renderQuestion(q)}`,
    },
  ];
}

/** JSON schema of the strong model's verdict on one answer. */
export const ASSESSMENT_VERDICT_SCHEMA = {
  name: 'assessment_verdict',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['correct', 'feedback'],
    properties: {
      correct: {
        type: 'boolean',
        description: 'true when the answer is correct and covers the essential points',
      },
      feedback: {
        type: 'string',
        description: 'what is wrong or missing in the answer (empty or a short confirmation when correct)',
      },
    },
  },
} as const;

/** The verdict, as the reply parsed from ASSESSMENT_VERDICT_SCHEMA (and as a critique example's target). */
export const AssessmentVerdict = z.object({ correct: z.boolean(), feedback: z.string() });
export type AssessmentVerdict = z.infer<typeof AssessmentVerdict>;

/** A verdict as recorded: null (no ask parsed) is `unparseable`. */
export function recordedVerdict(v: AssessmentVerdict | null): 'correct' | 'incorrect' | 'unparseable' {
  return v === null ? 'unparseable' : v.correct ? 'correct' : 'incorrect';
}

/** Stage 2, strong model: is the answer correct? Reply per ASSESSMENT_VERDICT_SCHEMA. */
export function verdictPrompt(
  domain: string,
  q: QuestionText & { reference?: string | null },
  answer: string,
): ChatMessage[] {
  const reference = q.reference?.trim() ? `Reference answer:\n${q.reference.trim()}\n\n` : '';
  return [
    {
      role: 'system',
      content:
        `You are an expert critic in ${domain}. Decide whether the answer to the question is correct: ` +
        'accurate, free of errors, and covering the points that matter' +
        (reference ? ', judged against the reference answer (other wording is fine)' : '') +
        '. When it is not correct, the feedback says precisely what is wrong or missing, so that the ' +
        'author can fix it; do not rewrite the whole answer. Reply as JSON: {"correct": boolean, "feedback": string}.',
    },
    {
      role: 'user',
      content: `Question:\n${renderQuestion(q)}\n\n${reference}Answer:\n${answer}`,
    },
  ];
}

/** Stage 2, current model, rounds 2..maxRounds: answer again given the previous answer and the feedback. */
export function reanswerPrompt(
  domain: string,
  q: QuestionText,
  previousAnswer: string,
  feedback: string,
): ChatMessage[] {
  return [
    { role: 'system', content: sftSystemPrompt(domain) },
    {
      role: 'user',
      content:
        'Your previous answer to the question below was judged not correct. Using the feedback, answer ' +
        'again: first reason through it step by step, then give your complete final answer (not only the ' +
        'changes).\n\n' +
        `Question:\n${renderQuestion(q)}\n\nPrevious answer:\n${previousAnswer}\n\nFeedback:\n${feedback}`,
    },
  ];
}

/** The question a critique example ends with; also how such examples are recognised in a dataset. */
export const CRITIQUE_QUESTION = 'Is this answer correct?';

/**
 * A critique example for training the self-assessment ability: the model sees a question and an
 * answer (no reference) and gives the critic's verdict as JSON.
 */
export function critiqueExample(
  domain: string,
  q: QuestionText,
  answer: string,
  verdict: AssessmentVerdict,
): SftExample {
  return {
    system: sftSystemPrompt(domain),
    user:
      `Question:\n${renderQuestion(q)}\n\nAnswer:\n${answer}\n\n${CRITIQUE_QUESTION} ` +
      'Reply as JSON: {"correct": boolean, "feedback": string}, the feedback saying what is wrong or missing.',
    assistant: JSON.stringify({ correct: verdict.correct, feedback: verdict.feedback }),
  };
}
