/**
 * A campaign's report (`meteorctl campaign report`), built from the database alone, so it can be
 * made while the campaign runs, after it ended, or long after its workers are gone: per stage and
 * iteration its records, dataset rows, tokens and cost; the model lineage; and the evaluation,
 * recomputed from the judgment rows by core/evaluation/stats.ts (never from a stored summary).
 *
 * `simulated` is true when any endpoint of the campaign is the project's model simulator (model
 * names `sim-*`): every rendering of the report must then say so prominently.
 */
import { sql } from 'kysely';
import { getCampaign } from '../core/campaigns';
import { listFineTunes, type FineTuneSummary } from './finetunes';
import type { Db } from '../core/db/connection';
import {
  evaluateModels,
  wordCount,
  type AnswerLength,
  type JudgmentInput,
  type ModelEvaluation,
} from '../core/evaluation/stats';
import { EVAL_DIMENSIONS } from '../core/evaluation/stats';
import { shapingOf } from '../core/llm/request-shape';
import type { EndpointSpec } from '../core/spec';
import { selfCorrectionStats, type SelfCorrectionStats } from '../core/evaluation/self-correction';
import { stageMetrics, stageRecordCount } from '../core/records';
import { baseModelLabel, selfCorrectionAttempts } from '../stages/evaluate/records';
import { stageDefinition, stageNames, type StageName } from '../stages/registry';

export interface StageReport {
  stage: StageName;
  iteration: number;
  status: string;
  /** Label of the model the stage worked with (the base model for the evaluation). */
  modelIn: string;
  /** Label of the model its fine-tune made, or null. */
  modelOut: string | null;
  /** Questions of its split. */
  total: number;
  records: number;
  /** Questions it gave up on, not resolved by `campaign retry-failed` (count, then each). */
  failed: number;
  failedQuestions: Array<{ questionId: string; reason: string; httpStatus: number | null }>;
  /** Rows of its training set, or null (evaluation, or not exported yet). */
  datasetRows: number | null;
  calls: number;
  promptTokens: number;
  /** Of the prompt tokens, those the provider reported as read from its cache (billed at the cached price). */
  cachedTokens: number;
  completionTokens: number;
  /** What the calls were billed: at each one's mode and cached-input price (core/llm/pricing.ts). */
  costUsd: number;
  startedAt: string;
  finishedAt: string | null;
  /**
   * Stage 2 (any stage that answers twice): SCoRe's metrics from its first and second rounds (null
   * elsewhere, or before a question has both); a correct first answer is not asked again, so Δc→i
   * is 0 by construction.
   */
  selfCorrection: SelfCorrectionStats | null;
  /** The stage's own figures (its definition's `records.metrics`), e.g. guidelines corrected. */
  figures: Record<string, number>;
}

export interface LineageNode {
  label: string;
  parent: string | null;
  servedModel: string;
  stage: StageName | null;
  iteration: number | null;
  datasetRows: number | null;
  checkpointUri: string | null;
  /** M0 of an evolution line's iteration: the champion it is, in its own campaign. */
  origin: { campaignId: string; label: string } | null;
}

export interface ModelReport extends ModelEvaluation {
  servedModel: string | null;
  stage: StageName | null;
  iteration: number | null;
  /** SCoRe's metrics from the evaluation's self-correction probe; null when it did not run. */
  selfCorrection: SelfCorrectionStats | null;
}

export interface EvaluationReport {
  baseModel: string;
  judgeModels: string[];
  promptVersions: string[];
  /** Held-out questions of the campaign. */
  evalQuestions: number;
  dimensions: string[];
  resamples: number;
  seed: number;
  confidence: number;
  lengthUnit: 'words';
  method: string;
  models: ModelReport[];
  /** The base model's self-correction probe (SCoRe's metrics); null when it did not run. */
  baseSelfCorrection: SelfCorrectionStats | null;
  /** How the self-correction probe works, for the renderings. */
  selfCorrectionMethod: string;
}

export interface CampaignReport {
  generatedAt: string;
  simulated: boolean;
  /** Set when simulated: the sentence every rendering shows. */
  simulationNotice: string | null;
  campaign: {
    id: string;
    name: string;
    domain: string;
    state: string;
    error: string | null;
    createdAt: string;
    models: Record<string, { model: string; baseURL: string } | null>;
    /** The evolution line and iteration this campaign is, or null. */
    line: { name: string; iteration: number } | null;
  };
  stages: StageReport[];
  totals: {
    calls: number;
    promptTokens: number;
    cachedTokens: number;
    completionTokens: number;
    costUsd: number;
  };
  /** How the tokens and cost above are counted, for the renderings. */
  costMethod: string;
  /** How requests were shaped where that departs from the method as written (temperature omitted, …). */
  shapingNotes: string[];
  lineage: LineageNode[];
  /** Each fine-tune: backend, external job id, state, duration and final loss. */
  fineTunes: FineTuneSummary[];
  evaluation: EvaluationReport | null;
}

export const COST_METHOD =
  "Cost is what the calls were billed at the spec's pricing: online or batch prices by how each call was " +
  'sent, and its cached prompt tokens (those the provider reported as read from its prompt cache, part of ' +
  'the tokens in) at the cached-input price. Paid duplicates count.';

/** What the report states about endpoints whose requests were shaped away from the method's. */
export function shapingNotes(endpoints: Record<string, EndpointSpec | null>): string[] {
  const notes: string[] = [];
  for (const [role, ep] of Object.entries(endpoints)) {
    if (!ep) continue;
    const shaping = shapingOf(ep);
    if (shaping.temperature === 'omit') {
      notes.push(
        `models.${role}: no temperature was sent (temperature: omit); the calls the method makes greedy ran at ` +
          "the endpoint's most deterministic setting, its default sampling",
      );
    }
    if (shaping.structuredOutput !== 'json_schema') {
      notes.push(
        `models.${role}: structured replies asked as ${shaping.structuredOutput}, the schema in the prompt` +
          `${shaping.structuredOutput === 'guided_json' ? ' and in guided_json' : ''}; every reply validated against it`,
      );
    }
  }
  return notes;
}

export const SIMULATION_NOTICE =
  "SIMULATION: this campaign's models are the project's model simulator (sim-*), not real models. " +
  'Its numbers exercise the platform and say nothing about METEOR or any real model.';

export const SELF_CORRECTION_METHOD =
  "Self-correction (SCoRe): each model answers, is asked to revise with SCoRe's second-turn instruction " +
  '(it might be wrong; not told whether it is), and the strong model judges both attempts. Acc@t1, Acc@t2, ' +
  'Δ = Acc@t2 − Acc@t1, Δi→c (wrong → right), Δc→i (right → wrong), as shares of the questions with both ' +
  'verdicts; 95% CI by percentile bootstrap over questions.';

export const TIE_RULE =
  'Each pair is judged twice with the answers swapped; a dimension is a win (or loss) only when both ' +
  'verdicts agree, otherwise a tie (MT-Bench). Tie-adjusted win rate = (wins + 0.5 ties) / n; 95% CI by ' +
  'percentile bootstrap over questions.';

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

export async function buildReport(db: Db, campaignId: string): Promise<CampaignReport> {
  const { row, spec } = await getCampaign(db, campaignId);
  const [runs, calls, datasets, models, evalCount, baseLabel] = await Promise.all([
    db.selectFrom('stage_runs').selectAll().where('campaign_id', '=', campaignId).execute(),
    db
      .selectFrom('llm_calls')
      .select([
        'stage',
        'iteration',
        sql<number>`(count(*) filter (where status = 'ok'))::int`.as('calls'),
        sql<number>`coalesce(sum(prompt_tokens), 0)::float8`.as('pt'),
        // Null where the provider reported no cache (and on calls logged before migration 017).
        sql<number>`coalesce(sum(cached_tokens), 0)::float8`.as('cached'),
        sql<number>`coalesce(sum(completion_tokens), 0)::float8`.as('ct'),
        sql<number>`coalesce(sum(cost_usd), 0)::float8`.as('cost'),
      ])
      .where('campaign_id', '=', campaignId)
      // A duplicate (migration 007) was paid for too: it counts in cost and tokens.
      .where('status', 'in', ['ok', 'duplicate'])
      .groupBy(['stage', 'iteration'])
      .execute(),
    db
      .selectFrom('datasets')
      .select(['id', 'stage', 'iteration', 'rows'])
      .where('campaign_id', '=', campaignId)
      .where('format', '=', 'openai')
      .execute(),
    db
      .selectFrom('model_versions')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .orderBy('created_at')
      .orderBy('label')
      .execute(),
    db
      .selectFrom('questions')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('campaign_id', '=', campaignId)
      .where('split', '=', 'eval')
      .executeTakeFirstOrThrow(),
    baseModelLabel(db, campaignId),
  ]);

  const bootstrap = { resamples: spec.stages.evaluate.bootstrapResamples, seed: spec.stages.evaluate.seed };
  const order = (s: string) => stageNames().indexOf(s as StageName);
  runs.sort((a, b) => order(a.stage) - order(b.stage) || a.iteration - b.iteration);
  const stages: StageReport[] = await Promise.all(
    runs.map(async (r): Promise<StageReport> => {
      const definition = stageDefinition(r.stage as StageName);
      const c = calls.find((x) => x.stage === r.stage && x.iteration === r.iteration);
      const ds = datasets.find((x) => x.stage === r.stage && x.iteration === r.iteration);
      const out = models.find((m) => m.stage === r.stage && m.iteration === r.iteration);
      const failedQuestions = (
        await db
          .selectFrom('failed_questions')
          .select(['question_id', 'reason', 'http_status'])
          .where('campaign_id', '=', campaignId)
          .where('stage', '=', r.stage)
          .where('iteration', '=', r.iteration)
          .where('resolved_at', 'is', null)
          .orderBy('question_id')
          .execute()
      ).map((f) => ({ questionId: f.question_id, reason: f.reason, httpStatus: f.http_status }));
      return {
        stage: r.stage as StageName,
        iteration: r.iteration,
        status: r.status,
        modelIn: r.model_in,
        modelOut: r.model_out ?? out?.label ?? null,
        total: r.total,
        records: await stageRecordCount(db, campaignId, r.stage as StageName, r.iteration),
        failed: failedQuestions.length,
        failedQuestions,
        datasetRows: ds?.rows ?? null,
        calls: c?.calls ?? 0,
        promptTokens: c?.pt ?? 0,
        cachedTokens: c?.cached ?? 0,
        completionTokens: c?.ct ?? 0,
        costUsd: c?.cost ?? 0,
        startedAt: iso(r.started_at) as string,
        finishedAt: iso(r.finished_at),
        selfCorrection: definition.records.attempts
          ? selfCorrectionStats(await definition.records.attempts(db, campaignId, r.iteration), bootstrap)
          : null,
        figures: await stageMetrics(db, campaignId, r.stage as StageName, r.iteration),
      };
    }),
  );
  const totals = calls.reduce(
    (t, c) => ({
      calls: t.calls + c.calls,
      promptTokens: t.promptTokens + c.pt,
      cachedTokens: t.cachedTokens + c.cached,
      completionTokens: t.completionTokens + c.ct,
      costUsd: t.costUsd + c.cost,
    }),
    { calls: 0, promptTokens: 0, cachedTokens: 0, completionTokens: 0, costUsd: 0 },
  );

  const lineage: LineageNode[] = models.map((m) => ({
    label: m.label,
    parent: m.parent_label,
    servedModel: m.served_model,
    stage: (m.stage as StageName | null) ?? null,
    iteration: m.iteration,
    datasetRows:
      datasets.find((d) => m.dataset_id !== null && String(d.id) === String(m.dataset_id))?.rows ?? null,
    checkpointUri: m.checkpoint_uri,
    origin:
      m.origin_campaign_id && m.origin_label
        ? { campaignId: m.origin_campaign_id, label: m.origin_label }
        : null,
  }));

  const endpoints = {
    weak: spec.models.weak,
    strong: spec.models.strong,
    judge: spec.models.judge ?? null,
    // Only where the campaign has one (stage 3's rStar decode).
    ...(spec.models.discriminator ? { discriminator: spec.models.discriminator } : {}),
  };
  const simulated = Object.values(endpoints).some((e) => e !== null && e.model.startsWith('sim-'));

  return {
    generatedAt: new Date().toISOString(),
    simulated,
    simulationNotice: simulated ? SIMULATION_NOTICE : null,
    campaign: {
      id: row.id,
      name: row.name,
      domain: row.domain,
      state: row.state,
      error: row.error,
      createdAt: iso(row.created_at) as string,
      line:
        row.line_name && row.line_iteration !== null
          ? { name: row.line_name, iteration: row.line_iteration }
          : null,
      models: Object.fromEntries(
        Object.entries(endpoints).map(([role, e]) => [
          role,
          e ? { model: e.model, baseURL: e.baseURL } : null,
        ]),
      ),
    },
    stages,
    totals,
    costMethod: COST_METHOD,
    shapingNotes: shapingNotes(endpoints),
    lineage,
    fineTunes: await listFineTunes(db, campaignId),
    evaluation: await evaluationReport(db, campaignId, baseLabel, evalCount.n, lineage, bootstrap),
  };
}

/** The evaluation recomputed from the judgment rows; null when the campaign has none. */
async function evaluationReport(
  db: Db,
  campaignId: string,
  baseLabel: string,
  evalQuestions: number,
  lineage: LineageNode[],
  opts: { resamples: number; seed: number },
): Promise<EvaluationReport | null> {
  const rows = await db
    .selectFrom('judgments')
    .select([
      'model_label',
      'question_id',
      'position',
      'status',
      'verdicts',
      'scores',
      'judge_model',
      'prompt_version',
    ])
    .where('campaign_id', '=', campaignId)
    .execute();
  if (rows.length === 0) return null;
  const judgments: JudgmentInput[] = rows.map((r) => ({
    modelLabel: r.model_label,
    questionId: r.question_id,
    position: r.position,
    status: r.status,
    verdicts: r.verdicts,
    scores: r.scores,
  }));
  // Answers can be long: stream them and keep only their lengths.
  const lengths: AnswerLength[] = [];
  const answers = db
    .selectFrom('eval_answers')
    .select(['model_label', 'question_id', 'answer'])
    .where('campaign_id', '=', campaignId)
    .stream(500);
  for await (const a of answers) {
    lengths.push({ modelLabel: a.model_label, questionId: a.question_id, words: wordCount(a.answer) });
  }
  const evaluated = evaluateModels(judgments, lengths, { baseLabel, ...opts });
  const probes = await selfCorrectionAttempts(db, campaignId);
  const selfCorrectionOf = (label: string) => selfCorrectionStats(probes.get(label) ?? [], opts);
  return {
    baseModel: baseLabel,
    judgeModels: [...new Set(rows.map((r) => r.judge_model))].sort(),
    promptVersions: [...new Set(rows.map((r) => r.prompt_version))].sort(),
    evalQuestions,
    dimensions: [...EVAL_DIMENSIONS],
    resamples: opts.resamples,
    seed: opts.seed,
    confidence: 0.95,
    lengthUnit: 'words',
    method: TIE_RULE,
    models: evaluated.map((m) => {
      const node = lineage.find((n) => n.label === m.modelLabel);
      return {
        ...m,
        servedModel: node?.servedModel ?? null,
        stage: node?.stage ?? null,
        iteration: node?.iteration ?? null,
        selfCorrection: selfCorrectionOf(m.modelLabel),
      };
    }),
    baseSelfCorrection: selfCorrectionOf(baseLabel),
    selfCorrectionMethod: SELF_CORRECTION_METHOD,
  };
}

const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
/** A signed share: +12.5%, −6.3%, 0.0%. */
export const signedPct = (x: number) => `${x > 0 ? '+' : x < 0 ? '−' : ''}${(100 * Math.abs(x)).toFixed(1)}%`;
const num = (x: number | null, digits = 1) => (x === null ? '-' : x.toFixed(digits));
const int = (x: number) => Math.round(x).toLocaleString('en-US');

function table(rows: string[][], align: Array<'l' | 'r'>): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) =>
    r
      .map((cell, i) => (align[i] === 'r' ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** Label of a candidate: `M1 (distill #1)`. */
export function modelTitle(m: {
  modelLabel: string;
  stage: string | null;
  iteration: number | null;
}): string {
  return m.stage ? `${m.modelLabel} (${m.stage} #${m.iteration})` : m.modelLabel;
}

/** A titled row of a self-correction table. */
export interface SelfCorrectionEntry {
  title: string;
  stats: SelfCorrectionStats;
}

/**
 * What the report's self-correction tables show: the evaluation's probe per model (the base first),
 * and stage 2's rounds per iteration. Text and HTML render the same entries.
 */
export function selfCorrectionEntries(r: CampaignReport): {
  probed: SelfCorrectionEntry[];
  assessed: SelfCorrectionEntry[];
} {
  const ev = r.evaluation;
  const probed = ev
    ? [
        ...(ev.baseSelfCorrection ? [{ title: `${ev.baseModel} (base)`, stats: ev.baseSelfCorrection }] : []),
        ...ev.models.flatMap((m) =>
          m.selfCorrection ? [{ title: modelTitle(m), stats: m.selfCorrection }] : [],
        ),
      ]
    : [];
  const assessed = r.stages.flatMap((s) =>
    s.selfCorrection ? [{ title: `${s.stage} #${s.iteration} (${s.modelIn})`, stats: s.selfCorrection }] : [],
  );
  return { probed, assessed };
}

/** A stage's figures as `name value, …`, fractions to three places. */
export function figuresText(figures: Record<string, number>): string {
  return Object.entries(figures)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? int(v) : v.toFixed(3)}`)
    .join(', ');
}

/** Rows of a self-correction table: one per model (or stage iteration) with its SCoRe metrics. */
export function selfCorrectionRows(entries: readonly SelfCorrectionEntry[], heading = 'model'): string[][] {
  return [
    [`  ${heading}`, 'n', 'Acc@t1', 'Acc@t2', 'Δ(t1,t2)', '95% CI of Δ', 'Δi→c', 'Δc→i'],
    ...entries.map(({ title, stats: s }) => [
      `  ${title}`,
      String(s.n),
      pct(s.accT1),
      pct(s.accT2),
      signedPct(s.delta),
      `[${signedPct(s.ci.delta.lo)}, ${signedPct(s.ci.delta.hi)}]`,
      pct(s.deltaIC),
      pct(s.deltaCI),
    ]),
  ];
}

/** The report as terminal text. */
export function renderReportText(r: CampaignReport): string {
  const lines: string[] = [];
  const bar = '='.repeat(100);
  if (r.simulationNotice) lines.push(bar, r.simulationNotice, bar, '');
  lines.push(
    `campaign ${r.campaign.id}  (${r.campaign.name}: ${r.campaign.domain})  ${r.campaign.state}`,
    `models: ${Object.entries(r.campaign.models)
      .map(([role, m]) => `${role} ${m?.model ?? '-'}`)
      .join(', ')}`,
  );
  if (r.campaign.line)
    lines.push(`evolution line ${r.campaign.line.name}, iteration ${r.campaign.line.iteration}`);
  if (r.campaign.error) lines.push(`error: ${r.campaign.error}`);
  lines.push('');

  const ev = r.evaluation;
  const { probed, assessed } = selfCorrectionEntries(r);
  if (!ev) {
    lines.push('evaluation: no judgments yet');
  } else {
    lines.push(
      `evaluation against the base model ${ev.baseModel} on ${ev.evalQuestions} held-out questions ` +
        `(judge ${ev.judgeModels.join(', ')}, prompt ${ev.promptVersions.join(', ')})`,
      `  ${ev.method}`,
      `  ${ev.resamples} bootstrap resamples, seed ${ev.seed}; lengths in words.`,
    );
    for (const m of ev.models) {
      lines.push(
        '',
        `${modelTitle(m)} vs ${ev.baseModel}: overall score ${num(m.overallScore.model)} vs ${num(m.overallScore.base)} (1–10), ` +
          `mean length ${num(m.meanLength.model, 0)} vs ${num(m.meanLength.base, 0)} words, ` +
          `${m.questions} questions` +
          (m.pendingQuestions > 0 ? `, ${m.pendingQuestions} pending` : '') +
          (m.unparseableJudgments > 0
            ? `, ${m.unparseableJudgments} unparseable judgment(s) counted as ties`
            : ''),
      );
      const rows = [
        ['  dimension', 'W/T/L', 'win rate', 'tie-adjusted', '95% CI', 'mean length (model/base)'],
        ...m.dimensions.map((d) => [
          `  ${d.dimension}`,
          `${d.wins}/${d.ties}/${d.losses}`,
          pct(d.winRate),
          pct(d.tieAdjustedWinRate),
          d.ci ? `[${pct(d.ci.lo)}, ${pct(d.ci.hi)}]` : '-',
          `${num(m.meanLength.model, 0)}/${num(m.meanLength.base, 0)}`,
        ]),
      ];
      lines.push(...table(rows, ['l', 'r', 'r', 'r', 'r', 'r']));
    }
    if (probed.length > 0) {
      lines.push('', 'self-correction on the held-out questions', `  ${ev.selfCorrectionMethod}`);
      lines.push(...table(selfCorrectionRows(probed), ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']));
    }
  }

  lines.push('', 'stages');
  const stageRows = [
    [
      '  stage',
      'status',
      'model',
      'records',
      'dataset',
      'calls',
      'tokens in',
      'cached',
      'tokens out',
      'cost',
    ],
    ...r.stages.map((s) => [
      `  ${s.stage} #${s.iteration}`,
      s.status,
      s.modelOut
        ? `${s.modelIn} → ${s.modelOut}`
        : stageDefinition(s.stage).questions === 'eval' && ev
          ? `${s.modelIn} vs ${ev.models.map((m) => m.modelLabel).join(', ')}`
          : s.modelIn,
      int(s.records),
      s.datasetRows === null ? '-' : int(s.datasetRows),
      int(s.calls),
      int(s.promptTokens),
      int(s.cachedTokens),
      int(s.completionTokens),
      `$${s.costUsd.toFixed(4)}`,
    ]),
    [
      '  total',
      '',
      '',
      '',
      '',
      int(r.totals.calls),
      int(r.totals.promptTokens),
      int(r.totals.cachedTokens),
      int(r.totals.completionTokens),
      `$${r.totals.costUsd.toFixed(4)}`,
    ],
  ];
  lines.push(...table(stageRows, ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']), `  ${r.costMethod}`);
  for (const note of r.shapingNotes) lines.push(`  ${note}`);
  const figured = r.stages.filter((s) => Object.keys(s.figures).length > 0);
  if (figured.length > 0) {
    lines.push('', "stage figures (each stage's own counts)");
    for (const s of figured) lines.push(`  ${s.stage} #${s.iteration}: ${figuresText(s.figures)}`);
  }
  if (assessed.length > 0) {
    lines.push(
      '',
      'self-assessment rounds (stage 2): round 1 → round 2 after the strong model’s feedback; a correct ' +
        'answer is not asked again, so Δc→i is 0 by construction',
    );
    lines.push(
      ...table(selfCorrectionRows(assessed, 'iteration (model)'), ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']),
    );
  }
  const failedStages = r.stages.filter((s) => s.failed > 0);
  if (failedStages.length > 0) {
    lines.push('', 'failed questions (retry with `meteorctl campaign retry-failed`)');
    for (const s of failedStages) {
      for (const f of s.failedQuestions)
        lines.push(`  ${s.stage} #${s.iteration} ${f.questionId}: ${f.reason}`);
    }
  }
  if (r.fineTunes.length > 0) {
    lines.push('', 'fine-tunes');
    const ftRows = [
      ['  stage', 'backend', 'job', 'state', 'duration', 'final loss'],
      ...r.fineTunes.map((f) => [
        `  ${f.stage} #${f.iteration}`,
        f.backend,
        f.externalId ?? '-',
        f.state,
        f.durationSec === null ? '-' : `${f.durationSec}s`,
        f.finalLoss === null ? '-' : f.finalLoss.toFixed(4),
      ]),
    ];
    lines.push(...table(ftRows, ['l', 'l', 'l', 'l', 'r', 'r']));
  }
  lines.push(
    '',
    `lineage: ${r.lineage
      .map((n) => (n.stage ? `${n.label} (${n.stage} #${n.iteration})` : `${n.label} (${n.servedModel})`))
      .join(' → ')}`,
  );
  if (r.simulationNotice) lines.push('', r.simulationNotice);
  return `${lines.join('\n')}\n`;
}
