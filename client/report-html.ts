/**
 * The campaign report as ONE self-contained HTML file: inline CSS and inline SVG charts — drawn
 * from Vega-Lite specs rendered to SVG here, in Node (client/charts.ts) — no script, no external
 * resource, so it can be mailed, archived or opened offline.
 *
 * Every chart sits in a `<figure data-chart="…">` (`winrate`, `outcomes`, `scores`, `stages` with
 * `data-metric`, `lineage`); inside, Vega's marks are `g.NAME_marks` groups: win-rate bars
 * `g.bar_marks`, their confidence intervals `g.ci_marks` (rules) and `g.cap_marks` (ticks),
 * lineage nodes `g.node_marks`, edges `g.edge_marks`, node labels `g.label_marks`.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { DimensionStats } from '../core/evaluation/stats';
import { BASE_COLOR, colorOf, esc, INK, MUTED, OUTCOME_COLORS, renderChart, STAGE_COLORS } from './charts';
import { stageDefinition } from '../stages/registry';
import {
  figuresText,
  modelTitle,
  selfCorrectionEntries,
  signedPct,
  TIE_RULE,
  type SelfCorrectionEntry,
  type CampaignReport,
  type LineageNode,
  type ModelReport,
  type StageReport,
} from './report';

export { esc };

const f1 = (x: number) => Math.round(x * 10) / 10;
export const pct = (x: number | null, digits = 0) => (x === null ? '–' : `${(100 * x).toFixed(digits)}%`);
const num = (x: number | null, digits = 1) => (x === null ? '–' : x.toFixed(digits));

export const sentenceCase = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** 1234 → 1.2k, 2_500_000 → 2.5M. */
export function compact(x: number): string {
  const a = Math.abs(x);
  if (a >= 1e9) return `${f1(x / 1e9)}B`;
  if (a >= 1e6) return `${f1(x / 1e6)}M`;
  if (a >= 1e4) return `${Math.round(x / 1e3)}k`;
  if (a >= 1e3) return `${f1(x / 1e3)}k`;
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}

export function usd(x: number): string {
  if (x === 0) return '$0';
  if (x < 0.01) return `$${x.toFixed(4)}`;
  if (x < 100) return `$${x.toFixed(2)}`;
  return `$${Math.round(x).toLocaleString('en-US')}`;
}

/** Grouped bars: dimensions on x, one bar per candidate, tie-adjusted win rate with its CI. */
function winRateChart(models: ModelReport[], dimensions: readonly string[], base: string): Promise<string> {
  const titles = models.map(modelTitle);
  const rows = models.flatMap((model) =>
    dimensions.map((dim) => {
      const d = model.dimensions.find((s) => s.dimension === dim);
      const v = d?.tieAdjustedWinRate ?? null;
      return {
        model: modelTitle(model),
        dimension: dim,
        value: v,
        lo: d?.ci?.lo ?? null,
        hi: d?.ci?.hi ?? null,
        // The value label sits above whichever is higher, the bar or its CI.
        top: Math.max(v ?? 0, d?.ci?.hi ?? 0),
        label: pct(v),
        description:
          `${modelTitle(model)} — ${dim}: tie-adjusted win rate ${pct(v, 1)}` +
          (d?.ci ? `, 95% CI ${pct(d.ci.lo, 1)}–${pct(d.ci.hi, 1)}` : '') +
          (d ? ` (W/T/L ${d.wins}/${d.ties}/${d.losses}, n=${d.n})` : ''),
      };
    }),
  );
  const x = {
    field: 'dimension',
    type: 'nominal' as const,
    sort: [...dimensions],
    title: null,
    axis: { labelAngle: 0 },
  };
  const xOffset = { field: 'model', type: 'nominal' as const, sort: titles, scale: { paddingInner: 0.08 } };
  const y = {
    type: 'quantitative' as const,
    scale: { domain: [0, 1] },
    axis: { format: '%', tickCount: 5, title: 'tie-adjusted win rate' },
  };
  const description = `Tie-adjusted win rate against ${base}, per dimension, with 95% CI`;
  const spec: TopLevelSpec = {
    description,
    width: 860,
    height: 300,
    data: { values: rows },
    layer: [
      {
        name: 'bar',
        mark: { type: 'bar', cornerRadiusEnd: 3 },
        encoding: {
          x,
          xOffset,
          y: { ...y, field: 'value', stack: null },
          color: {
            field: 'model',
            type: 'nominal',
            sort: titles,
            scale: { domain: titles, range: models.map((m, i) => colorOf(m.stage, i)) },
            legend: { title: null },
          },
          description: { field: 'description' },
        },
      },
      {
        name: 'ci',
        transform: [{ filter: 'datum.lo != null' }],
        mark: { type: 'rule', color: INK, strokeWidth: 1.5 },
        encoding: { x, xOffset, y: { ...y, field: 'lo' }, y2: { field: 'hi' } },
      },
      {
        name: 'cap',
        transform: [{ filter: 'datum.lo != null' }, { fold: ['lo', 'hi'], as: ['end', 'at'] }],
        mark: { type: 'tick', color: INK, thickness: 1.5, size: 10, orient: 'horizontal' },
        encoding: { x, xOffset, y: { ...y, field: 'at' } },
      },
      {
        name: 'value',
        transform: [{ filter: 'datum.value != null' }],
        mark: { type: 'text', dy: -8, fontWeight: 600 },
        encoding: { x, xOffset, y: { ...y, field: 'top' }, text: { field: 'label' } },
      },
      {
        name: 'parity',
        data: { values: [{ y: 0.5 }] },
        mark: { type: 'rule', color: MUTED, strokeDash: [5, 4] },
        encoding: { y: { ...y, field: 'y' } },
      },
      {
        // Above the plot's top-right corner, beside the legend, where no bar can cover it.
        data: { values: [{ text: `- - -  50%: parity with ${base}` }] },
        mark: { type: 'text', align: 'right', baseline: 'bottom', dy: -10, color: MUTED, fontSize: 12 },
        encoding: { x: { value: 'width' }, y: { value: 0 }, text: { field: 'text' } },
      },
    ],
  };
  return renderChart(spec, { chart: 'winrate', title: description });
}

/** Stacked win / tie / loss shares per candidate and dimension, one row of bars per candidate. */
function outcomesChart(models: ModelReport[]): Promise<string> {
  const titles = models.map(modelTitle);
  type Outcome = keyof typeof OUTCOME_COLORS;
  const names: Record<Outcome, string> = {
    win: 'win (both orders agree)',
    tie: 'tie (tie, disagreement or unparseable)',
    loss: 'loss',
  };
  const rows = models.flatMap((m) =>
    m.dimensions.flatMap((d) => {
      // Shares stacked here rather than by Vega, so the counts can be centred in their segments.
      let start = 0;
      return (['win', 'tie', 'loss'] as const).map((k) => {
        const count = k === 'win' ? d.wins : k === 'tie' ? d.ties : d.losses;
        const share = d.n === 0 ? 0 : count / d.n;
        const row = {
          model: modelTitle(m),
          dimension: d.dimension,
          outcome: names[k],
          count,
          n: d.n,
          x0: start,
          x1: start + share,
          mid: start + share / 2,
          share,
          description: `${modelTitle(m)} — ${d.dimension}: ${count} ${k}${count === 1 ? '' : k === 'loss' ? 'es' : 's'} of ${d.n}`,
        };
        start += share;
        return row;
      });
    }),
  );
  const dims = [...new Set(models.flatMap((m) => m.dimensions.map((d) => d.dimension)))];
  const y = { field: 'dimension', type: 'nominal' as const, sort: dims, title: null };
  const description = 'Wins, ties and losses per dimension, as shares of the complete pairs';
  const spec: TopLevelSpec = {
    description,
    data: { values: rows },
    facet: {
      row: {
        field: 'model',
        type: 'nominal',
        sort: titles,
        title: null,
        header: { labelAngle: 0, labelOrient: 'top', labelAnchor: 'start', labelAlign: 'left' },
      },
    },
    spec: {
      width: 700,
      height: { step: 22 },
      layer: [
        {
          name: 'outcome',
          transform: [{ filter: 'datum.count > 0' }],
          mark: { type: 'bar' },
          encoding: {
            y,
            x: {
              field: 'x0',
              type: 'quantitative',
              scale: { domain: [0, 1] },
              axis: { format: '%', title: null },
            },
            x2: { field: 'x1' },
            color: {
              field: 'outcome',
              type: 'nominal',
              scale: { domain: Object.values(names), range: Object.values(OUTCOME_COLORS) },
              legend: { title: null },
            },
            description: { field: 'description' },
          },
        },
        {
          transform: [{ filter: 'datum.share >= 0.07' }],
          mark: { type: 'text', fontWeight: 600 },
          encoding: {
            y,
            x: { field: 'mid', type: 'quantitative' },
            text: { field: 'count' },
            color: {
              condition: { test: `datum.outcome === '${names.tie}'`, value: '#3c4650' },
              value: '#fff',
            },
          },
        },
        {
          transform: [{ filter: `datum.n == 0 && datum.outcome === '${names.win}'` }],
          mark: { type: 'text', align: 'left', dx: 4, color: MUTED },
          encoding: { y, x: { datum: 0, type: 'quantitative' }, text: { value: 'no complete pairs yet' } },
        },
      ],
    },
  };
  return renderChart(spec, { chart: 'outcomes', title: 'Wins, ties and losses per dimension', description });
}

/** The judge's mean 1–10 overall score of each candidate and of the base on the same pairs. */
function scoresChart(models: ModelReport[], base: string): Promise<string> {
  const titles = models.map(modelTitle);
  const baseKey = `${base} (base) on the same pairs`;
  const rows = models.flatMap((m) =>
    (
      [
        [m.modelLabel, m.overallScore.model, 'model'],
        [baseKey, m.overallScore.base, 'base'],
      ] as const
    ).map(([who, v, side]) => ({
      model: modelTitle(m),
      who,
      side,
      score: v,
      label: num(v),
      description: `${side === 'base' ? base : m.modelLabel}: mean overall score ${num(v)}`,
    })),
  );
  const y = { field: 'model', type: 'nominal' as const, sort: titles, title: null };
  const yOffset = { field: 'side', type: 'nominal' as const, sort: ['model', 'base'] };
  const x = {
    field: 'score',
    type: 'quantitative' as const,
    scale: { domain: [0, 10] },
    axis: { title: 'mean overall score (1–10)' },
  };
  const description = 'Mean overall score (1–10) of each model and of the base';
  const spec: TopLevelSpec = {
    description,
    width: 640,
    height: Math.max(60, models.length * 52),
    data: { values: rows },
    transform: [{ filter: 'datum.score != null' }],
    layer: [
      {
        name: 'score',
        mark: { type: 'bar', cornerRadiusEnd: 3 },
        encoding: {
          y,
          yOffset,
          x,
          color: {
            field: 'who',
            type: 'nominal',
            scale: {
              domain: [...models.map((m) => m.modelLabel), baseKey],
              range: [...models.map((m, i) => colorOf(m.stage, i)), BASE_COLOR],
            },
            legend: { title: null },
          },
          description: { field: 'description' },
        },
      },
      {
        mark: { type: 'text', align: 'left', dx: 5, fontWeight: 600 },
        encoding: { y, yOffset, x, text: { field: 'label' } },
      },
    ],
  };
  return renderChart(spec, { chart: 'scores', title: description });
}

/** Small multiples: one bar chart per stage metric, stages in their colours. */
function stageCharts(stages: StageReport[]): Promise<string[]> {
  const metrics: Array<{
    key: string;
    label: string;
    value: (s: StageReport) => number;
    fmt: (x: number) => string;
    /** d3 format of the axis labels. */
    axis: string;
  }> = [
    { key: 'records', label: 'Records', value: (s) => s.records, fmt: compact, axis: '~s' },
    { key: 'dataset', label: 'Dataset rows', value: (s) => s.datasetRows ?? 0, fmt: compact, axis: '~s' },
    {
      key: 'tokens',
      label: 'Tokens (in + out)',
      value: (s) => s.promptTokens + s.completionTokens,
      fmt: compact,
      axis: '~s',
    },
    { key: 'cost', label: 'Estimated cost', value: (s) => s.costUsd, fmt: usd, axis: '$.3~g' },
  ];
  const keys = stages.map((s) => `${s.stage} #${s.iteration}`);
  const stageNames = Object.keys(STAGE_COLORS);
  return Promise.all(
    metrics.map((metric) => {
      const tokens = metric.key === 'tokens';
      const bars = stages.flatMap((s, i) => {
        const key = keys[i] as string;
        const parts: Array<[string, number]> = tokens
          ? [
              ['prompt', s.promptTokens],
              ['completion', s.completionTokens],
            ]
          : [['total', metric.value(s)]];
        return parts.map(([part, value]) => ({
          key,
          stage: s.stage,
          part,
          // Completion tokens lighter, stacked on the prompt tokens.
          alpha: part === 'completion' ? 0.5 : 1,
          value,
          description: `${key}: ${tokens ? `${value} ${part} tokens` : metric.fmt(value)}`,
        }));
      });
      const totals = stages.map((s, i) => ({
        key: keys[i] as string,
        value: metric.value(s),
        label: metric.key === 'dataset' && s.datasetRows === null ? '–' : metric.fmt(metric.value(s)),
      }));
      const x = {
        field: 'key',
        type: 'nominal' as const,
        sort: keys,
        title: null,
        // "distill #1" on two lines, so six stages fit under a half-width chart.
        axis: { labelAngle: 0, labelExpr: "split(datum.label, ' ')", labelColor: INK },
      };
      const y = {
        field: 'value',
        type: 'quantitative' as const,
        title: null,
        axis: { format: metric.axis, tickCount: 4 },
      };
      const spec: TopLevelSpec = {
        description: `${metric.label} per stage`,
        title: tokens ? { text: metric.label, subtitle: 'solid: prompt · light: completion' } : metric.label,
        width: 400,
        height: 170,
        layer: [
          {
            name: 'stagebar',
            data: { values: bars },
            mark: { type: 'bar', cornerRadiusEnd: 0 },
            encoding: {
              x,
              y: { ...y, stack: 'zero' },
              color: {
                field: 'stage',
                type: 'nominal',
                scale: { domain: stageNames, range: stageNames.map((n) => STAGE_COLORS[n] as string) },
                legend: null,
              },
              opacity: { field: 'alpha', type: 'quantitative', scale: null },
              order: { field: 'part', sort: 'descending' },
              description: { field: 'description' },
            },
          },
          {
            data: { values: totals },
            mark: { type: 'text', dy: -7, fontWeight: 600 },
            encoding: { x, y, text: { field: 'label' } },
          },
        ],
      };
      return renderChart(spec, {
        chart: 'stages',
        title: `${metric.label} per stage`,
        attrs: { 'data-metric': metric.key },
      });
    }),
  );
}

/** The lineage tree, left to right: each model one column after its parent. */
function lineageChart(nodes: LineageNode[]): Promise<string> {
  const depth = new Map<string, number>();
  const depthOf = (n: LineageNode, seen = new Set<string>()): number => {
    const known = depth.get(n.label);
    if (known !== undefined) return known;
    const parent = n.parent ? nodes.find((p) => p.label === n.parent) : undefined;
    const d = parent && !seen.has(parent.label) ? depthOf(parent, new Set([...seen, n.label])) + 1 : 0;
    depth.set(n.label, d);
    return d;
  };
  const rowsAt = new Map<number, number>();
  const pos = new Map<string, { col: number; row: number }>();
  for (const n of nodes) {
    const col = depthOf(n);
    const row = rowsAt.get(col) ?? 0;
    rowsAt.set(col, row + 1);
    pos.set(n.label, { col, row });
  }
  const cols = Math.max(1, ...[...pos.values()].map((p) => p.col + 1));
  const rows = Math.max(1, ...[...rowsAt.values()]);
  const colW = 150;
  const points = nodes.map((n, i) => {
    const p = pos.get(n.label) ?? { col: 0, row: 0 };
    const isBase = !n.parent;
    const subtitle = isBase ? 'base model' : `${n.stage} #${n.iteration}`;
    return {
      label: n.label,
      col: p.col,
      row: p.row,
      color: isBase ? BASE_COLOR : colorOf(n.stage, i),
      subtitle,
      detail: isBase || n.datasetRows === null ? n.servedModel : `dataset ${compact(n.datasetRows)} rows`,
      description: `${n.label}: ${subtitle}; served as ${n.servedModel}${n.checkpointUri ? `; checkpoint ${n.checkpointUri}` : ''}`,
    };
  });
  const edges = nodes.flatMap((n) => {
    const a = n.parent ? pos.get(n.parent) : undefined;
    const b = pos.get(n.label);
    return a && b
      ? [{ edge: `${n.parent}->${n.label}`, col: a.col, row: a.row, col2: b.col, row2: b.row }]
      : [];
  });
  const x = { type: 'quantitative' as const, scale: { domain: [-0.5, cols - 0.5] }, axis: null };
  const y = {
    type: 'quantitative' as const,
    scale: { domain: [-0.45, rows - 0.4], reverse: true },
    axis: null,
  };
  const at = { x: { ...x, field: 'col' }, y: { ...y, field: 'row' } };
  const description = `Model lineage: ${nodes.map((n) => (n.parent ? `${n.parent} → ${n.label}` : n.label)).join(', ')}`;
  const spec: TopLevelSpec = {
    description,
    width: Math.max(880, cols * colW),
    height: rows * 96,
    layer: [
      {
        name: 'edge',
        data: { values: edges },
        mark: { type: 'rule', color: MUTED, strokeWidth: 1.5 },
        encoding: { ...at, x2: { field: 'col2' }, y2: { field: 'row2' }, description: { field: 'edge' } },
      },
      {
        name: 'node',
        data: { values: points },
        mark: { type: 'point', shape: 'circle', filled: true, size: 1500, opacity: 1 },
        encoding: {
          ...at,
          color: { field: 'color', type: 'nominal', scale: null },
          description: { field: 'description' },
        },
      },
      {
        name: 'label',
        data: { values: points },
        mark: { type: 'text', color: '#fff', fontSize: 14, fontWeight: 700 },
        encoding: { ...at, text: { field: 'label' } },
      },
      {
        data: { values: points },
        mark: { type: 'text', dy: 32, fontSize: 12.5 },
        encoding: { ...at, text: { field: 'subtitle' } },
      },
      {
        data: { values: points },
        mark: { type: 'text', dy: 47, fontSize: 11.5, color: MUTED, limit: colW - 10 },
        encoding: { ...at, text: { field: 'detail' } },
      },
    ],
  };
  return renderChart(spec, { chart: 'lineage', title: 'Model lineage', description });
}

function dimensionRow(d: DimensionStats): string {
  const cells = [
    esc(d.dimension),
    `<span class="w">${d.wins}</span> / <span class="t">${d.ties}</span> / <span class="l">${d.losses}</span>`,
    String(d.n),
    pct(d.winRate, 1),
    `<strong>${pct(d.tieAdjustedWinRate, 1)}</strong>`,
    d.ci ? `${pct(d.ci.lo, 1)} – ${pct(d.ci.hi, 1)}` : '–',
  ];
  return `<tr>${cells.map((c, i) => `<td${i === 0 ? '' : ' class="num"'}>${c}</td>`).join('')}</tr>`;
}

function modelTable(m: ModelReport, base: string, color: string): string {
  const notes = [
    `${m.questions} question${m.questions === 1 ? '' : 's'} judged in both orders`,
    m.pendingQuestions > 0 ? `${m.pendingQuestions} pending` : '',
    m.unparseableJudgments > 0 ? `${m.unparseableJudgments} unparseable judgment(s), counted as ties` : '',
  ].filter(Boolean);
  return `<div class="model-card" data-model="${esc(m.modelLabel)}">
  <h3><span class="swatch" style="background:${color}"></span>${esc(modelTitle(m))} <span class="vs">vs ${esc(base)}</span></h3>
  <p class="facts">served as <code>${esc(m.servedModel ?? '?')}</code> · overall score <strong>${num(m.overallScore.model)}</strong> vs ${num(m.overallScore.base)} (1–10) · mean length <strong>${num(m.meanLength.model, 0)}</strong> vs ${num(m.meanLength.base, 0)} words · ${esc(notes.join(' · '))}</p>
  <table><thead><tr><th>dimension</th><th class="num">W / T / L</th><th class="num">n</th><th class="num">win rate</th><th class="num">tie-adjusted</th><th class="num">95% CI</th></tr></thead>
  <tbody>${m.dimensions.map(dimensionRow).join('')}</tbody></table>
</div>`;
}

function stageTable(r: CampaignReport): string {
  const compared = r.evaluation ? ` vs ${r.evaluation.models.map((m) => m.modelLabel).join(', ')}` : '';
  const model = (s: StageReport) =>
    s.modelOut
      ? `${s.modelIn} → ${s.modelOut}`
      : stageDefinition(s.stage).questions === 'eval'
        ? `${s.modelIn}${compared}`
        : s.modelIn;
  const row = (s: StageReport) =>
    `<tr><td>${esc(`${s.stage} #${s.iteration}`)}</td><td>${esc(s.status)}</td><td>${esc(model(s))}</td><td class="num">${s.records.toLocaleString('en-US')}</td><td class="num">${s.datasetRows === null ? '–' : s.datasetRows.toLocaleString('en-US')}</td><td class="num">${s.calls.toLocaleString('en-US')}</td><td class="num">${s.promptTokens.toLocaleString('en-US')}</td><td class="num">${s.cachedTokens.toLocaleString('en-US')}</td><td class="num">${s.completionTokens.toLocaleString('en-US')}</td><td class="num">${usd(s.costUsd)}</td></tr>`;
  const t = r.totals;
  return `<table class="stages"><thead><tr><th>stage</th><th>status</th><th>model</th><th class="num">records</th><th class="num">dataset rows</th><th class="num">LLM calls</th><th class="num">tokens in</th><th class="num">cached</th><th class="num">tokens out</th><th class="num">cost</th></tr></thead>
<tbody>${r.stages.map(row).join('')}</tbody>
<tfoot><tr><td>total</td><td></td><td></td><td></td><td></td><td class="num">${t.calls.toLocaleString('en-US')}</td><td class="num">${t.promptTokens.toLocaleString('en-US')}</td><td class="num">${t.cachedTokens.toLocaleString('en-US')}</td><td class="num">${t.completionTokens.toLocaleString('en-US')}</td><td class="num">${usd(t.costUsd)}</td></tr></tfoot></table>`;
}

/** Each stage's own figures (its definition's metrics), one line per stage iteration. */
function stageFiguresList(r: CampaignReport): string {
  const figured = r.stages.filter((s) => Object.keys(s.figures).length > 0);
  if (figured.length === 0) return '';
  const item = (s: StageReport) =>
    `<li data-stage="${esc(`${s.stage}-${s.iteration}`)}"><b>${esc(`${s.stage} #${s.iteration}`)}</b>: ${esc(figuresText(s.figures))}</li>`;
  return `<ul class="stage-figures">${figured.map(item).join('')}</ul>`;
}

/** SCoRe's metrics, one row per model or stage iteration, each with its 95% CI. */
function selfCorrectionTable(entries: readonly SelfCorrectionEntry[], heading = 'model'): string {
  const withCi = (x: number, ci: { lo: number; hi: number }, signed = false) => {
    const f = signed ? signedPct : (v: number) => pct(v, 1);
    return `<strong>${f(x)}</strong><span class="ci">${f(ci.lo)} – ${f(ci.hi)}</span>`;
  };
  const row = ({ title, stats: s }: SelfCorrectionEntry) =>
    `<tr data-self-correction="${esc(title)}"><td>${esc(title)}</td><td class="num">${s.n}</td><td class="num">${withCi(s.accT1, s.ci.accT1)}</td><td class="num">${withCi(s.accT2, s.ci.accT2)}</td><td class="num">${withCi(s.delta, s.ci.delta, true)}</td><td class="num">${withCi(s.deltaIC, s.ci.deltaIC)}</td><td class="num">${withCi(s.deltaCI, s.ci.deltaCI)}</td></tr>`;
  return `<table class="self-correction"><thead><tr><th>${esc(heading)}</th><th class="num">n</th><th class="num">Acc@t1</th><th class="num">Acc@t2</th><th class="num">Δ(t1,t2)</th><th class="num">Δi→c</th><th class="num">Δc→i</th></tr></thead>
<tbody>${entries.map(row).join('')}</tbody></table>`;
}

/** The self-correction section: the evaluation's probe per model, and stage 2's rounds. */
function selfCorrectionSection(r: CampaignReport): string {
  const ev = r.evaluation;
  const { probed, assessed } = selfCorrectionEntries(r);
  if (probed.length === 0 && assessed.length === 0) return '';
  return `<section id="self-correction">
<h2>Self-correction</h2>
${
  probed.length > 0 && ev
    ? `<p class="method">${esc(ev.selfCorrectionMethod)} Under each value, its 95% CI.</p>
${selfCorrectionTable(probed)}`
    : ''
}
${
  assessed.length > 0
    ? `<h3>Stage 2 rounds</h3>
<p class="method">Round 1, then round 2 after the strong model's feedback. A correct answer is not asked again, so Δc→i is 0 by construction.</p>
${selfCorrectionTable(assessed, 'iteration (model)')}`
    : ''
}
</section>`;
}

/** Each fine-tune: where it ran, its job id, how long it took and its final training loss. */
function fineTuneTable(r: CampaignReport): string {
  if (r.fineTunes.length === 0) return '<p class="empty">No fine-tunes yet.</p>';
  const row = (f: CampaignReport['fineTunes'][number]) =>
    `<tr data-finetune><td>${esc(`${f.stage} #${f.iteration}`)}</td><td>${esc(f.backend)}</td><td><code>${esc(f.externalId ?? '–')}</code></td><td>${esc(f.state)}${f.detail ? ` <span class="vs">(${esc(f.detail)})</span>` : ''}</td><td class="num">${f.durationSec === null ? '–' : `${f.durationSec.toLocaleString('en-US')} s`}</td><td class="num">${f.finalLoss === null ? '–' : f.finalLoss.toFixed(4)}</td></tr>`;
  return `<table class="stages"><thead><tr><th>stage</th><th>backend</th><th>job</th><th>state</th><th class="num">duration</th><th class="num">final loss</th></tr></thead>
<tbody>${r.fineTunes.map(row).join('')}</tbody></table>`;
}

/** The page style, shared with the line report (line-report-html.ts). */
export const PAGE_CSS = `
*{box-sizing:border-box}
body{margin:0;background:#f4f6f8;color:${INK};font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1040px;margin:0 auto;padding:28px 24px 48px}
header h1{margin:0 0 4px;font-size:26px;letter-spacing:-.01em}
header .sub{color:${MUTED};margin:0}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef1f4;padding:1px 5px;border-radius:4px}
.sim-banner{margin:18px 0 6px;padding:14px 18px;border:2px solid #d97706;background:#fff7e6;border-radius:10px;color:#7a3f00;font-size:15px}
.sim-banner strong{display:block;font-size:18px;letter-spacing:.04em;color:#b45309;margin-bottom:2px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:12px;margin:18px 0 8px}
.card{background:#fff;border-radius:10px;padding:12px 14px;box-shadow:0 1px 2px rgba(16,24,40,.06),0 0 0 1px #e6e9ed}
.card .k{color:${MUTED};font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.card .v{font-size:20px;font-weight:650;margin-top:2px;overflow-wrap:anywhere}
section{background:#fff;border-radius:12px;padding:20px 22px;margin-top:18px;box-shadow:0 1px 2px rgba(16,24,40,.06),0 0 0 1px #e6e9ed}
section h2{margin:0 0 6px;font-size:19px}
section h3{margin:18px 0 4px;font-size:16px;display:flex;align-items:center;gap:8px}
.method{color:${MUTED};margin:0 0 10px;font-size:14px}
figure.chart{margin:10px 0;overflow-x:auto}
figure.chart svg{display:block;max-width:100%;height:auto}
.small-multiples{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:4px 18px}
.small-multiples figure.chart svg{width:100%}
table{border-collapse:collapse;width:100%;font-size:14px;margin-top:6px}
th,td{padding:6px 10px;border-bottom:1px solid #edf0f2;text-align:left}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:${MUTED};font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tfoot td{font-weight:650;border-bottom:none}
.facts{margin:0 0 4px;color:#3c4650;font-size:13.5px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:3px}
.vs{color:${MUTED};font-weight:400}
.w{color:${OUTCOME_COLORS.win};font-weight:650}.t{color:#6b6f73}.l{color:${OUTCOME_COLORS.loss};font-weight:650}
.empty{color:${MUTED};font-style:italic}
table.self-correction th{text-transform:none}
.ci{display:block;color:${MUTED};font-size:12px;white-space:nowrap}
footer{color:${MUTED};font-size:12.5px;margin-top:22px}
`;

/** Endpoints whose requests were shaped away from the method's (report.ts shapingNotes); nothing if none. */
function shapingList(notes: string[]): string {
  if (notes.length === 0) return '';
  return `<ul class="method" id="request-shaping">${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`;
}

/** The simulation banner, first on the page (also used by the line report). */
export const simulationBanner = (notice: string | null): string =>
  notice
    ? `<div class="sim-banner" role="alert" data-simulation><strong>SIMULATION</strong>${esc(sentenceCase(notice.replace(/^SIMULATION:\s*/, '')))}</div>`
    : '';

/** The whole report page; async because Vega renders the charts asynchronously. */
export async function renderReportHtml(r: CampaignReport): Promise<string> {
  const ev = r.evaluation;
  const c = r.campaign;
  const tokens = r.totals.promptTokens + r.totals.completionTokens;
  const cards: Array<[string, string]> = [
    ['state', c.state],
    ['estimated cost', usd(r.totals.costUsd)],
    ['tokens', compact(tokens)],
    ['LLM calls', compact(r.totals.calls)],
    ['models', String(r.lineage.length)],
    ['held-out questions', ev ? String(ev.evalQuestions) : '–'],
  ];
  const banner = simulationBanner(r.simulationNotice);
  // Rendered together: Vega is loaded once and the charts do not wait on each other.
  const [evalCharts, stageFigures, lineage] = await Promise.all([
    ev
      ? Promise.all([
          winRateChart(ev.models, ev.dimensions, ev.baseModel),
          outcomesChart(ev.models),
          scoresChart(ev.models, ev.baseModel),
        ])
      : null,
    stageCharts(r.stages),
    lineageChart(r.lineage),
  ]);
  const evaluation =
    ev && evalCharts
      ? `<p class="method">${esc(ev.method)} ${ev.resamples.toLocaleString('en-US')} resamples, seed ${ev.seed}. Judge: ${ev.judgeModels.map((j) => `<code>${esc(j)}</code>`).join(', ')}, prompt ${ev.promptVersions.map((p) => `<code>${esc(p)}</code>`).join(', ')}. Mean lengths in words.</p>
<h3>Tie-adjusted win rate against ${esc(ev.baseModel)}, with 95% CI</h3>
${evalCharts[0]}
<h3>Wins, ties and losses</h3>
${evalCharts[1]}
<h3>Overall score (judge, 1–10)</h3>
${evalCharts[2]}
${ev.models.map((m, i) => modelTable(m, ev.baseModel, colorOf(m.stage, i))).join('\n')}`
      : `<p class="empty">No judgments yet: the evaluation has not run (or is disabled) for this campaign.</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`${r.simulated ? '[SIMULATION] ' : ''}meteor report — ${c.name} (${c.id})`)}</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<main>
<header>
<h1>${esc(c.name)} <span class="vs">· meteor campaign report</span></h1>
<p class="sub"><code>${esc(c.id)}</code> · ${esc(c.domain)} · created ${esc(c.createdAt.slice(0, 16).replace('T', ' '))} UTC · generated ${esc(r.generatedAt.slice(0, 16).replace('T', ' '))} UTC</p>
</header>
${banner}
${c.error ? `<p class="sim-banner"><strong>ERROR</strong>${esc(c.error)}</p>` : ''}
<div class="cards">${cards.map(([k, v]) => `<div class="card"><div class="k">${esc(k)}</div><div class="v">${esc(v)}</div></div>`).join('')}</div>
<section id="evaluation">
<h2>Evaluation${ev ? ` against the base model ${esc(ev.baseModel)}` : ''}</h2>
${evaluation}
</section>
${selfCorrectionSection(r)}
<section id="stages">
<h2>Stages</h2>
<p class="method">Records, training-set rows, tokens and cost per stage and iteration. ${esc(r.costMethod)}</p>
${shapingList(r.shapingNotes)}
<div class="small-multiples">${stageFigures.join('')}</div>
${stageTable(r)}
${stageFiguresList(r)}
</section>
<section id="lineage">
<h2>Model lineage</h2>
<p class="method">Each model is fine-tuned from its parent on the dataset of the stage that made it.</p>
${lineage}
</section>
<section id="finetunes">
<h2>Fine-tunes</h2>
<p class="method">Each fine-tune's backend, job id on that backend, duration from submit to end, and final training loss.</p>
${fineTuneTable(r)}
</section>
<footer>${r.simulationNotice ? `${esc(r.simulationNotice)} ` : ''}${esc(TIE_RULE)} Generated by meteorctl campaign report.</footer>
</main>
</body>
</html>
`;
}
