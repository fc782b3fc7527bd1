/**
 * One step of task evolution: the strong model rewrites a training question
 * (stages/evolve/prompts.ts) and the novelty check (novelty.ts) keeps the result only when it is no
 * near-copy of a training, held-out or earlier evolved question. The seed's method is chosen by its
 * position, so each seed gets the same method on a rerun — and the same request, answered from the
 * call log.
 *
 * The two halves are apart (`askEvolution`, `judgeEvolution`) so the evolve stage can make the
 * calls of a batch at once and still judge the rewrites one after another, in seed order: which
 * of two similar rewrites is kept must not depend on which answer came back first.
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
} from '../../stages/evolve/prompts';
import type { QuestionText } from '../prompts/common';
import { noveltyText, type NoveltyFilter, type NoveltyVerdict } from './novelty';

const Evolved = z.object({ title: z.string(), question: z.string().min(1) });

export interface EvolutionSeed extends QuestionText {
  id: string;
  ordinal: number;
}

/** The strong model's rewrite of one seed, not yet judged; `rewrite` null when it never parsed. */
export interface EvolutionReply {
  seedId: string;
  method: EvolutionMethod;
  callId: string;
  rewrite: { title: string; question: string } | null;
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

/** Asks the strong model for a rewrite of the seed (a malformed reply is asked again `attempts` times in all). */
export async function askEvolution(o: {
  llm: LlmGateway;
  scope: LlmCallScope;
  /** The strong model's endpoint. */
  endpoint: Endpoint;
  domain: string;
  seed: EvolutionSeed;
  attempts: number;
}): Promise<EvolutionReply> {
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
  return { seedId: o.seed.id, method, callId: r.call.callId, rewrite: r.value };
}

/**
 * Judges a rewrite against every known question. It does not learn a kept one: the caller adds it
 * once it is really kept (the stage, once it is committed).
 */
export function judgeEvolution(reply: EvolutionReply, novelty: NoveltyFilter): EvolutionOutcome {
  const base = { seedId: reply.seedId, method: reply.method, callId: reply.callId };
  if (reply.rewrite === null) return { ...base, status: 'unparseable' };
  const verdict = novelty.check(noveltyText(reply.rewrite));
  if (!verdict.novel) return { ...base, status: 'rejected', ...reply.rewrite, verdict };
  return { ...base, status: 'kept', ...reply.rewrite, closest: verdict.closest };
}

/** Both halves for one seed. */
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
  const outcome = judgeEvolution(await askEvolution(o), o.novelty);
  if (outcome.status === 'kept')
    o.novelty.add({ id: o.newId(o.seed), text: noveltyText(outcome), split: 'train' });
  return outcome;
}
