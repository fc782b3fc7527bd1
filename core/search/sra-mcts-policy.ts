/**
 * SRA-MCTS's policy through the gateway: the current model reflects, proposes and scores with the
 * prompts of stages/mcts/prompts.ts. Every call is logged and reused like any other, so a search
 * rerun after a crash asks the same requests and pays for none of them again.
 */
import { z } from 'zod';
import type { Endpoint, LlmCallScope, LlmGateway } from '../llm/gateway';
import { askStructured } from '../llm/structured';
import {
  extractProposedStep,
  MCTS_PROMPT_VERSIONS,
  MCTS_REFLECTION_SCHEMA,
  MCTS_SCORE_SCHEMA,
  mctsProposePrompt,
  mctsReflectPrompt,
  mctsScorePrompt,
} from '../../stages/mcts/prompts';
import type { QuestionText } from '../prompts/common';
import type { SraMctsPolicy } from './sra-mcts';

const Reflection = z.object({ solved: z.boolean(), nextFocus: z.string() });
const Score = z.object({ reason: z.string(), score: z.number() });

export interface LlmSraMctsPolicyOptions {
  llm: LlmGateway;
  scope: LlmCallScope;
  /** The current model's endpoint, and the served model to call (an adapter) when not its own. */
  endpoint: Endpoint;
  model?: string;
  domain: string;
  question: QuestionText;
  /** Sampling temperature of proposals (the paper's code: 0.7); reflections and scores are greedy. */
  temperature: number;
  /** Asks of a structured reply before it counts as unparseable. */
  attempts: number;
}

export function llmSraMctsPolicy(o: LlmSraMctsPolicyOptions): SraMctsPolicy {
  const base = { model: o.model };
  return {
    async reflect(steps) {
      const r = await askStructured(
        o.llm,
        o.scope,
        o.endpoint,
        {
          ...base,
          purpose: 'mcts-reflect',
          promptVersion: MCTS_PROMPT_VERSIONS.reflect,
          messages: mctsReflectPrompt(o.domain, o.question, steps),
          jsonSchema: MCTS_REFLECTION_SCHEMA,
          temperature: 0,
        },
        Reflection,
        o.attempts,
      );
      // A reflection that never parsed gives no guidance; the search goes on.
      if (r.value === null) return { end: false, text: '' };
      return r.value.solved ? { end: true } : { end: false, text: r.value.nextFocus };
    },
    async propose(steps, focus, earlier) {
      const reply = await o.llm.chat(o.scope, o.endpoint, {
        ...base,
        purpose: 'mcts-propose',
        promptVersion: MCTS_PROMPT_VERSIONS.propose,
        messages: mctsProposePrompt(o.domain, o.question, steps, focus || null, earlier),
        temperature: o.temperature,
      });
      return extractProposedStep(reply.content);
    },
    async score(steps) {
      const r = await askStructured(
        o.llm,
        o.scope,
        o.endpoint,
        {
          ...base,
          purpose: 'mcts-score',
          promptVersion: MCTS_PROMPT_VERSIONS.score,
          messages: mctsScorePrompt(o.domain, o.question, steps),
          jsonSchema: MCTS_SCORE_SCHEMA,
          temperature: 0,
        },
        Score,
        o.attempts,
      );
      return r.value === null ? 0 : Math.min(10, Math.max(0, r.value.score));
    },
  };
}
