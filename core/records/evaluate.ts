/**
 * Evaluation records, streamed: its judgments (the stage's records), their counts, and the audit
 * lines that lead from each judgment to the question, both answers and the three LLM calls behind
 * it. The evaluation runs once per campaign (iteration 1): its tables carry no iteration, so the
 * counts below are the campaign's.
 */
import { sql } from 'kysely';
import type { Db } from '../db/connection';
import { auditHeader } from './shared';

/** The base model's label: the root of the lineage (M0). */
export async function baseModelLabel(db: Db, campaignId: string): Promise<string> {
  const row = await db
    .selectFrom('model_versions')
    .select('label')
    .where('campaign_id', '=', campaignId)
    .where('parent_label', 'is', null)
    .executeTakeFirst();
  return row?.label ?? 'M0';
}

export async function evaluateRecordCount(db: Db, campaignId: string, _iteration: number): Promise<number> {
  const row = await db
    .selectFrom('judgments')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('campaign_id', '=', campaignId)
    .executeTakeFirstOrThrow();
  return row.n;
}

export async function evaluateMetrics(
  db: Db,
  campaignId: string,
  _iteration: number,
): Promise<Record<string, number>> {
  const [j, a] = await Promise.all([
    db
      .selectFrom('judgments')
      .select([
        sql<number>`count(*)::int`.as('n'),
        sql<number>`count(*) filter (where status = 'unparseable')::int`.as('unparseable'),
        sql<number>`count(*) filter (where attempts > 1)::int`.as('retried'),
      ])
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('eval_answers')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow(),
  ]);
  return { judgments: j.n, unparseable: j.unparseable, judgmentsRetried: j.retried, answers: a.n };
}

/** One JSON object per judgment, with the question, both answers, the raw judge text and the LLM call ids. */
export async function* evaluateAudit(db: Db, campaignId: string): AsyncGenerator<Record<string, unknown>> {
  const baseLabel = await baseModelLabel(db, campaignId);
  const rows = db
    .selectFrom('judgments as j')
    .innerJoin('questions as q', (jn) =>
      jn.onRef('q.campaign_id', '=', 'j.campaign_id').onRef('q.id', '=', 'j.question_id'),
    )
    .leftJoin('eval_answers as ma', (jn) =>
      jn
        .onRef('ma.campaign_id', '=', 'j.campaign_id')
        .onRef('ma.model_label', '=', 'j.model_label')
        .onRef('ma.question_id', '=', 'j.question_id'),
    )
    .leftJoin('eval_answers as ba', (jn) =>
      jn
        .onRef('ba.campaign_id', '=', 'j.campaign_id')
        .on('ba.model_label', '=', baseLabel)
        .onRef('ba.question_id', '=', 'j.question_id'),
    )
    .select([
      'j.model_label',
      'j.question_id',
      'j.position',
      'j.judge_model',
      'j.prompt_version',
      'j.raw_text',
      'j.status',
      'j.verdicts',
      'j.scores',
      'j.attempts',
      'j.call_id',
      'j.created_at',
      'q.title',
      'q.question',
      'q.reference',
      'ma.served_model as model_served',
      'ma.answer as model_answer',
      'ma.call_id as model_call_id',
      'ba.served_model as base_served',
      'ba.answer as base_answer',
      'ba.call_id as base_call_id',
    ])
    .where('j.campaign_id', '=', campaignId)
    .orderBy('j.model_label')
    .orderBy('q.ordinal')
    .orderBy('j.position', 'desc');
  for await (const r of rows.stream(500)) {
    yield {
      ...auditHeader(campaignId, 'evaluate', 1, r),
      model: { label: r.model_label, servedModel: r.model_served, answer: r.model_answer },
      base: { label: baseLabel, servedModel: r.base_served, answer: r.base_answer },
      // Which answer the judge saw first (as "Assistant A").
      position: r.position,
      judgeModel: r.judge_model,
      promptVersion: r.prompt_version,
      status: r.status,
      verdicts: r.verdicts,
      scores: r.scores,
      attempts: r.attempts,
      rawText: r.raw_text,
      llmCallIds: { judge: r.call_id, modelAnswer: r.model_call_id, baseAnswer: r.base_call_id },
      createdAt: r.created_at,
    };
  }
}
