/**
 * Task evolution's batch activity. Per seed — a given training question, within `seeds` — the
 * strong model writes a new question (all calls of the batch at once, under the endpoint's
 * limits); then, one seed after another in file order, the rewrite is judged against every
 * question the campaign has (given, held-out, evolved and kept so far) and its record written,
 * together with the new question when kept. The judgement and the write are one transaction under
 * a per-campaign lock that first reads what other attempts committed, so a retried or overlapping
 * attempt never keeps a near-copy of a question it has not seen, and a seed is decided once: the
 * first attempt to commit its record decides it, and one that finds the record stands by it.
 *
 * A kept question joins the training split with the next ordinal (the stage workflow cuts batches
 * by ordinal, so the split stays without gaps) and the id `evolved/<seed id>`: derived from the
 * seed, the same on every attempt, and with a `/` that no question file may use.
 */
import { sql } from 'kysely';
import { getCampaign } from '../../core/campaigns';
import { judgeEvolution, askEvolution, type EvolutionReply } from '../../core/evolution/evolve';
import type { Db } from '../../core/db/connection';
import type { QuestionRow } from '../../core/db/types';
import type { Endpoint } from '../../core/llm/gateway';
import { contentHash } from '../../core/questions';
import { runQuestionBatch } from '../../activities/batch';
import type { ActivityDeps } from '../../activities/context';
import type { BatchInput, BatchResult } from '../../workflows/types';
import { KnownQuestionsCache, type KnownQuestions } from './known-questions';
import type { EvolveStageSpec } from './options';

/** The id of the question evolved from a seed: the same on every attempt. */
export function evolvedQuestionId(seedId: string): string {
  return `evolved/${seedId}`;
}

/** The seeds of a batch: given questions (never an evolved one), the first `seeds` of the file. */
export function isSeed(q: QuestionRow, seeds: EvolveStageSpec['seeds']): boolean {
  return q.origin === 'given' && (seeds === 'all' || q.ordinal < seeds);
}

export function evolveActivities({ db, llm }: ActivityDeps) {
  const cache = new KnownQuestionsCache();
  return {
    async evolveBatch(input: BatchInput): Promise<BatchResult> {
      const { campaignId } = input;
      const { spec } = await getCampaign(db, campaignId);
      const options = spec.stages.evolve;
      const strong: Endpoint = { ...spec.models.strong, role: 'strong' };
      let turns = new InTurn([]);
      let known: KnownQuestions | null = null;
      return runQuestionBatch(db, input, {
        stage: 'evolve',
        maxFailedFraction: options.maxFailedFraction,
        async pending(questions) {
          const todo = await withoutRecord(
            db,
            input,
            questions.filter((q) => isSeed(q, options.seeds)),
          );
          turns = new InTurn(todo.map((q) => q.id));
          // Read only when there is something to judge: a retried batch that is done reads nothing.
          if (todo.length > 0) known = await cache.get(db, campaignId, options.maxSimilarity);
          return todo;
        },
        async work(q, scope, counts) {
          try {
            const reply = await askEvolution({
              llm,
              scope,
              endpoint: strong,
              domain: spec.domain,
              seed: { id: q.id, ordinal: q.ordinal, title: q.title, question: q.question },
              attempts: options.attempts,
            });
            await turns.ready(q.id);
            // Set by pending(), which runs before any work.
            if (!known) throw new Error('evolveBatch: the known questions were not loaded');
            if (await decide(db, input, reply, known)) counts.created++;
          } finally {
            turns.finish(q.id);
          }
        },
      });
    },
  };
}

/**
 * Judges one rewrite and writes its record (and the question, when kept), in one transaction
 * under the campaign's evolution lock. False when another attempt had already decided the seed.
 */
async function decide(
  db: Db,
  input: BatchInput,
  reply: EvolutionReply,
  known: KnownQuestions,
): Promise<boolean> {
  const { campaignId, iteration } = input;
  const newId = evolvedQuestionId(reply.seedId);
  const kept = await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`meteor-evolve:${campaignId}`}))`.execute(trx);
    const decided = await trx
      .selectFrom('evolved_questions')
      .select('outcome')
      .where('campaign_id', '=', campaignId)
      .where('iteration', '=', iteration)
      .where('seed_id', '=', reply.seedId)
      .executeTakeFirst();
    if (decided) return null;
    // What other attempts or workers committed since this worker last looked.
    await known.refresh(trx, campaignId);
    const outcome = judgeEvolution(reply, known.filter);
    let question: { ordinal: number; title: string | null; question: string } | null = null;
    if (outcome.status === 'kept') {
      const { next } = await trx
        .selectFrom('questions')
        .select(sql<number>`coalesce(max(ordinal), -1)::int + 1`.as('next'))
        .where('campaign_id', '=', campaignId)
        .where('split', '=', 'train')
        .executeTakeFirstOrThrow();
      // The sim and real models may return an empty title; a question file would leave it out.
      const title = outcome.title.trim() === '' ? null : outcome.title;
      question = { ordinal: next, title, question: outcome.question };
      await trx
        .insertInto('questions')
        .values({
          campaign_id: campaignId,
          id: newId,
          split: 'train',
          ordinal: next,
          title,
          question: outcome.question,
          reference: null,
          content_hash: contentHash({ title, question: outcome.question }),
          origin: 'evolved',
          evolved_from: reply.seedId,
        })
        .execute();
    }
    await trx
      .insertInto('evolved_questions')
      .values({
        campaign_id: campaignId,
        iteration,
        seed_id: reply.seedId,
        method: outcome.method,
        outcome: outcome.status,
        reason: outcome.status === 'rejected' ? outcome.verdict.reason : null,
        question_id: outcome.status === 'kept' ? newId : null,
        title: outcome.status === 'unparseable' ? null : outcome.title,
        question: outcome.status === 'unparseable' ? null : outcome.question,
        closest_id:
          outcome.status === 'kept'
            ? (outcome.closest?.id ?? null)
            : outcome.status === 'rejected'
              ? outcome.verdict.similarTo
              : null,
        similarity:
          outcome.status === 'kept'
            ? (outcome.closest?.similarity ?? null)
            : outcome.status === 'rejected'
              ? outcome.verdict.similarity
              : null,
        call_id: reply.callId,
      })
      .execute();
    return { question };
  });
  if (kept === null) return false;
  // Learnt once committed, so the filter never holds a question the database does not.
  if (kept.question) known.add({ id: newId, split: 'train', ...kept.question });
  return true;
}

/** The seeds without a record for this iteration. */
async function withoutRecord(db: Db, input: BatchInput, seeds: QuestionRow[]): Promise<QuestionRow[]> {
  if (seeds.length === 0) return [];
  const rows = await db
    .selectFrom('evolved_questions')
    .select('seed_id')
    .where('campaign_id', '=', input.campaignId)
    .where('iteration', '=', input.iteration)
    .where(
      'seed_id',
      'in',
      seeds.map((q) => q.id),
    )
    .execute();
  const done = new Set(rows.map((r) => r.seed_id));
  return seeds.filter((q) => !done.has(q.id));
}

/**
 * Lets work items pass one at a time in a fixed order: an item's turn comes once every item before
 * it has finished, whether it got to its turn or failed before (so a failed seed holds nobody up).
 */
class InTurn {
  private readonly gates = new Map<string, Promise<unknown>>();
  private readonly finishers = new Map<string, () => void>();

  constructor(ids: string[]) {
    let before: Promise<unknown> = Promise.resolve();
    for (const id of ids) {
      this.gates.set(id, before);
      const finished = new Promise<void>((resolve) => this.finishers.set(id, resolve));
      before = Promise.all([before, finished]);
    }
  }

  ready(id: string): Promise<unknown> {
    return this.gates.get(id) ?? Promise.resolve();
  }

  finish(id: string): void {
    this.finishers.get(id)?.();
  }
}
