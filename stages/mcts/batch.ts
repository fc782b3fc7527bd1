/**
 * `mcts` stage activities: per training question, one SRA-MCTS search (core/search/sra-mcts.ts)
 * with the current model (the weak endpoint, serving `input.modelIn`) as policy and critic; the
 * chosen path and the answer made of it are upserted by (campaign, iteration, question).
 *
 * The whole search runs inside the batch activity — no activity per node, so histories stay small;
 * runQuestionBatch heartbeats. Each round's nodes are saved (search_trees / search_nodes, stage
 * 'mcts') as the round ends, with the ids of the calls it made (mcts_round_calls), so a question
 * whose batch is retried after a crash continues its tree at the next round: rounds saved are not
 * run again, and the round cut off asks the same requests, which the call log answers unpaid.
 */
import { getCampaign } from '../../core/campaigns';
import { retryOnConnectionLoss, type Db } from '../../core/db/connection';
import type { Endpoint, LlmGateway } from '../../core/llm/gateway';
import { pgTreeStore, type SearchTreeKey } from '../../core/search/pg-tree-store';
import { sraMcts, type SraMctsOptions, type SraMctsStore, type TreeNode } from '../../core/search/sra-mcts';
import { llmSraMctsPolicy } from '../../core/search/sra-mcts-policy';
import { runQuestionBatch, withoutRecord } from '../../activities/batch';
import type { ActivityDeps } from '../../activities/context';
import type { BatchInput, BatchResult } from '../../workflows/types';
import type { MctsStageSpec } from './options';
import { mctsFinalAnswer } from './prompts';

/** How long a record or a round's call ids are tried again while the database is away. */
const RECORD_RETRY_MS = 60_000;

/** The engine's settings from the stage's options (the rest keep the engine's defaults). */
export function mctsSearchOptions(o: MctsStageSpec): Partial<SraMctsOptions> {
  return {
    branch: o.branch,
    rollBranch: o.rollBranch,
    rollForwardSteps: o.rollForwardSteps,
    iterationLimit: o.iterationLimit,
    endGate: o.endGate,
    explorationConstant: o.explorationConstant,
    alpha: o.alpha,
    seed: o.seed,
  };
}

export function mctsActivities({ db, llm }: ActivityDeps) {
  return {
    /** Searches one batch of training questions; created: questions whose record this call wrote. */
    async mctsBatch(input: BatchInput): Promise<BatchResult> {
      const { campaignId, iteration } = input;
      const { spec } = await getCampaign(db, campaignId);
      const opts = spec.stages.mcts;
      const weak: Endpoint = { ...spec.models.weak, role: 'weak' };
      return runQuestionBatch(db, input, {
        stage: 'mcts',
        maxFailedFraction: opts.maxFailedFraction,
        pending: (questions) => withoutRecord(db, 'mcts_records', input, questions),
        async work(q, scope, counts) {
          const key: SearchTreeKey = { campaignId, stage: 'mcts', iteration, questionId: q.id };
          const calls: string[] = [];
          const policy = llmSraMctsPolicy({
            llm: recordingCallIds(llm, calls),
            scope,
            endpoint: weak,
            model: input.modelIn,
            domain: spec.domain,
            question: q,
            temperature: opts.proposalTemperature,
            attempts: opts.structuredAttempts,
          });
          const store = withRoundCalls(db, key, pgTreeStore<TreeNode>(db, key), calls);
          const r = await sraMcts(policy, store, mctsSearchOptions(opts));
          const row = {
            campaign_id: campaignId,
            iteration,
            question_id: q.id,
            model_in: input.modelIn,
            steps: JSON.stringify(r.steps),
            answer: mctsFinalAnswer(r.steps),
            value: r.value,
            reached_gate: r.reachedGate,
            rounds: r.rounds,
            nodes: r.nodes,
          };
          await retryOnConnectionLoss(
            () =>
              db
                .insertInto('mcts_records')
                .values(row)
                .onConflict((oc) =>
                  oc.columns(['campaign_id', 'iteration', 'question_id']).doUpdateSet((eb) => ({
                    model_in: eb.ref('excluded.model_in'),
                    steps: eb.ref('excluded.steps'),
                    answer: eb.ref('excluded.answer'),
                    value: eb.ref('excluded.value'),
                    reached_gate: eb.ref('excluded.reached_gate'),
                    rounds: eb.ref('excluded.rounds'),
                    nodes: eb.ref('excluded.nodes'),
                    updated_at: new Date(),
                  })),
                )
                .execute(),
            RECORD_RETRY_MS,
          );
          counts.created++;
        },
      });
    },
  };
}

/**
 * The gateway, noting the id of every call answered through it (made or reused from the log) in
 * `into`. A proxy rather than a wrapper type: the policy takes the gateway itself.
 */
function recordingCallIds(llm: LlmGateway, into: string[]): LlmGateway {
  const chat: LlmGateway['chat'] = async (...args) => {
    const result = await llm.chat(...args);
    into.push(result.callId);
    return result;
  };
  return new Proxy(llm, {
    get: (target, prop, receiver): unknown => (prop === 'chat' ? chat : Reflect.get(target, prop, receiver)),
  });
}

/**
 * The tree's store, saving with each round the ids of the calls the round made (taken from
 * `calls`) before the round's nodes: a crash between the two reruns the round, whose calls the
 * log answers with the same ids, so the row is written again the same.
 */
function withRoundCalls(db: Db, key: SearchTreeKey, inner: SraMctsStore, calls: string[]): SraMctsStore {
  return {
    load: () => inner.load(),
    async save(nodes, round) {
      const ids = JSON.stringify(calls.splice(0));
      await retryOnConnectionLoss(
        () =>
          db
            .insertInto('mcts_round_calls')
            .values({
              campaign_id: key.campaignId,
              iteration: key.iteration,
              question_id: key.questionId,
              round,
              call_ids: ids,
            })
            .onConflict((oc) =>
              oc
                .columns(['campaign_id', 'iteration', 'question_id', 'round'])
                .doUpdateSet((eb) => ({ call_ids: eb.ref('excluded.call_ids') })),
            )
            .execute(),
        RECORD_RETRY_MS,
      );
      await inner.save(nodes, round);
    },
  };
}
