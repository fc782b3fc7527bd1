/**
 * One step of task evolution: the strong model rewrites a training question (core/prompts/evolve.ts)
 * and the novelty check (novelty.ts) keeps the result only when it is no near-copy of a training,
 * held-out or earlier evolved question. The seed's method is chosen by its position, so each seed
 * gets the same method on a rerun — and the same request, answered from the call log.
 */
import { z } from 'zod';
import type { Endpoint, LlmCallScope, LlmGateway } from '../llm/gateway';
import { askStructured } from '../llm/structured';
import {
  EVOLUTION_METHODS,
  EVOLVE_PROMPT_VERSION,
  EVOLVED_QUESTION_SCHEMA,
  evolvePrompt,
  type EvolutionMethod,
} from '../prompts/evolve';
import type { QuestionText } from '../prompts/common';
import type { NoveltyFilter, NoveltyVerdict } from './novelty';

const Evolved = z.object({ title: z.string(), question: z.string().min(1) });

export interface EvolutionSeed extends QuestionText {
  id: string;
  ordinal: number;
}

export type EvolutionOutcome = {
  seedId: string;
  method: EvolutionMethod;
  callId: string;
} & (
  | { status: 'kept'; title: string; question: string; closest: { id: string; similarity: number } | null }
  | {
      status: 'rejected';
      title: string;
      question: string;
      verdict: Extract<NoveltyVerdict, { novel: false }>;
    }
  | { status: 'unparseable' }
);

export function methodFor(ordinal: number): EvolutionMethod {
  return EVOLUTION_METHODS[ordinal % EVOLUTION_METHODS.length] as EvolutionMethod;
}

export async function evolveQuestion(o: {
  llm: LlmGateway;
  scope: LlmCallScope;
  /** The strong model's endpoint. */
  endpoint: Endpoint;
  domain: string;
  seed: EvolutionSeed;
  attempts: number;
  /** Checks the new question, and learns it when kept. */
  novelty: NoveltyFilter;
  /** The id a kept question gets. */
  newId: (seed: EvolutionSeed) => string;
}): Promise<EvolutionOutcome> {
  const method = methodFor(o.seed.ordinal);
  const r = await askStructured(
    o.llm,
    o.scope,
    o.endpoint,
    {
      purpose: 'evolve-question',
      promptVersion: EVOLVE_PROMPT_VERSION,
      messages: evolvePrompt(o.domain, o.seed, method),
      jsonSchema: EVOLVED_QUESTION_SCHEMA,
      temperature: 0.7,
    },
    Evolved,
    o.attempts,
  );
  const base = { seedId: o.seed.id, method, callId: r.call.callId };
  if (r.value === null) return { ...base, status: 'unparseable' };
  const text = r.value.title ? `${r.value.title}\n\n${r.value.question}` : r.value.question;
  const verdict = o.novelty.check(text);
  if (!verdict.novel) return { ...base, status: 'rejected', ...r.value, verdict };
  o.novelty.add({ id: o.newId(o.seed), text, split: 'train' });
  return { ...base, status: 'kept', ...r.value, closest: verdict.closest };
}
