/**
 * rStar's generator and discriminator through the gateway (prompts in core/prompts/rstar.ts).
 * Each action is one request for `samples` completions (the request's `n`), so self-consistency
 * costs one call: A2's completions are grouped by final answer (a child per answer, its
 * confidence the share that agree); A1 makes a child per distinct step; A3 and A4 keep the
 * majority sub-answer. Every call is logged and reused like any other.
 */
import type { ChatResult, Endpoint, LlmCallScope, LlmGateway } from '../llm/gateway';
import {
  extractFinalAnswer,
  labelled,
  RSTAR_PROMPT_VERSIONS,
  rstarActionPrompt,
  rstarDiscriminatePrompt,
  withoutFinalAnswer,
  type TrajectoryStep,
} from '../prompts/rstar';
import type { QuestionText } from '../prompts/common';
import type { Discriminator, Generated, RStarAction, RStarNode, RStarPolicy } from './rstar';

/** The policy's own defaults, beside the engine's (RSTAR_DEFAULTS): rStar samples a few completions. */
export const RSTAR_POLICY_DEFAULTS = { samples: 4, temperature: 0.8 } as const;

export interface LlmRStarOptions {
  llm: LlmGateway;
  scope: LlmCallScope;
  endpoint: Endpoint;
  /** The served model to call (an adapter) when not the endpoint's own. */
  model?: string;
  domain: string;
  question: QuestionText;
  /** Completions per action (self-consistency); A5 asks one, greedy. */
  samples: number;
  temperature: number;
}

/** Answers compare trimmed, lower-cased, without a final period. */
export const normalizeAnswer = (a: string) =>
  a
    .trim()
    .toLowerCase()
    .replace(/[.!]+$/, '');

const stepsOf = (path: readonly RStarNode[]): TrajectoryStep[] =>
  path.map((n) => ({ action: n.action, text: n.text }));

/** The most frequent answer (first seen on a tie), how many agree with it, and their share. */
function majority(values: ReadonlyArray<string | null>): {
  value: string | null;
  count: number;
  share: number;
} {
  const counts = new Map<string | null, { first: string | null; count: number }>();
  for (const v of values) {
    const key = v === null ? null : normalizeAnswer(v);
    const seen = counts.get(key);
    if (seen) seen.count++;
    else counts.set(key, { first: v, count: 1 });
  }
  let best: { first: string | null; count: number } = { first: null, count: 0 };
  for (const c of counts.values()) if (c.count > best.count) best = c;
  return {
    value: best.first,
    count: best.count,
    share: values.length === 0 ? 0 : best.count / values.length,
  };
}

export function llmRStarPolicy(o: LlmRStarOptions): RStarPolicy {
  const ask = (
    path: readonly RStarNode[],
    action: RStarAction,
    n: number,
    temperature: number,
  ): Promise<ChatResult> =>
    o.llm.chat(o.scope, o.endpoint, {
      purpose: `rstar-${action}`,
      promptVersion: RSTAR_PROMPT_VERSIONS.action,
      messages: rstarActionPrompt(o.domain, o.question, stepsOf(path), action),
      model: o.model,
      temperature,
      n,
    });
  return {
    async generate(path, action): Promise<Generated[]> {
      if (action === 'A5') {
        const r = await ask(path, action, 1, 0);
        return [{ text: r.content.trim(), answer: null, confidence: 0, final: false, callId: r.callId }];
      }
      const reply = await ask(path, action, o.samples, o.temperature);
      const replies = reply.choices;
      const callId = reply.callId;
      const answers = replies.map(extractFinalAnswer);
      switch (action) {
        case 'A2': {
          const groups = new Map<string | null, number[]>();
          answers.forEach((a, i) => {
            const k = a === null ? null : normalizeAnswer(a);
            groups.set(k, [...(groups.get(k) ?? []), i]);
          });
          return [...groups.values()].map((idx) => {
            const first = idx[0] as number;
            const answer = answers[first] ?? null;
            return {
              text: withoutFinalAnswer(replies[first] ?? ''),
              answer,
              confidence: answer === null ? 0 : idx.length / replies.length,
              final: true,
              callId,
            };
          });
        }
        case 'A1': {
          const byStep = new Map<string, number[]>();
          replies.forEach((r, i) => {
            const step = labelled(r, 'Next step') ?? withoutFinalAnswer(r);
            if (step) byStep.set(step, [...(byStep.get(step) ?? []), i]);
          });
          return [...byStep].map(([step, idx]) => {
            const m = majority(idx.map((i) => answers[i] ?? null));
            return {
              text: step,
              answer: m.value,
              confidence: m.value === null ? 0 : m.count / replies.length,
              final: m.value !== null,
              callId,
            };
          });
        }
        case 'A3':
        case 'A4': {
          const sub = majority(replies.map((r) => labelled(r, 'Sub-answer')));
          const question = action === 'A3' ? labelled(replies[0] ?? '', 'Sub-question') : null;
          const final = majority(answers);
          const text = `${question ? `Sub-question: ${question} ` : ''}Sub-answer: ${sub.value ?? ''}`.trim();
          return [
            {
              text,
              answer: final.value,
              confidence: final.value === null ? sub.share : final.share,
              final: final.value !== null && final.share >= 0.5,
              callId,
            },
          ];
        }
      }
    },
  };
}

/**
 * The discriminator: its own endpoint completes a cut trajectory, greedy; its final answer.
 * `onCall` learns which logged call answered each prefix (for audits).
 */
export function llmDiscriminator(
  o: Omit<LlmRStarOptions, 'samples' | 'temperature'> & {
    onCall?: (prefix: readonly RStarNode[], callId: string) => void;
  },
): Discriminator {
  return async (prefix) => {
    const r = await o.llm.chat(o.scope, o.endpoint, {
      purpose: 'rstar-discriminate',
      promptVersion: RSTAR_PROMPT_VERSIONS.discriminate,
      messages: rstarDiscriminatePrompt(o.domain, o.question, stepsOf(prefix)),
      model: o.model,
      temperature: 0,
    });
    o.onCall?.(prefix, r.callId);
    return extractFinalAnswer(r.content);
  };
}
