/**
 * Evolution line iterations: take in the questions that arrived since the last iteration and
 * create the iteration's campaign with the champion as its M0; at the end, judge its final
 * model against the champion (the campaign's own evaluation: M0 is the champion) and promote
 * it only past the line's gate. Every step is keyed by the iteration's workflow id, so a retried
 * activity finds what it already did.
 */
import path from 'node:path';
import { sql } from 'kysely';
import { buildReport } from '../client/report';
import type { Db } from '../core/db/connection';
import type { LineIterationState } from '../core/db/types';
import { UserError } from '../core/errors';
import { LineSpecSchema, type LineSpec } from '../core/line-spec';
import { insertCampaign } from '../core/campaigns';
import { loadQuestionFile, type Question } from '../core/questions';
import { loadSpecFile } from '../core/spec-file';
import type { ActivityDeps } from './context';

export interface LineGateOutcome {
  promoted: boolean;
  reason: string;
}

async function lineOf(db: Db, name: string): Promise<{ spec: LineSpec; specDir: string; taskQueue: string }> {
  const row = await db.selectFrom('lines').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row || row.deleted_at) throw new UserError(`no line named ${name}`);
  return { spec: LineSpecSchema.parse(row.spec), specDir: row.spec_dir, taskQueue: row.task_queue };
}

/** The line's champion now: the latest change of its history; null while the base model holds. */
export async function currentChampion(db: Db, line: string) {
  return (
    (await db
      .selectFrom('line_champions')
      .selectAll()
      .where('line', '=', line)
      .orderBy('id', 'desc')
      .executeTakeFirst()) ?? null
  );
}

export function lineActivities({ db }: ActivityDeps) {
  return {
    /**
     * Creates the iteration (and its campaign) once per workflow: the campaign's question file is
     * read again, questions the line trained on before (same content hash) and held-out ones are
     * left out, and an iteration with nothing new is recorded as skipped.
     */
    async startLineIteration({
      line,
      workflowId,
    }: {
      line: string;
      workflowId: string;
    }): Promise<{ iteration: number; campaignId: string | null; questionsAdded: number }> {
      const found = await db
        .selectFrom('line_iterations')
        .selectAll()
        .where('workflow_id', '=', workflowId)
        .executeTakeFirst();
      if (found) {
        return {
          iteration: found.iteration,
          campaignId: found.campaign_id,
          questionsAdded: found.questions_added,
        };
      }
      const { spec: lineSpec, specDir, taskQueue } = await lineOf(db, line);
      const loaded = await loadSpecFile(path.resolve(specDir, lineSpec.campaign));
      const train = await loadQuestionFile(
        path.resolve(loaded.dir, loaded.spec.questions.train),
        'train',
        loaded.spec.questions.train,
      );
      return db.transaction().execute(async (trx) => {
        // One iteration starts at a time: the line row is the lock.
        await sql`select name from lines where name = ${line} for update`.execute(trx);
        const last = await trx
          .selectFrom('line_iterations')
          .select(sql<number>`coalesce(max(iteration), 0)::int`.as('n'))
          .where('line', '=', line)
          .executeTakeFirstOrThrow();
        const iteration = last.n + 1;
        const heldOut = await trx
          .selectFrom('line_heldout')
          .selectAll()
          .where('line', '=', line)
          .orderBy('ordinal')
          .execute();
        const seen = await trx
          .selectFrom('questions')
          .innerJoin('campaigns', 'campaigns.id', 'questions.campaign_id')
          .select('questions.content_hash')
          .where('campaigns.line_name', '=', line)
          .where('questions.split', '=', 'train')
          .execute();
        const excluded = new Set([...seen.map((q) => q.content_hash), ...heldOut.map((q) => q.content_hash)]);
        const fresh = train.filter((q) => !excluded.has(q.contentHash));
        if (fresh.length === 0) {
          await trx
            .insertInto('line_iterations')
            .values({
              line,
              iteration,
              workflow_id: workflowId,
              state: 'skipped',
              reason: `no new questions in ${loaded.spec.questions.train} since the last iteration`,
              finished_at: new Date(),
            })
            .execute();
          return { iteration, campaignId: null, questionsAdded: 0 };
        }

        const campaignId = `${line}-i${iteration}`;
        const champion = await currentChampion(db, line);
        // Renumbered in file order; ids stay the file's, so the audit leads back to its lines.
        await insertCampaign(trx, {
          id: campaignId,
          workflowId: `campaign-${campaignId}`,
          taskQueue,
          loaded,
          line: { name: line, iteration },
          questions: [
            ...fresh.map((q, ordinal) => ({ ...q, ordinal })),
            ...heldOut.map((q, ordinal): Question => ({
              id: q.id,
              split: 'eval',
              ordinal,
              title: q.title,
              question: q.question,
              reference: q.reference,
              contentHash: q.content_hash,
            })),
          ],
        });
        // M0 is the line's champion (or the weak model as given): the lineage crosses iterations.
        await trx
          .insertInto('model_versions')
          .values({
            campaign_id: campaignId,
            label: 'M0',
            parent_label: null,
            served_model: champion?.served_model ?? loaded.spec.models.weak.model,
            checkpoint_uri: champion?.checkpoint_uri ?? null,
            origin_campaign_id: champion?.campaign_id ?? null,
            origin_label: champion?.label ?? null,
          })
          .execute();
        await trx
          .insertInto('line_iterations')
          .values({
            line,
            iteration,
            workflow_id: workflowId,
            campaign_id: campaignId,
            state: 'running',
            questions_added: fresh.length,
          })
          .execute();
        return { iteration, campaignId, questionsAdded: fresh.length };
      });
    },

    /**
     * The promotion gate: the campaign's final model against its M0 (the champion) on the line's
     * held-out set; promoted only when, on every gating dimension, the 95% CI's lower bound of the
     * tie-adjusted win rate exceeds the threshold.
     */
    async gateLineIteration({
      line,
      iteration,
      campaignId,
    }: {
      line: string;
      iteration: number;
      campaignId: string;
    }): Promise<LineGateOutcome> {
      const row = await db
        .selectFrom('line_iterations')
        .selectAll()
        .where('line', '=', line)
        .where('iteration', '=', iteration)
        .executeTakeFirstOrThrow();
      if (row.promoted !== null) return { promoted: row.promoted, reason: row.reason ?? '' };
      const { spec } = await lineOf(db, line);
      const report = await buildReport(db, campaignId);
      const final = [...report.lineage].reverse().find((m) => m.stage !== null && m.stage !== 'evaluate');
      const evaluated = report.evaluation?.models.find((m) => m.modelLabel === final?.label);
      const replayed = await db
        .selectFrom('dataset_replay')
        .select(sql<number>`count(*)::int`.as('n'))
        .where('campaign_id', '=', campaignId)
        .executeTakeFirstOrThrow();

      let outcome: LineGateOutcome;
      let gate: unknown = null;
      if (!final) {
        outcome = {
          promoted: false,
          reason: 'the iteration made no new model (every training set came out empty)',
        };
      } else if (!evaluated || evaluated.questions < spec.promotion.minHeldOut) {
        outcome = {
          promoted: false,
          reason: `judged on ${evaluated?.questions ?? 0} held-out questions, fewer than promotion.minHeldOut (${spec.promotion.minHeldOut})`,
        };
      } else {
        const dims = spec.promotion.dimensions.map((dimension) => {
          const d = evaluated.dimensions.find((x) => x.dimension === dimension);
          const lo = d?.ci?.lo ?? null;
          return {
            dimension,
            wins: d?.wins ?? 0,
            ties: d?.ties ?? 0,
            losses: d?.losses ?? 0,
            tieAdjustedWinRate: d?.tieAdjustedWinRate ?? 0,
            ci: d?.ci ?? null,
            passed: lo !== null && lo > spec.promotion.threshold,
          };
        });
        gate = dims;
        const failed = dims.filter((d) => !d.passed);
        const show = (d: (typeof dims)[number]) =>
          `${d.dimension} ${(100 * d.tieAdjustedWinRate).toFixed(1)}% [${d.ci ? `${(100 * d.ci.lo).toFixed(1)}%, ${(100 * d.ci.hi).toFixed(1)}%` : 'no CI'}]`;
        outcome =
          failed.length === 0
            ? {
                promoted: true,
                reason: `${final.label} beat ${report.lineage[0]?.servedModel ?? 'the champion'}: ${dims.map(show).join('; ')} (lower bounds > ${spec.promotion.threshold})`,
              }
            : {
                promoted: false,
                reason: `not better than the champion: ${failed.map(show).join('; ')} (lower bound ≤ ${spec.promotion.threshold})`,
              };
      }

      await db.transaction().execute(async (trx) => {
        if (outcome.promoted && final) {
          await trx
            .insertInto('line_champions')
            .values({
              line,
              campaign_id: campaignId,
              label: final.label,
              served_model: final.servedModel,
              checkpoint_uri: final.checkpointUri,
              kind: 'gate',
              actor: 'gate',
              why: outcome.reason,
            })
            .execute();
        }
        await trx
          .updateTable('line_iterations')
          .set({
            state: 'completed',
            promoted: outcome.promoted,
            reason: outcome.reason,
            gate: JSON.stringify(gate),
            questions_replayed: replayed.n,
            finished_at: new Date(),
          })
          .where('line', '=', line)
          .where('iteration', '=', iteration)
          .execute();
      });
      return outcome;
    },

    async finishLineIteration({
      line,
      iteration,
      state,
      reason,
    }: {
      line: string;
      iteration: number;
      state: LineIterationState;
      reason: string | null;
    }): Promise<void> {
      await db
        .updateTable('line_iterations')
        .set({ state, reason, finished_at: new Date() })
        .where('line', '=', line)
        .where('iteration', '=', iteration)
        .where('state', '=', 'running')
        .execute();
    },
  };
}
