/**
 * The evolution line report: per iteration the questions added and replayed, cost, the judged
 * result against the champion with its CI, promoted or not; and the champion history.
 * Text and JSON here; HTML in line-report-html.ts.
 */
import { sql } from 'kysely';
import { LineSpecSchema } from '../core/line-spec';
import { CampaignSpecSchema } from '../core/spec';
import type { Clients } from './connect';
import { lineStatus } from './lines';
import { SIMULATION_NOTICE } from './report';

/** One gating dimension of an iteration's judged result against the champion. */
export interface LineGateDimension {
  dimension: string;
  wins: number;
  ties: number;
  losses: number;
  /** (wins + 0.5 ties) / n */
  tieAdjustedWinRate: number;
  /** 95% bootstrap CI of the tie-adjusted win rate; null when it could not be computed. */
  ci: { lo: number; hi: number } | null;
  /** Whether the CI's lower bound exceeded the line's threshold. */
  passed: boolean;
}

export interface LineIterationReport {
  iteration: number;
  campaignId: string | null;
  state: 'running' | 'completed' | 'failed' | 'cancelled' | 'skipped';
  startedAt: string;
  finishedAt: string | null;
  questionsAdded: number;
  questionsReplayed: number;
  costUsd: number;
  /** The champion it was judged against (null: the line's base model). */
  against: { campaignId: string | null; label: string; servedModel: string };
  /** The iteration's final model (null when it made none). */
  candidate: { label: string; servedModel: string } | null;
  gate: LineGateDimension[] | null;
  promoted: boolean | null;
  reason: string | null;
}

export interface LineChampionChange {
  at: string;
  campaignId: string;
  label: string;
  servedModel: string;
  /** gate: promoted by the judge; promote / rollback: by a person. */
  kind: 'gate' | 'promote' | 'rollback';
  actor: string;
  why: string | null;
}

export interface LineReport {
  generatedAt: string;
  simulated: boolean;
  simulationNotice: string | null;
  line: {
    name: string;
    state: 'active' | 'paused' | 'deleted';
    scheduleId: string;
    /** The schedule in words, e.g. "every 24h" or "cron 0 2 * * * (Europe/Berlin)". */
    schedule: string;
    promotion: { dimensions: string[]; threshold: number; minHeldOut: number };
    replayFraction: number;
    heldOut: number;
  };
  champion: { campaignId: string; label: string; servedModel: string } | null;
  championHistory: LineChampionChange[];
  iterations: LineIterationReport[];
}

const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);

/** The line report from the database and the line's schedule. */
export async function buildLineReport(clients: Clients, name: string): Promise<LineReport> {
  const { db } = clients;
  const status = await lineStatus(clients, name);
  const row = await db.selectFrom('lines').selectAll().where('name', '=', name).executeTakeFirstOrThrow();
  const spec = LineSpecSchema.parse(row.spec);
  const [iterations, history, heldOut] = await Promise.all([
    db.selectFrom('line_iterations').selectAll().where('line', '=', name).orderBy('iteration').execute(),
    db.selectFrom('line_champions').selectAll().where('line', '=', name).orderBy('id').execute(),
    db
      .selectFrom('line_heldout')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('line', '=', name)
      .executeTakeFirstOrThrow(),
  ]);
  const campaignIds = iterations.flatMap((it) => (it.campaign_id ? [it.campaign_id] : []));
  const [costs, models, specs] = await Promise.all([
    campaignIds.length === 0
      ? []
      : db
          .selectFrom('llm_calls')
          .select(['campaign_id', sql<number>`coalesce(sum(cost_usd), 0)::float8`.as('cost')])
          .where('campaign_id', 'in', campaignIds)
          // A duplicate (migration 007) was paid for too: it counts in cost and tokens.
          .where('status', 'in', ['ok', 'duplicate'])
          .groupBy('campaign_id')
          .execute(),
    campaignIds.length === 0
      ? []
      : db
          .selectFrom('model_versions')
          .selectAll()
          .where('campaign_id', 'in', campaignIds)
          .orderBy('created_at')
          .orderBy('label')
          .execute(),
    campaignIds.length === 0
      ? []
      : db.selectFrom('campaigns').select(['id', 'spec']).where('id', 'in', campaignIds).execute(),
  ]);
  const simulated = specs.some((c) => {
    const s = CampaignSpecSchema.parse(c.spec);
    return Object.values(s.models).some((e) => e?.model.startsWith('sim-'));
  });
  const schedule =
    'every' in spec.schedule
      ? `every ${spec.schedule.every}`
      : `cron ${spec.schedule.cron} (${spec.schedule.timezone})`;

  return {
    generatedAt: new Date().toISOString(),
    simulated,
    simulationNotice: simulated ? SIMULATION_NOTICE : null,
    line: {
      name,
      state: status.state === 'missing' ? 'deleted' : status.state,
      scheduleId: row.schedule_id,
      schedule,
      promotion: spec.promotion,
      replayFraction: spec.replay.fraction,
      heldOut: heldOut.n,
    },
    champion: status.champion
      ? {
          campaignId: status.champion.campaignId,
          label: status.champion.label,
          servedModel: status.champion.servedModel,
        }
      : null,
    championHistory: history.map((h) => ({
      at: new Date(h.at).toISOString(),
      campaignId: h.campaign_id,
      label: h.label,
      servedModel: h.served_model,
      kind: h.kind,
      actor: h.actor,
      why: h.why,
    })),
    iterations: iterations.map((it): LineIterationReport => {
      const own = models.filter((m) => m.campaign_id === it.campaign_id);
      const m0 = own.find((m) => m.label === 'M0');
      const final = [...own].reverse().find((m) => m.stage !== null);
      return {
        iteration: it.iteration,
        campaignId: it.campaign_id,
        state: it.state,
        startedAt: new Date(it.started_at).toISOString(),
        finishedAt: iso(it.finished_at),
        questionsAdded: it.questions_added,
        questionsReplayed: it.questions_replayed,
        costUsd: costs.find((c) => c.campaign_id === it.campaign_id)?.cost ?? 0,
        against: {
          campaignId: m0?.origin_campaign_id ?? null,
          label: m0?.origin_label ?? 'M0',
          servedModel: m0?.served_model ?? '-',
        },
        candidate: final ? { label: final.label, servedModel: final.served_model } : null,
        gate: (it.gate as LineGateDimension[] | null) ?? null,
        promoted: it.promoted,
        reason: it.reason,
      };
    }),
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function renderLineReportText(r: LineReport): string {
  const lines: string[] = [];
  if (r.simulationNotice) lines.push(r.simulationNotice, '');
  lines.push(
    `line ${r.line.name}  ${r.line.state}  (${r.line.schedule}, schedule ${r.line.scheduleId})`,
    `promotion: 95% CI lower bound of the tie-adjusted win rate > ${r.line.promotion.threshold} on ` +
      `${r.line.promotion.dimensions.join(', ')}, at least ${r.line.promotion.minHeldOut} of ${r.line.heldOut} held-out questions; ` +
      `replay ${pct(r.line.replayFraction)}`,
    `champion: ${r.champion ? `${r.champion.label} of ${r.champion.campaignId} (${r.champion.servedModel})` : 'the base model'}`,
    '',
    'iterations',
  );
  for (const it of r.iterations) {
    const gate = (it.gate ?? [])
      .map(
        (g) =>
          `${g.dimension} ${pct(g.tieAdjustedWinRate)}${g.ci ? ` [${pct(g.ci.lo)}, ${pct(g.ci.hi)}]` : ''}`,
      )
      .join('; ');
    lines.push(
      `  #${it.iteration} ${it.campaignId ?? '-'} ${it.state}: +${it.questionsAdded} questions, ${it.questionsReplayed} replayed, ` +
        `$${it.costUsd.toFixed(4)}; ${it.candidate ? `${it.candidate.label} vs ${it.against.label}` : 'no new model'}` +
        `${gate ? `: ${gate}` : ''}${it.promoted === null ? '' : it.promoted ? ' → promoted' : ' → not promoted'}`,
    );
    if (it.reason) lines.push(`      ${it.reason}`);
  }
  lines.push('', 'champion history');
  if (r.championHistory.length === 0) lines.push('  (none yet: the base model holds)');
  for (const h of r.championHistory) {
    lines.push(
      `  ${h.at}  ${h.kind.padEnd(8)} ${h.label} of ${h.campaignId} by ${h.actor}${h.why ? `: ${h.why}` : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
