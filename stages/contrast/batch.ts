/**
 * Stage 3 activities. Per question, the current model decodes twice — greedily, and with more
 * compute (vLLM beam search, best-of-N samples ranked by its own critique, or rStar's search with a
 * discriminator: rstar.ts) — and the pair chosen = high-compute, rejected = greedy is recorded, kept
 * or dropped (no consistent rStar trajectory; near-identical outputs; optionally, the model's own
 * critique not preferring the chosen one). Like every batch: finished
 * questions are skipped, the rest run concurrently under the endpoint's limits, and each pair is
 * upserted by its business key (campaign, iteration, question) as soon as it is made.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { getCampaign } from '../../core/campaigns';
import { UserError } from '../../core/errors';
import type { QuestionRow } from '../../core/db/types';
import {
  LlmFatalError,
  type ChatResult,
  type Endpoint,
  type LlmCallScope,
  type LlmGateway,
} from '../../core/llm/gateway';
import type { ChatMessage } from '../../core/llm/types';
import { askStructured } from '../../core/llm/structured';
import {
  CONTRAST_PROMPT_VERSIONS,
  contrastAnswerPrompt,
  PAIRWISE_SELF_CRITIQUE_SCHEMA,
  pairwiseSelfCritiquePrompt,
  SELF_CRITIQUE_SCHEMA,
  selfCritiquePrompt,
} from '../../core/prompts';
import type { ContrastStageSpec } from './options';
import { tokenJaccard } from '../../core/text-similarity';
import type { BatchInput, BatchResult } from '../../workflows/types';
import type { ActivityDeps } from '../../activities/context';
import { llmEndpointError, runQuestionBatch, withoutRecord } from '../../activities/batch';
import { rstarDecode, saveRStarCandidates, type RStarDecode } from './rstar';

// The schema asks for an integer; a model that answers 7.5 still said something usable.
const SelfCritique = z.object({ reason: z.string(), score: z.number().min(1).max(10) });
const PairwiseSelfCritique = z.object({ reason: z.string(), better: z.enum(['A', 'B', 'tie']) });
/** A critique that does not parse is asked again this many times in all (with a salt). */
const CRITIQUE_ATTEMPTS = 2;
/** What an unparseable critique scores: below every real score (1–10). */
const UNPARSEABLE_SCORE = 0;

export type DropReason =
  'no-consistent-trajectory' | 'near-identical' | 'critique-disagrees' | 'critique-unparseable';

/** The high-compute output of one question and the calls behind it. */
interface HighDecode {
  text: string;
  callId: string;
  critiqueCallIds: string[];
  /** Method rstar: the search's candidates and pick. */
  rstar?: RStarDecode;
}

/**
 * Whether the chosen output is answer A of the pairwise critique: half of the questions each way,
 * fixed per question (so a retry asks the same request), so position bias cannot favour one side.
 */
export function chosenIsFirst(questionId: string): boolean {
  const first = createHash('sha256').update(questionId).digest()[0] ?? 0;
  return (first & 1) === 0;
}

/** The sample with the highest score; the earliest on a tie. */
export function bestIndex(scores: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++)
    if ((scores[i] ?? -Infinity) > (scores[best] ?? -Infinity)) best = i;
  return best;
}

export function contrastActivities({ db, llm }: ActivityDeps) {
  return {
    async contrastBatch(input: BatchInput): Promise<BatchResult> {
      const { campaignId, iteration } = input;
      const { spec } = await getCampaign(db, campaignId);
      const cfg = spec.stages.contrast;
      const weak: Endpoint = { ...spec.models.weak, role: 'weak' };
      const model = input.modelIn;
      // The spec refuses method rstar without one; a campaign row from before that check may lack it.
      const discriminator: Endpoint | null = spec.models.discriminator
        ? { ...spec.models.discriminator, role: 'discriminator' }
        : null;
      return runQuestionBatch(db, input, {
        stage: 'contrast',
        maxFailedFraction: cfg.maxFailedFraction,
        pending: (questions) => withoutRecord(db, 'preference_pairs', input, questions),
        async work(q, scope, counts) {
          /** The model's own score of one answer; unparseable counts as the lowest. */
          const critique = async (q: QuestionRow, answer: string) => {
            const reply = await askStructured(
              llm,
              scope,
              weak,
              {
                purpose: 'self-critique',
                promptVersion: CONTRAST_PROMPT_VERSIONS.selfCritique,
                messages: selfCritiquePrompt(spec.domain, q, answer),
                jsonSchema: SELF_CRITIQUE_SCHEMA,
                temperature: 0,
                model,
              },
              SelfCritique,
              CRITIQUE_ATTEMPTS,
            );
            return { score: reply.value?.score ?? UNPARSEABLE_SCORE, callId: reply.call.callId };
          };

          const highDecode = async (q: QuestionRow): Promise<HighDecode> => {
            const messages = contrastAnswerPrompt(spec.domain, q);
            if (cfg.method === 'rstar') {
              if (!discriminator) {
                throw new UserError(
                  `campaign ${campaignId} has no models.discriminator endpoint: method rstar needs one`,
                );
              }
              const decode = await rstarDecode({
                llm,
                db,
                scope,
                weak,
                model,
                discriminator,
                domain: spec.domain,
                question: q,
                options: cfg.rstar,
              });
              return { text: decode.text, callId: decode.callId, critiqueCallIds: [], rstar: decode };
            }
            if (cfg.method === 'beam') {
              const beams = await beamSearch(llm, scope, weak, cfg, messages, model);
              // vLLM returns the beams best first.
              return { text: beams.choices[0] ?? '', callId: beams.callId, critiqueCallIds: [] };
            }
            const sampled = await llm.chat(scope, weak, {
              purpose: 'best-of-n',
              promptVersion: CONTRAST_PROMPT_VERSIONS.answer,
              messages,
              n: cfg.samples,
              temperature: cfg.sampleTemperature,
              model,
            });
            // Identical samples are critiqued once.
            const distinct = [...new Set(sampled.choices.filter((c) => c.trim() !== ''))];
            if (distinct.length === 0) return { text: '', callId: sampled.callId, critiqueCallIds: [] };
            const critiques = await Promise.all(distinct.map((s) => critique(q, s)));
            const best = distinct[bestIndex(critiques.map((c) => c.score))] ?? '';
            return { text: best, callId: sampled.callId, critiqueCallIds: critiques.map((c) => c.callId) };
          };

          /** Whether the model's own critique prefers `chosen` over `rejected`; null when unparseable. */
          const prefersChosen = async (q: QuestionRow, chosen: string, rejected: string) => {
            const first = chosenIsFirst(q.id);
            const reply = await askStructured(
              llm,
              scope,
              weak,
              {
                purpose: 'pairwise-self-critique',
                promptVersion: CONTRAST_PROMPT_VERSIONS.pairwiseSelfCritique,
                messages: first
                  ? pairwiseSelfCritiquePrompt(spec.domain, q, chosen, rejected)
                  : pairwiseSelfCritiquePrompt(spec.domain, q, rejected, chosen),
                jsonSchema: PAIRWISE_SELF_CRITIQUE_SCHEMA,
                temperature: 0,
                model,
              },
              PairwiseSelfCritique,
              CRITIQUE_ATTEMPTS,
            );
            const agrees = reply.value ? reply.value.better === (first ? 'A' : 'B') : null;
            return { agrees, callId: reply.call.callId };
          };

          const [greedy, high] = await Promise.all([
            llm.chat(scope, weak, {
              purpose: 'greedy',
              promptVersion: CONTRAST_PROMPT_VERSIONS.answer,
              messages: contrastAnswerPrompt(spec.domain, q),
              temperature: 0,
              n: 1,
              model,
            }),
            highDecode(q),
          ]);
          const chosen = high.text;
          const rejected = greedy.content;
          const similarity = tokenJaccard(chosen, rejected);
          const critiqueCallIds = [...high.critiqueCallIds];
          let dropReason: DropReason | null = null;
          let critiqueAgrees: boolean | null = null;
          if (high.rstar && high.rstar.pick === null) {
            dropReason = 'no-consistent-trajectory';
          } else if (similarity >= cfg.maxSimilarity) {
            dropReason = 'near-identical';
          } else if (cfg.requireSelfCritique) {
            const verdict = await prefersChosen(q, chosen, rejected);
            critiqueCallIds.push(verdict.callId);
            critiqueAgrees = verdict.agrees;
            if (verdict.agrees === null) dropReason = 'critique-unparseable';
            else if (!verdict.agrees) dropReason = 'critique-disagrees';
          }
          const pick = high.rstar?.pick ?? null;
          // Before the pair, which marks the question done: a rerun upserts the same candidates.
          if (high.rstar) {
            await saveRStarCandidates(db, { campaignId, iteration, questionId: q.id }, high.rstar.candidates);
          }
          await db
            .insertInto('preference_pairs')
            .values({
              campaign_id: campaignId,
              iteration,
              question_id: q.id,
              model_in: model,
              method: cfg.method,
              chosen,
              rejected,
              similarity,
              kept: dropReason === null,
              drop_reason: dropReason,
              critique_agrees: critiqueAgrees,
              greedy_call_id: greedy.callId,
              high_call_id: high.callId,
              critique_call_ids: JSON.stringify(critiqueCallIds),
              chosen_path: pick ? JSON.stringify(pick.path) : null,
              chosen_call_ids: pick ? JSON.stringify(pick.callIds) : null,
            })
            .onConflict((oc) =>
              oc.columns(['campaign_id', 'iteration', 'question_id']).doUpdateSet((eb) => ({
                model_in: eb.ref('excluded.model_in'),
                method: eb.ref('excluded.method'),
                chosen: eb.ref('excluded.chosen'),
                rejected: eb.ref('excluded.rejected'),
                similarity: eb.ref('excluded.similarity'),
                kept: eb.ref('excluded.kept'),
                drop_reason: eb.ref('excluded.drop_reason'),
                critique_agrees: eb.ref('excluded.critique_agrees'),
                greedy_call_id: eb.ref('excluded.greedy_call_id'),
                high_call_id: eb.ref('excluded.high_call_id'),
                critique_call_ids: eb.ref('excluded.critique_call_ids'),
                chosen_path: eb.ref('excluded.chosen_path'),
                chosen_call_ids: eb.ref('excluded.chosen_call_ids'),
              })),
            )
            .execute();
          counts.created++;
        },
      });
    },
  };
}

/**
 * vLLM beam search through its OpenAI-compatible server (REFERENCE.md §4): `use_beam_search`,
 * `n` beams, `length_penalty`, and temperature 0 set explicitly. A server that refuses it is a
 * configuration error: say which setting fixes it.
 */
async function beamSearch(
  llm: LlmGateway,
  scope: LlmCallScope,
  weak: Endpoint,
  cfg: ContrastStageSpec,
  messages: ChatMessage[],
  model: string,
): Promise<ChatResult> {
  try {
    return await llm.chat(scope, weak, {
      purpose: 'beam-search',
      promptVersion: CONTRAST_PROMPT_VERSIONS.answer,
      messages,
      n: cfg.beamWidth,
      temperature: 0,
      extraBody: { use_beam_search: true, length_penalty: cfg.lengthPenalty },
      model,
    });
  } catch (err) {
    if (err instanceof LlmFatalError && /\((400|422)\)|beam/i.test(err.message)) {
      // The server's fault, not this question's: every question would fail the same way.
      throw llmEndpointError(
        `${err.message} — stages.contrast.method 'beam' needs a server with vLLM beam search ` +
          "(use_beam_search); for one without it, set stages.contrast.method: 'best-of-n'",
      );
    }
    throw err;
  }
}
