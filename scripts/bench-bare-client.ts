/**
 * The bench's yardstick: Stage 1's two calls per question (the weak model's guideline, then the
 * strong model's structured answer) made with the bare `openai` client — same prompts, same
 * request bodies, same concurrency — persisting nothing, retrying nothing. What the platform
 * adds per call (logging, claims, limits, budget, Temporal) is the gap between the two.
 */
import OpenAI from 'openai';
import pLimit from 'p-limit';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import type { QuestionText } from '../core/prompts/common';
import { guidelinePrompt, STRONG_ANSWER_SCHEMA, strongAnswerPrompt } from '../stages/distill/prompts';

export interface BareClientRun {
  baseURL: string;
  weakModel: string;
  strongModel: string;
  domain: string;
  questions: QuestionText[];
  /** Requests in flight at once, per endpoint (the spec's `concurrency` of each). */
  weakConcurrency: number;
  strongConcurrency: number;
  /** The client's fetch; unset: Node's global fetch, as a script would use. */
  fetch?: typeof fetch;
}

export interface BareClientResult {
  questions: number;
  /** (questions − 1) / (last − first question done): the platform's throughput, measured alike. */
  throughputQps: number;
  wallS: number;
}

export async function runBareClient(run: BareClientRun): Promise<BareClientResult> {
  const client = new OpenAI({
    baseURL: run.baseURL,
    apiKey: 'none',
    maxRetries: 0,
    timeout: 60_000,
    ...(run.fetch ? { fetch: run.fetch } : {}),
  });
  const doneAt: number[] = [];
  const started = Date.now();
  // Per endpoint, as the platform's limits do: the weak and strong calls of different questions overlap.
  const weakSlot = pLimit(run.weakConcurrency);
  const strongSlot = pLimit(run.strongConcurrency);
  await Promise.all(
    run.questions.map(async (q) => {
      const guideline = await weakSlot(() =>
        client.chat.completions.create({
          model: run.weakModel,
          messages: guidelinePrompt(run.domain, q),
          temperature: 0,
        } as ChatCompletionCreateParamsNonStreaming),
      );
      await strongSlot(() =>
        client.chat.completions.create({
          model: run.strongModel,
          messages: strongAnswerPrompt(run.domain, q, guideline.choices[0]?.message?.content ?? ''),
          temperature: 0,
          response_format: {
            type: 'json_schema',
            json_schema: {
              name: STRONG_ANSWER_SCHEMA.name,
              schema: { ...STRONG_ANSWER_SCHEMA.schema },
              strict: true,
            },
          },
        } as ChatCompletionCreateParamsNonStreaming),
      );
      doneAt.push(Date.now());
    }),
  );
  const first = Math.min(...doneAt);
  const last = Math.max(...doneAt);
  return {
    questions: doneAt.length,
    throughputQps: last > first ? Math.round(((doneAt.length - 1) / ((last - first) / 1000)) * 10) / 10 : 0,
    wallS: Math.round((Date.now() - started) / 100) / 10,
  };
}
