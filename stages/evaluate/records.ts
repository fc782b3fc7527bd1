/**
 * Evaluation records, streamed: its judgments (the stage's records), their counts, and the audit
 * lines that lead from each judgment to the question, both answers and the three LLM calls behind
 * it. The evaluation runs once per campaign (iteration 1): its tables carry no iteration, so the
 * counts below are the campaign's.
 */
import { sql } from 'kysely';
import type { Db } from '../../core/db/connection';
import { auditHeader } from '../../core/records/shared';
import type { AttemptVerdict } from '../../core/db/types';
import { attemptOutcome, type TwoAttempts } from '../../core/evaluation/self-correction';

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
  const [j, a, p] = await Promise.all([
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
    db
      .selectFrom('self_corrections')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow(),
  ]);
  return {
    judgments: j.n,
    unparseable: j.unparseable,
    judgmentsRetried: j.retried,
    answers: a.n,
    selfCorrectionProbes: p.n,
  };
}

/** Each model's two attempts per held-out question from its self-correction probe, by model label. */
export async function selfCorrectionAttempts(
  db: Db,
  campaignId: string,
): Promise<Map<string, TwoAttempts[]>> {
  const rows = await db
    .selectFrom('self_corrections')
    .select(['model_label', 'verdict_t1', 'verdict_t2'])
    .where('campaign_id', '=', campaignId)
    .orderBy('model_label')
    .orderBy('question_id')
    .execute();
  const byModel = new Map<string, TwoAttempts[]>();
  for (const r of rows) {
    const list = byModel.get(r.model_label) ?? [];
    list.push({ t1: attemptOutcome(r.verdict_t1), t2: attemptOutcome(r.verdict_t2) });
    byModel.set(r.model_label, list);
  }
  return byModel;
}

type Judged = [verdict: AttemptVerdict | null, feedback: string | null, callId: string | null];

/** A model's self-correction probe on the question as an audit line shows it, or null when not run. */
function probeOf(revision: string | null, revisionCall: string | null, t1: Judged, t2: Judged) {
  if (revision === null) return null;
  return {
    // Attempt 1 is the model's answer above.
    revision,
    verdicts: { t1: t1[0], t2: t2[0] },
    feedback: { t1: t1[1], t2: t2[1] },
    llmCallIds: { revision: revisionCall, verdictT1: t1[2], verdictT2: t2[2] },
  };
}

/**
 * One JSON object per judgment, with the question, both answers, the raw judge text and the LLM
 * call ids; each answer with its model's self-correction probe on the question (null when none).
 */
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
    .leftJoin('self_corrections as ms', (jn) =>
      jn
        .onRef('ms.campaign_id', '=', 'j.campaign_id')
        .onRef('ms.model_label', '=', 'j.model_label')
        .onRef('ms.question_id', '=', 'j.question_id'),
    )
    .leftJoin('self_corrections as bs', (jn) =>
      jn
        .onRef('bs.campaign_id', '=', 'j.campaign_id')
        .on('bs.model_label', '=', baseLabel)
        .onRef('bs.question_id', '=', 'j.question_id'),
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
      'ms.revision as m_revision',
      'ms.revision_call_id as m_revision_call',
      'ms.verdict_t1 as m_v1',
      'ms.feedback_t1 as m_f1',
      'ms.verdict_t1_call_id as m_v1_call',
      'ms.verdict_t2 as m_v2',
      'ms.feedback_t2 as m_f2',
      'ms.verdict_t2_call_id as m_v2_call',
      'bs.revision as b_revision',
      'bs.revision_call_id as b_revision_call',
      'bs.verdict_t1 as b_v1',
      'bs.feedback_t1 as b_f1',
      'bs.verdict_t1_call_id as b_v1_call',
      'bs.verdict_t2 as b_v2',
      'bs.feedback_t2 as b_f2',
      'bs.verdict_t2_call_id as b_v2_call',
    ])
    .where('j.campaign_id', '=', campaignId)
    .orderBy('j.model_label')
    .orderBy('q.ordinal')
    .orderBy('j.position', 'desc');
  for await (const r of rows.stream(500)) {
    yield {
      ...auditHeader(campaignId, 'evaluate', 1, r),
      model: {
        label: r.model_label,
        servedModel: r.model_served,
        answer: r.model_answer,
        selfCorrection: probeOf(
          r.m_revision,
          r.m_revision_call,
          [r.m_v1, r.m_f1, r.m_v1_call],
          [r.m_v2, r.m_f2, r.m_v2_call],
        ),
      },
      base: {
        label: baseLabel,
        servedModel: r.base_served,
        answer: r.base_answer,
        selfCorrection: probeOf(
          r.b_revision,
          r.b_revision_call,
          [r.b_v1, r.b_f1, r.b_v1_call],
          [r.b_v2, r.b_f2, r.b_v2_call],
        ),
      },
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
