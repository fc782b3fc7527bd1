/**
 * Stage 3's rStar decode (`method: rstar`; REFERENCE §7, core/search/rstar.ts): the current model
 * searches with rStar's five actions (its tree kept per rollout in `search_nodes`, stage
 * 'contrast', so a retried batch resumes it and pays for nothing twice), then the discriminator —
 * its own endpoint — completes every candidate trajectory cut at a random step, and the chosen
 * output is the best mutually consistent trajectory. No beam search is asked for, so any
 * OpenAI-compatible server will do. With no consistent trajectory the question yields no pair.
 */
import type { Db } from '../../core/db/connection';
import type { QuestionRow } from '../../core/db/types';
import type { Endpoint, LlmCallScope, LlmGateway } from '../../core/llm/gateway';
import { pgTreeStore } from '../../core/search/pg-tree-store';
import {
  mutualConsistency,
  rstarSearch,
  type Candidate,
  type RStarNode,
  type RStarPolicy,
  type RStarTree,
} from '../../core/search/rstar';
import { llmDiscriminator, llmRStarPolicy, normalizeAnswer } from '../../core/search/rstar-policy';
import type { ContrastStageSpec } from './options';

/** One candidate trajectory and the discriminator's check of it, as `rstar_candidates` keeps it. */
export interface RStarCandidateRecord {
  nodeId: number;
  answer: string;
  score: number;
  cut: number;
  steps: number;
  discriminatorAnswer: string | null;
  consistent: boolean;
  discriminatorCallId: string;
}

/** What the rStar decode of one question made. */
export interface RStarDecode {
  /** The chosen trajectory as text; '' when no candidate is consistent. */
  text: string;
  /**
   * The generator call behind the output: the one that made the chosen trajectory's last step; with
   * no pick, the best-scoring candidate's (or, with no candidate, the search's first step's).
   */
  callId: string;
  /** The chosen trajectory (null: none is consistent). */
  pick: { path: number[]; callIds: string[] } | null;
  candidates: RStarCandidateRecord[];
}

export interface RStarDecodeInput {
  llm: LlmGateway;
  db: Db;
  scope: LlmCallScope;
  /** The generator: the weak endpoint, called as `model` (the current model version). */
  weak: Endpoint;
  model: string;
  discriminator: Endpoint;
  domain: string;
  question: QuestionRow;
  options: ContrastStageSpec['rstar'];
}

/**
 * A trajectory as the chosen output: its steps in order (the rephrased conditions, sub-questions
 * and their answers, steps), then rStar's final-answer line.
 */
export function trajectoryText(path: readonly RStarNode[]): string {
  const steps = path.map((n) => n.text.trim()).filter((t) => t !== '');
  const answer = path[path.length - 1]?.answer;
  return [...steps, ...(answer ? [`The answer is: ${answer}`] : [])].join('\n');
}

/** The search (resumed from its saved rollouts), then the discriminator's mutual consistency. */
export async function rstarDecode(i: RStarDecodeInput): Promise<RStarDecode> {
  const o = i.options;
  const question = { title: i.question.title, question: i.question.question };
  const policy = llmRStarPolicy({
    llm: i.llm,
    scope: i.scope,
    endpoint: i.weak,
    model: i.model,
    domain: i.domain,
    question,
    samples: o.samples,
    temperature: o.temperature,
  });
  const store = pgTreeStore<RStarNode>(i.db, {
    campaignId: i.scope.campaignId,
    stage: i.scope.stage,
    iteration: i.scope.iteration,
    questionId: i.question.id,
  });
  const tree = await rstarSearch(policy, store, {
    rollouts: o.rollouts,
    explorationConstant: o.explorationConstant,
    maxDepth: o.maxDepth,
    seed: o.seed,
  });

  // Which call answered each prefix; the same prefix (two candidates sharing it) is one call.
  const discriminatorCalls = new Map<string, string>();
  const { candidates, pick } = await mutualConsistency(
    tree,
    llmDiscriminator({
      llm: i.llm,
      scope: i.scope,
      endpoint: i.discriminator,
      domain: i.domain,
      question,
      onCall: (prefix, callId) => discriminatorCalls.set(prefixKey(prefix), callId),
    }),
    { cutFrom: o.cutFrom, cutTo: o.cutTo, seed: o.seed, normalize: normalizeAnswer },
  );

  const records = candidates.map((c): RStarCandidateRecord => {
    const callId = discriminatorCalls.get(prefixKey(c.path.slice(0, c.cut)));
    if (callId === undefined) throw new Error(`rstar: no discriminator call for node ${c.node.id}`);
    return {
      nodeId: c.node.id,
      answer: c.node.answer ?? '',
      score: c.score,
      cut: c.cut,
      steps: c.path.length,
      discriminatorAnswer: c.discriminatorAnswer,
      consistent: c.consistent,
      discriminatorCallId: callId,
    };
  });

  if (pick) {
    const callIds = await stepCalls(policy, tree, pick.path);
    return {
      text: trajectoryText(pick.path),
      callId: callIds[callIds.length - 1] as string,
      pick: { path: pick.path.map((n) => n.id), callIds },
      candidates: records,
    };
  }
  const best = bestScoring(candidates);
  const anchor = best ? best.node : (tree.children(tree.root)[0] ?? null);
  if (!anchor) throw new Error('rstar: the search made no step');
  const [callId] = await stepCalls(policy, tree, [anchor]);
  return { text: '', callId: callId as string, pick: null, candidates: records };
}

/** Saves the candidates of one question (upserts: a rerun writes the same rows). */
export async function saveRStarCandidates(
  db: Db,
  key: { campaignId: string; iteration: number; questionId: string },
  candidates: readonly RStarCandidateRecord[],
): Promise<void> {
  if (candidates.length === 0) return;
  await db
    .insertInto('rstar_candidates')
    .values(
      candidates.map((c) => ({
        campaign_id: key.campaignId,
        iteration: key.iteration,
        question_id: key.questionId,
        node_id: c.nodeId,
        answer: c.answer,
        score: c.score,
        cut: c.cut,
        steps: c.steps,
        discriminator_answer: c.discriminatorAnswer,
        consistent: c.consistent,
        discriminator_call_id: c.discriminatorCallId,
      })),
    )
    .onConflict((oc) =>
      oc.columns(['campaign_id', 'iteration', 'question_id', 'node_id']).doUpdateSet((eb) => ({
        answer: eb.ref('excluded.answer'),
        score: eb.ref('excluded.score'),
        cut: eb.ref('excluded.cut'),
        steps: eb.ref('excluded.steps'),
        discriminator_answer: eb.ref('excluded.discriminator_answer'),
        consistent: eb.ref('excluded.consistent'),
        discriminator_call_id: eb.ref('excluded.discriminator_call_id'),
      })),
    )
    .execute();
}

const prefixKey = (prefix: readonly RStarNode[]) => prefix.map((n) => n.id).join('/');

/** The highest-scoring candidate, the first on a tie (what the pick would be without the check). */
function bestScoring(candidates: readonly Candidate[]): Candidate | null {
  return candidates.reduce<Candidate | null>((b, c) => (b === null || c.score > b.score ? c : b), null);
}

/**
 * The generator call that made each node: the node's action asked again after its parent's path.
 * The search logged that call (now or before a crash), so the gateway answers from the call log —
 * a lookup, not a request — and a resumed search's older nodes are covered alike.
 */
async function stepCalls(
  policy: RStarPolicy,
  tree: RStarTree,
  nodes: readonly RStarNode[],
): Promise<string[]> {
  const ids: string[] = [];
  for (const node of nodes) {
    const parent = tree.parent(node);
    if (!parent || node.action === null) throw new Error(`rstar: node ${node.id} is the root`);
    const made = await policy.generate(tree.path(parent), node.action);
    const callId = made[0]?.callId;
    if (callId === undefined) throw new Error(`rstar: the policy gave no call id for node ${node.id}`);
    ids.push(callId);
  }
  return ids;
}
