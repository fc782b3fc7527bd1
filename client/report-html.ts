/**
 * The campaign report as ONE self-contained HTML file: inline CSS and inline SVG charts drawn
 * here — no script, no external resource — so it can be mailed, archived or opened offline.
 *
 * Charts carry stable hooks for tests and tools: every chart is an `<svg data-chart="…">`
 * (`winrate`, `outcomes`, `scores`, `stages`, `lineage`); win-rate bars are `[data-bar]`, their
 * confidence intervals `[data-ci]`; lineage nodes `[data-node]`.
 */
import type { DimensionStats } from '../core/evaluation/stats';
import {
  modelTitle,
  TIE_RULE,
  type CampaignReport,
  type LineageNode,
  type ModelReport,
  type StageReport,
} from './report';

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#e15759', '#9c755f'];
/** One color per stage, shared by the stage charts, the lineage and each stage's final model. */
const STAGE_COLORS: Record<string, string> = {
  distill: '#4e79a7',
  assess: '#f28e2b',
  contrast: '#59a14f',
  evaluate: '#8a96a3',
};
const BASE_COLOR = '#8a96a3';
const colorOf = (stage: string | null, index: number): string =>
  (stage ? STAGE_COLORS[stage] : undefined) ?? (PALETTE[index % PALETTE.length] as string);
const OUTCOME_COLORS = { win: '#3f9a5a', tie: '#c9c3bd', loss: '#d8574f' } as const;
const INK = '#1f2933';
const MUTED = '#66727f';
const GRID = '#e3e7eb';

/** Escapes text for HTML content and attribute values. */
export function esc(value: unknown): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const f1 = (x: number) => Math.round(x * 10) / 10;
const pct = (x: number | null, digits = 0) => (x === null ? '–' : `${(100 * x).toFixed(digits)}%`);
const num = (x: number | null, digits = 1) => (x === null ? '–' : x.toFixed(digits));

const sentenceCase = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, Math.max(1, max - 1))}…` : s);

/** 1234 → 1.2k, 2_500_000 → 2.5M. */
export function compact(x: number): string {
  const a = Math.abs(x);
  if (a >= 1e9) return `${f1(x / 1e9)}B`;
  if (a >= 1e6) return `${f1(x / 1e6)}M`;
  if (a >= 1e4) return `${Math.round(x / 1e3)}k`;
  if (a >= 1e3) return `${f1(x / 1e3)}k`;
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}

function usd(x: number): string {
  if (x === 0) return '$0';
  if (x < 0.01) return `$${x.toFixed(4)}`;
  if (x < 100) return `$${x.toFixed(2)}`;
  return `$${Math.round(x).toLocaleString('en-US')}`;
}

/** A "nice" axis maximum at or above x. */
function niceMax(x: number): number {
  if (x <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

type Attrs = Record<string, string | number | undefined>;
const attrs = (a: Attrs) =>
  Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${esc(typeof v === 'number' ? f1(v) : v)}"`)
    .join('');
const el = (tag: string, a: Attrs, body = '') => `<${tag}${attrs(a)}>${body}</${tag}>`;
const text = (x: number, y: number, body: string, a: Attrs = {}) => el('text', { x, y, ...a }, esc(body));
const title = (t: string) => `<title>${esc(t)}</title>`;

function svg(chart: string, width: number, height: number, label: string, body: string, extra: Attrs = {}) {
  return el(
    'svg',
    {
      'data-chart': chart,
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: 'img',
      'aria-label': label,
      xmlns: 'http://www.w3.org/2000/svg',
      ...extra,
    },
    title(label) + body,
  );
}

function legend(items: Array<{ color: string; label: string }>, x: number, y: number): string {
  let cx = x;
  return items
    .map((it) => {
      const g =
        el('rect', { x: cx, y: y - 9, width: 12, height: 12, rx: 2, fill: it.color }) +
        text(cx + 17, y + 1, it.label, { class: 'legend' });
      cx += 30 + it.label.length * 6.6;
      return g;
    })
    .join('');
}

/** Grouped bars: dimensions on x, one bar per candidate, tie-adjusted win rate with its CI. */
function winRateChart(models: ModelReport[], dimensions: readonly string[], base: string): string {
  const W = 960;
  const H = 380;
  const m = { top: 48, right: 20, bottom: 56, left: 56 };
  const iw = W - m.left - m.right;
  const ih = H - m.top - m.bottom;
  const y = (v: number) => m.top + ih * (1 - v);
  const gw = iw / dimensions.length;
  const inner = gw * 0.78;
  const bw = Math.min(56, inner / Math.max(1, models.length));
  const parts: string[] = [];
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(el('line', { x1: m.left, x2: W - m.right, y1: y(t), y2: y(t), stroke: GRID }));
    parts.push(text(m.left - 8, y(t) + 4, pct(t), { 'text-anchor': 'end', class: 'tick' }));
  }
  parts.push(
    el('line', {
      x1: m.left,
      x2: W - m.right,
      y1: y(0.5),
      y2: y(0.5),
      stroke: MUTED,
      'stroke-dasharray': '5 4',
      'data-parity': '',
    }),
    el('line', {
      x1: W - m.right - 150,
      x2: W - m.right - 122,
      y1: 18,
      y2: 18,
      stroke: MUTED,
      'stroke-dasharray': '5 4',
    }),
    text(W - m.right - 116, 22, `50%: parity with ${base}`, { class: 'legend' }),
  );
  dimensions.forEach((dim, di) => {
    const gx = m.left + di * gw + (gw - bw * models.length) / 2;
    models.forEach((model, mi) => {
      const d = model.dimensions.find((s) => s.dimension === dim);
      const v = d?.tieAdjustedWinRate ?? null;
      const x = gx + mi * bw;
      const color = colorOf(model.stage, mi);
      const label =
        `${modelTitle(model)} — ${dim}: tie-adjusted win rate ${pct(v, 1)}` +
        (d?.ci ? `, 95% CI ${pct(d.ci.lo, 1)}–${pct(d.ci.hi, 1)}` : '') +
        (d ? ` (W/T/L ${d.wins}/${d.ties}/${d.losses}, n=${d.n})` : '');
      const h = v === null ? 0 : ih * v;
      parts.push(
        el(
          'rect',
          {
            x: x + 2,
            y: y(v ?? 0),
            width: bw - 4,
            height: Math.max(h, v === null ? 0 : 1),
            rx: 3,
            fill: color,
            'data-bar': '',
            'data-model': model.modelLabel,
            'data-dimension': dim,
            'data-value': v === null ? '' : v.toFixed(4),
          },
          title(label),
        ),
      );
      if (d?.ci) {
        const cx = x + bw / 2;
        const cap = Math.min(8, bw / 4);
        parts.push(
          el(
            'g',
            {
              'data-ci': '',
              'data-model': model.modelLabel,
              'data-dimension': dim,
              'data-lo': d.ci.lo.toFixed(4),
              'data-hi': d.ci.hi.toFixed(4),
              stroke: INK,
              'stroke-width': 1.5,
            },
            title(`95% CI ${pct(d.ci.lo, 1)}–${pct(d.ci.hi, 1)}`) +
              el('line', { x1: cx, x2: cx, y1: y(d.ci.lo), y2: y(d.ci.hi) }) +
              el('line', { x1: cx - cap, x2: cx + cap, y1: y(d.ci.lo), y2: y(d.ci.lo) }) +
              el('line', { x1: cx - cap, x2: cx + cap, y1: y(d.ci.hi), y2: y(d.ci.hi) }),
          ),
        );
      }
      if (v !== null) {
        const top = d?.ci ? Math.min(y(v), y(d.ci.hi)) : y(v);
        parts.push(text(x + bw / 2, top - 6, pct(v), { 'text-anchor': 'middle', class: 'value' }));
      }
    });
    parts.push(
      text(m.left + di * gw + gw / 2, H - m.bottom + 22, dim, { 'text-anchor': 'middle', class: 'axis' }),
    );
  });
  parts.push(
    legend(
      models.map((mm, i) => ({ color: colorOf(mm.stage, i), label: modelTitle(mm) })),
      m.left,
      22,
    ),
  );
  return svg(
    'winrate',
    W,
    H,
    `Tie-adjusted win rate against ${base}, per dimension, with 95% CI`,
    parts.join(''),
  );
}

/** Stacked win / tie / loss shares per candidate and dimension. */
function outcomesChart(models: ModelReport[]): string {
  const W = 960;
  const rowH = 22;
  const gap = 18;
  const labelW = 250;
  const right = 20;
  const top = 34;
  const rows = models.reduce((n, mm) => n + mm.dimensions.length, 0);
  const H = top + rows * rowH + models.length * gap + 10;
  const iw = W - labelW - right;
  const parts: string[] = [
    legend(
      [
        { color: OUTCOME_COLORS.win, label: 'win (both orders agree)' },
        { color: OUTCOME_COLORS.tie, label: 'tie (tie, disagreement or unparseable)' },
        { color: OUTCOME_COLORS.loss, label: 'loss' },
      ],
      labelW,
      16,
    ),
  ];
  let yy = top;
  models.forEach((mm, mi) => {
    parts.push(
      el('rect', { x: 8, y: yy + 4, width: 10, height: 10, rx: 2, fill: colorOf(mm.stage, mi) }),
      text(24, yy + 13, modelTitle(mm), { class: 'axis strong' }),
    );
    yy += gap;
    for (const d of mm.dimensions) {
      parts.push(text(labelW - 10, yy + 15, d.dimension, { 'text-anchor': 'end', class: 'tick' }));
      let x = labelW;
      for (const k of ['win', 'tie', 'loss'] as const) {
        const count = k === 'win' ? d.wins : k === 'tie' ? d.ties : d.losses;
        const w = d.n === 0 ? 0 : (iw * count) / d.n;
        if (w > 0) {
          parts.push(
            el(
              'rect',
              {
                x,
                y: yy + 2,
                width: w,
                height: rowH - 4,
                fill: OUTCOME_COLORS[k],
                'data-outcome': k,
                'data-model': mm.modelLabel,
                'data-dimension': d.dimension,
              },
              title(
                `${modelTitle(mm)} — ${d.dimension}: ${count} ${k}${count === 1 ? '' : k === 'loss' ? 'es' : 's'} of ${d.n}`,
              ),
            ),
          );
          if (w > 28) {
            parts.push(
              text(x + w / 2, yy + 15, String(count), {
                'text-anchor': 'middle',
                class: k === 'tie' ? 'in-bar dark' : 'in-bar',
              }),
            );
          }
        }
        x += w;
      }
      if (d.n === 0) parts.push(text(labelW + 4, yy + 15, 'no complete pairs yet', { class: 'note' }));
      yy += rowH;
    }
  });
  return svg('outcomes', W, H, 'Wins, ties and losses per dimension', parts.join(''));
}

/** The judge's mean 1–10 overall score of each candidate and of the base on the same pairs. */
function scoresChart(models: ModelReport[], base: string): string {
  const W = 960;
  const barH = 16;
  const labelW = 250;
  const right = 60;
  const top = 30;
  const blockH = barH * 2 + 18;
  const H = top + models.length * blockH + 24;
  const iw = W - labelW - right;
  const x = (v: number) => labelW + (iw * v) / 10;
  const parts: string[] = [];
  for (let t = 0; t <= 10; t += 2) {
    parts.push(el('line', { x1: x(t), x2: x(t), y1: top - 6, y2: H - 22, stroke: GRID }));
    parts.push(text(x(t), H - 6, String(t), { 'text-anchor': 'middle', class: 'tick' }));
  }
  parts.push(legend([{ color: BASE_COLOR, label: `${base} (base) on the same pairs` }], labelW, 16));
  models.forEach((mm, i) => {
    const y0 = top + i * blockH;
    parts.push(text(labelW - 10, y0 + barH, modelTitle(mm), { 'text-anchor': 'end', class: 'axis' }));
    const rows: Array<[number | null, string, string]> = [
      [mm.overallScore.model, colorOf(mm.stage, i), mm.modelLabel],
      [mm.overallScore.base, BASE_COLOR, base],
    ];
    rows.forEach(([v, color, who], k) => {
      const y = y0 + k * (barH + 2);
      parts.push(
        el(
          'rect',
          {
            x: labelW,
            y,
            width: v === null ? 0 : x(v) - labelW,
            height: barH,
            rx: 3,
            fill: color,
            'data-score': who,
          },
          title(`${who}: mean overall score ${num(v)}`),
        ),
        text((v === null ? labelW : x(v)) + 6, y + barH - 3, num(v), { class: 'value' }),
      );
    });
  });
  return svg('scores', W, H, 'Mean overall score (1–10) of each model and of the base', parts.join(''));
}

/** Small multiples: one bar chart per stage metric. */
function stageCharts(stages: StageReport[]): string {
  const metrics: Array<{
    key: string;
    label: string;
    value: (s: StageReport) => number;
    fmt: (x: number) => string;
  }> = [
    { key: 'records', label: 'Records', value: (s) => s.records, fmt: compact },
    { key: 'dataset', label: 'Dataset rows', value: (s) => s.datasetRows ?? 0, fmt: compact },
    {
      key: 'tokens',
      label: 'Tokens (in + out)',
      value: (s) => s.promptTokens + s.completionTokens,
      fmt: compact,
    },
    { key: 'cost', label: 'Estimated cost', value: (s) => s.costUsd, fmt: usd },
  ];
  const W = 460;
  const H = 240;
  const m = { top: 48, right: 14, bottom: 44, left: 14 };
  const iw = W - m.left - m.right;
  const ih = H - m.top - m.bottom;
  return metrics
    .map((metric) => {
      const values = stages.map(metric.value);
      const max = niceMax(Math.max(0, ...values));
      const slot = iw / Math.max(1, stages.length);
      const bw = Math.min(64, slot * 0.62);
      const parts: string[] = [text(m.left, 18, metric.label, { class: 'chart-title' })];
      parts.push(
        el('line', { x1: m.left, x2: W - m.right, y1: m.top + ih, y2: m.top + ih, stroke: '#c5ccd3' }),
      );
      stages.forEach((s, i) => {
        const v = values[i] ?? 0;
        const h = (ih * v) / max;
        const cx = m.left + slot * i + slot / 2;
        const fill = colorOf(s.stage, i);
        if (metric.key === 'tokens' && v > 0) {
          const hIn = (ih * s.promptTokens) / max;
          parts.push(
            el(
              'rect',
              { x: cx - bw / 2, y: m.top + ih - hIn, width: bw, height: hIn, fill, 'data-stage-bar': '' },
              title(`${s.stage} #${s.iteration}: ${s.promptTokens} prompt tokens`),
            ),
            el(
              'rect',
              { x: cx - bw / 2, y: m.top + ih - h, width: bw, height: h - hIn, fill, opacity: 0.55 },
              title(`${s.stage} #${s.iteration}: ${s.completionTokens} completion tokens`),
            ),
          );
        } else {
          parts.push(
            el(
              'rect',
              { x: cx - bw / 2, y: m.top + ih - h, width: bw, height: h, fill, 'data-stage-bar': '' },
              title(`${s.stage} #${s.iteration}: ${metric.fmt(v)}`),
            ),
          );
        }
        const shown = metric.key === 'dataset' && s.datasetRows === null ? '–' : metric.fmt(v);
        parts.push(text(cx, m.top + ih - h - 6, shown, { 'text-anchor': 'middle', class: 'value' }));
        parts.push(
          text(cx, H - m.bottom + 17, s.stage, { 'text-anchor': 'middle', class: 'tick' }),
          text(cx, H - m.bottom + 31, `#${s.iteration}`, { 'text-anchor': 'middle', class: 'tick' }),
        );
      });
      if (metric.key === 'tokens') {
        parts.push(
          text(W - m.right, 18, 'solid: prompt · light: completion', { 'text-anchor': 'end', class: 'note' }),
        );
      }
      return svg('stages', W, H, `${metric.label} per stage`, parts.join(''), { 'data-metric': metric.key });
    })
    .join('');
}

/** The lineage tree, left to right: each model after its parent. */
function lineageChart(nodes: LineageNode[]): string {
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
  const gapX = 34;
  // Fill the page's width; a long chain gets a wider drawing (scaled down) rather than tiny boxes.
  const nodeW = Math.max(120, Math.min(168, (940 - (cols - 1) * gapX) / cols));
  const nodeH = 70;
  const gapY = 22;
  const W = Math.max(960, 20 + cols * nodeW + (cols - 1) * gapX);
  const H = 20 + rows * (nodeH + gapY) - gapY;
  const at = (label: string) => {
    const p = pos.get(label) ?? { col: 0, row: 0 };
    return { x: 10 + p.col * (nodeW + gapX), y: 10 + p.row * (nodeH + gapY) };
  };
  const parts: string[] = [
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${MUTED}"/></marker></defs>`,
  ];
  for (const n of nodes) {
    if (!n.parent || !pos.has(n.parent)) continue;
    const a = at(n.parent);
    const b = at(n.label);
    parts.push(
      el('path', {
        d: `M${f1(a.x + nodeW)},${f1(a.y + nodeH / 2)} C${f1(a.x + nodeW + gapX / 2)},${f1(a.y + nodeH / 2)} ${f1(b.x - gapX / 2)},${f1(b.y + nodeH / 2)} ${f1(b.x - 2)},${f1(b.y + nodeH / 2)}`,
        fill: 'none',
        stroke: MUTED,
        'stroke-width': 1.5,
        'marker-end': 'url(#arrow)',
        'data-edge': `${n.parent}->${n.label}`,
      }),
    );
  }
  nodes.forEach((n, i) => {
    const p = at(n.label);
    const base = !n.parent;
    const color = base ? BASE_COLOR : colorOf(n.stage, i);
    const subtitle = base ? 'base model' : `${n.stage} #${n.iteration}`;
    const detail = base
      ? n.servedModel
      : n.datasetRows !== null
        ? `dataset ${compact(n.datasetRows)} rows`
        : n.servedModel;
    parts.push(
      el(
        'g',
        { 'data-node': n.label, transform: `translate(${f1(p.x)},${f1(p.y)})` },
        title(
          `${n.label}: ${subtitle}; served as ${n.servedModel}${n.checkpointUri ? `; checkpoint ${n.checkpointUri}` : ''}`,
        ) +
          el('rect', {
            width: nodeW,
            height: nodeH,
            rx: 10,
            fill: '#fff',
            stroke: color,
            'stroke-width': 2,
          }) +
          el('rect', { width: 8, height: nodeH, rx: 4, fill: color }) +
          text(20, 24, n.label, { class: 'node-label' }) +
          text(20, 43, subtitle, { class: 'node-sub' }) +
          text(20, 60, clip(detail, Math.floor((nodeW - 26) / 6.2)), { class: 'node-detail' }),
      ),
    );
  });
  return svg('lineage', W, H, 'Model lineage', parts.join(''));
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
      : s.stage === 'evaluate'
        ? `${s.modelIn}${compared}`
        : s.modelIn;
  const row = (s: StageReport) =>
    `<tr><td>${esc(`${s.stage} #${s.iteration}`)}</td><td>${esc(s.status)}</td><td>${esc(model(s))}</td><td class="num">${s.records.toLocaleString('en-US')}</td><td class="num">${s.datasetRows === null ? '–' : s.datasetRows.toLocaleString('en-US')}</td><td class="num">${s.calls.toLocaleString('en-US')}</td><td class="num">${s.promptTokens.toLocaleString('en-US')}</td><td class="num">${s.completionTokens.toLocaleString('en-US')}</td><td class="num">${usd(s.costUsd)}</td></tr>`;
  const t = r.totals;
  return `<table class="stages"><thead><tr><th>stage</th><th>status</th><th>model</th><th class="num">records</th><th class="num">dataset rows</th><th class="num">LLM calls</th><th class="num">tokens in</th><th class="num">tokens out</th><th class="num">cost</th></tr></thead>
<tbody>${r.stages.map(row).join('')}</tbody>
<tfoot><tr><td>total</td><td></td><td></td><td></td><td></td><td class="num">${t.calls.toLocaleString('en-US')}</td><td class="num">${t.promptTokens.toLocaleString('en-US')}</td><td class="num">${t.completionTokens.toLocaleString('en-US')}</td><td class="num">${usd(t.costUsd)}</td></tr></tfoot></table>`;
}

/** Each fine-tune: where it ran, its job id, how long it took and its final training loss. */
function fineTuneTable(r: CampaignReport): string {
  if (r.fineTunes.length === 0) return '<p class="empty">No fine-tunes yet.</p>';
  const row = (f: CampaignReport['fineTunes'][number]) =>
    `<tr data-finetune><td>${esc(`${f.stage} #${f.iteration}`)}</td><td>${esc(f.backend)}</td><td><code>${esc(f.externalId ?? '–')}</code></td><td>${esc(f.state)}${f.detail ? ` <span class="vs">(${esc(f.detail)})</span>` : ''}</td><td class="num">${f.durationSec === null ? '–' : `${f.durationSec.toLocaleString('en-US')} s`}</td><td class="num">${f.finalLoss === null ? '–' : f.finalLoss.toFixed(4)}</td></tr>`;
  return `<table class="stages"><thead><tr><th>stage</th><th>backend</th><th>job</th><th>state</th><th class="num">duration</th><th class="num">final loss</th></tr></thead>
<tbody>${r.fineTunes.map(row).join('')}</tbody></table>`;
}

const CSS = `
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
svg{display:block;max-width:100%;height:auto;margin:10px 0}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:${INK}}
svg .tick{font-size:12px;fill:${MUTED}}
svg .axis{font-size:13px}
svg .strong{font-weight:650}
svg .legend{font-size:12.5px}
svg .value{font-size:11.5px;font-weight:600}
svg .note{font-size:11.5px;fill:${MUTED}}
svg .in-bar{font-size:11.5px;fill:#fff;font-weight:600}
svg .in-bar.dark{fill:#3c4650}
svg .chart-title{font-size:14px;font-weight:650}
svg .node-label{font-size:17px;font-weight:700}
svg .node-sub{font-size:12.5px}
svg .node-detail{font-size:11.5px;fill:${MUTED}}
.small-multiples{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:4px 18px}
.small-multiples svg{width:100%}
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
footer{color:${MUTED};font-size:12.5px;margin-top:22px}
`;

/** The whole report page. */
export function renderReportHtml(r: CampaignReport): string {
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
  const banner = r.simulationNotice
    ? `<div class="sim-banner" role="alert" data-simulation><strong>SIMULATION</strong>${esc(sentenceCase(r.simulationNotice.replace(/^SIMULATION:\s*/, '')))}</div>`
    : '';
  const evaluation = ev
    ? `<p class="method">${esc(ev.method)} ${ev.resamples.toLocaleString('en-US')} resamples, seed ${ev.seed}. Judge: ${ev.judgeModels.map((j) => `<code>${esc(j)}</code>`).join(', ')}, prompt ${ev.promptVersions.map((p) => `<code>${esc(p)}</code>`).join(', ')}. Mean lengths in words.</p>
<h3>Tie-adjusted win rate against ${esc(ev.baseModel)}, with 95% CI</h3>
${winRateChart(ev.models, ev.dimensions, ev.baseModel)}
<h3>Wins, ties and losses</h3>
${outcomesChart(ev.models)}
<h3>Overall score (judge, 1–10)</h3>
${scoresChart(ev.models, ev.baseModel)}
${ev.models.map((m, i) => modelTable(m, ev.baseModel, colorOf(m.stage, i))).join('\n')}`
    : `<p class="empty">No judgments yet: the evaluation has not run (or is disabled) for this campaign.</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`${r.simulated ? '[SIMULATION] ' : ''}meteor report — ${c.name} (${c.id})`)}</title>
<style>${CSS}</style>
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
<section id="stages">
<h2>Stages</h2>
<p class="method">Records, training-set rows, tokens and estimated cost (at the spec's pricing) per stage and iteration.</p>
<div class="small-multiples">${stageCharts(r.stages)}</div>
${stageTable(r)}
</section>
<section id="lineage">
<h2>Model lineage</h2>
<p class="method">Each model is fine-tuned from its parent on the dataset of the stage that made it.</p>
${lineageChart(r.lineage)}
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
