/**
 * The evolution line report as ONE self-contained HTML file, in the campaign report's style
 * (report-html.ts): per iteration the questions added and replayed, cost, the judged result
 * against the champion with its CI and whether it was promoted; and the champion history.
 *
 * Charts (Vega-Lite rendered to inline SVG by charts.ts): `[data-chart="gate"]` — each gating
 * dimension's tie-adjusted win rate per iteration as `g.gate_marks` points with `g.ci_marks`
 * rules and the threshold as `g.threshold_marks`; `[data-chart="champions"]` — who was champion
 * when, a `g.tenure_marks` step line with one `g.change_marks` point per change.
 * Table rows: `[data-iteration]`, `[data-change]`.
 */
import type { TopLevelSpec } from 'vega-lite';
import { esc, MUTED, PALETTE, renderChart } from './charts';
import type { LineChampionChange, LineGateDimension, LineIterationReport, LineReport } from './line-report';
import { PAGE_CSS, pct, simulationBanner, usd } from './report-html';

const KIND_COLORS: Record<LineChampionChange['kind'], string> = {
  gate: '#59a14f',
  promote: '#4e79a7',
  rollback: '#e15759',
};
const KIND_SHAPES: Record<LineChampionChange['kind'], string> = {
  gate: 'circle',
  promote: 'diamond',
  rollback: 'triangle-down',
};

const when = (iso: string) => `${iso.slice(0, 16).replace('T', ' ')} UTC`;
const short = (id: string | null) => (id === null ? 'base' : id);
/** "62.5% [50.0–75.0%]" */
const rateWithCi = (g: LineGateDimension) =>
  `${pct(g.tieAdjustedWinRate, 1)}${g.ci ? ` [${pct(g.ci.lo, 1)}–${pct(g.ci.hi, 1)}]` : ''}`;
const iterationKey = (it: LineIterationReport) =>
  `#${it.iteration} · ${it.promoted === true ? 'promoted' : it.promoted === false ? 'kept champion' : it.state}`;

/** The promotion rule in words. */
function ruleText(r: LineReport): string {
  const p = r.line.promotion;
  return (
    `promote when the 95% CI's lower bound of the tie-adjusted win rate against the champion exceeds ` +
    `${pct(p.threshold, 1)} on ${p.dimensions.join(', ')} (at least ${p.minHeldOut} held-out questions)`
  );
}

/** Each iteration's gating dimensions: tie-adjusted win rate, CI, and the threshold. */
function gateChart(r: LineReport): Promise<string> | null {
  const judged = r.iterations.filter((it) => it.gate !== null && it.gate.length > 0);
  if (judged.length === 0) return null;
  const dims = r.line.promotion.dimensions;
  const keys = judged.map(iterationKey);
  const rows = judged.flatMap((it) =>
    (it.gate ?? []).map((g) => ({
      key: iterationKey(it),
      dimension: g.dimension,
      value: g.tieAdjustedWinRate,
      lo: g.ci?.lo ?? null,
      hi: g.ci?.hi ?? null,
      result: g.passed ? 'passed' : 'not passed',
      description: `iteration ${it.iteration} — ${g.dimension}: tie-adjusted win rate ${rateWithCi(g)} against ${it.against.label}; ${g.passed ? 'passed' : 'not passed'}`,
    })),
  );
  const allDims = [...new Set([...dims, ...rows.map((x) => x.dimension)])];
  const x = {
    field: 'key',
    type: 'nominal' as const,
    sort: keys,
    title: null,
    axis: { labelAngle: 0, labelExpr: "split(datum.label, ' · ')" },
  };
  const xOffset = { field: 'dimension', type: 'nominal' as const, sort: allDims };
  const y = {
    type: 'quantitative' as const,
    scale: { domain: [0, 1] },
    axis: { format: '%', tickCount: 5, title: 'tie-adjusted win rate vs champion' },
  };
  const color = {
    field: 'dimension',
    type: 'nominal' as const,
    scale: { domain: allDims, range: allDims.map((_, i) => PALETTE[i % PALETTE.length] as string) },
    legend: { title: null },
  };
  const threshold = r.line.promotion.threshold;
  const description = `Gate per iteration: tie-adjusted win rate against the champion with 95% CI on ${dims.join(', ')}; threshold ${pct(threshold, 1)} for the CI's lower bound`;
  const spec: TopLevelSpec = {
    description,
    width: 860,
    height: 260,
    data: { values: rows },
    layer: [
      {
        name: 'ci',
        transform: [{ filter: 'datum.lo != null' }],
        mark: { type: 'rule', strokeWidth: 2 },
        encoding: { x, xOffset, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color },
      },
      {
        name: 'gate',
        mark: { type: 'point', filled: true, size: 110, opacity: 1 },
        encoding: {
          x,
          xOffset,
          y: { ...y, field: 'value' },
          color,
          shape: {
            field: 'result',
            type: 'nominal',
            scale: { domain: ['passed', 'not passed'], range: ['circle', 'cross'] },
            legend: { title: null },
          },
          description: { field: 'description' },
        },
      },
      {
        name: 'threshold',
        data: { values: [{ y: threshold }] },
        mark: { type: 'rule', color: MUTED, strokeDash: [5, 4], strokeWidth: 1.5 },
        encoding: { y: { ...y, field: 'y' } },
      },
      {
        // Above the plot's top-right corner, beside the legend, where no point or CI covers it.
        data: { values: [{ text: `- - -  threshold ${pct(threshold, 1)} (for the CI's lower bound)` }] },
        mark: { type: 'text', align: 'right', baseline: 'bottom', dy: -10, color: MUTED, fontSize: 12 },
        encoding: { x: { value: 'width' }, y: { value: 0 }, text: { field: 'text' } },
      },
    ],
  };
  return renderChart(spec, { chart: 'gate', title: 'Gate result per iteration', description });
}

/** Who was champion when: a step line through the champions, a marker per change by kind. */
function championsChart(r: LineReport): Promise<string> | null {
  const changes = [...r.championHistory].sort((a, b) => a.at.localeCompare(b.at));
  const last = changes[changes.length - 1];
  if (!last) return null;
  const keyOf = (c: { label: string; campaignId: string }) => `${c.label} · ${c.campaignId}`;
  const keys = [...new Set(changes.map(keyOf))];
  const points = changes.map((c) => ({
    at: c.at,
    key: keyOf(c),
    kind: c.kind,
    description: `${when(c.at)}: ${c.label} (${c.campaignId}, ${c.servedModel}) became champion by ${c.kind} (${c.actor})${c.why ? `: ${c.why}` : ''}`,
  }));
  // The last champion holds until the report was made.
  const tenure = [...points, { at: r.generatedAt, key: keyOf(last), kind: last.kind, description: '' }];
  const x = {
    field: 'at',
    type: 'temporal' as const,
    scale: { type: 'utc' as const },
    title: null,
    axis: { format: '%b %d %H:%M', formatType: 'utc' as const, labelAngle: 0, tickCount: 6 },
  };
  const y = { field: 'key', type: 'nominal' as const, sort: keys, title: null, axis: { labelLimit: 260 } };
  const kinds = Object.keys(KIND_COLORS) as Array<LineChampionChange['kind']>;
  const description = `Champion history: ${changes.map((c) => `${c.label} by ${c.kind}`).join(', ')}`;
  const spec: TopLevelSpec = {
    description,
    width: 760,
    height: Math.max(80, keys.length * 44),
    layer: [
      {
        name: 'tenure',
        data: { values: tenure },
        mark: { type: 'line', interpolate: 'step-after', color: MUTED, strokeWidth: 2 },
        encoding: { x, y },
      },
      {
        name: 'change',
        data: { values: points },
        mark: { type: 'point', filled: true, size: 140, opacity: 1 },
        encoding: {
          x,
          y,
          color: {
            field: 'kind',
            type: 'nominal',
            scale: { domain: kinds, range: kinds.map((k) => KIND_COLORS[k]) },
            legend: { title: null },
          },
          shape: {
            field: 'kind',
            type: 'nominal',
            scale: { domain: kinds, range: kinds.map((k) => KIND_SHAPES[k]) },
            legend: { title: null },
          },
          description: { field: 'description' },
        },
      },
    ],
  };
  return renderChart(spec, { chart: 'champions', title: 'Champion history', description });
}

function iterationTable(r: LineReport): string {
  const dims = r.line.promotion.dimensions;
  const gateCell = (it: LineIterationReport, dim: string) => {
    const g = it.gate?.find((x) => x.dimension === dim);
    if (!g) return '<td class="num">–</td>';
    // Rate over CI on two lines keeps the table within the page for a few gating dimensions.
    return `<td class="num"><span class="${g.passed ? 'pass' : 'fail'}">${g.passed ? '✓' : '✗'}</span> ${esc(pct(g.tieAdjustedWinRate, 1))}${g.ci ? `<br><span class="vs">[${esc(pct(g.ci.lo, 1))}–${esc(pct(g.ci.hi, 1))}]</span>` : ''}</td>`;
  };
  const promoted = (p: boolean | null) =>
    p === null ? '–' : p ? '<strong class="pass">yes</strong>' : '<span class="fail">no</span>';
  const row = (it: LineIterationReport) =>
    `<tr data-iteration="${it.iteration}"><td>#${it.iteration}</td><td><code>${esc(it.campaignId ?? '–')}</code></td><td>${esc(it.state)}</td><td class="num">${it.questionsAdded.toLocaleString('en-US')} / ${it.questionsReplayed.toLocaleString('en-US')}</td><td class="num">${usd(it.costUsd)}</td><td>${esc(it.against.label)} <span class="vs">(${esc(short(it.against.campaignId))})</span></td><td>${it.candidate ? `${esc(it.candidate.label)} <span class="vs">(${esc(it.candidate.servedModel)})</span>` : '–'}</td>${dims.map((d) => gateCell(it, d)).join('')}<td>${promoted(it.promoted)}</td><td>${esc(it.reason ?? '')}</td></tr>`;
  return `<table class="stages iterations"><thead><tr><th>iteration</th><th>campaign</th><th>state</th><th class="num">questions added / replayed</th><th class="num">cost</th><th>against</th><th>candidate</th>${dims.map((d) => `<th class="num">${esc(d)}</th>`).join('')}<th>promoted</th><th>reason</th></tr></thead>
<tbody>${r.iterations.map(row).join('')}</tbody></table>`;
}

function championTable(r: LineReport): string {
  const row = (c: LineChampionChange) =>
    `<tr data-change="${esc(c.kind)}"><td>${esc(when(c.at))}</td><td><span class="swatch" style="background:${KIND_COLORS[c.kind]}"></span> ${esc(c.kind)}</td><td><strong>${esc(c.label)}</strong></td><td><code>${esc(c.campaignId)}</code></td><td><code>${esc(c.servedModel)}</code></td><td>${esc(c.actor)}</td><td>${esc(c.why ?? '')}</td></tr>`;
  return `<table class="stages"><thead><tr><th>when</th><th>kind</th><th>champion</th><th>campaign</th><th>served as</th><th>by</th><th>why</th></tr></thead>
<tbody>${r.championHistory.map(row).join('')}</tbody></table>`;
}

const LINE_CSS = `
.pass{color:#3f9a5a}.fail{color:#d8574f}
table.iterations{font-size:13px}
table.iterations td:last-child{min-width:150px}
table.iterations td.num span{white-space:nowrap}
.table-scroll{overflow-x:auto}
`;

/** The whole line report page; async because Vega renders the charts asynchronously. */
export async function renderLineReportHtml(report: LineReport): Promise<string> {
  const r = report;
  const l = r.line;
  const [gate, champions] = await Promise.all([gateChart(r), championsChart(r)]);
  const cost = r.iterations.reduce((s, it) => s + it.costUsd, 0);
  const cards: Array<[string, string]> = [
    ['state', l.state],
    ['schedule', l.schedule],
    ['replay fraction', pct(l.replayFraction)],
    ['held-out questions', l.heldOut.toLocaleString('en-US')],
    ['iterations', String(r.iterations.length)],
    ['champion', r.champion ? r.champion.label : 'base model'],
    ['estimated cost', usd(cost)],
  ];
  // The simulation is said first, as on the campaign report, when any model is the simulator.
  const banner = simulationBanner(r.simulated ? (r.simulationNotice ?? 'SIMULATION') : null);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`${r.simulated ? '[SIMULATION] ' : ''}meteor line report — ${l.name}`)}</title>
<style>${PAGE_CSS}${LINE_CSS}</style>
</head>
<body>
<main>
<header>
<h1>${esc(l.name)} <span class="vs">· meteor evolution line report</span></h1>
<p class="sub">schedule <code>${esc(l.scheduleId)}</code> · ${esc(l.schedule)} · ${esc(l.state)} · generated ${esc(when(r.generatedAt))}</p>
<p class="sub" data-rule>${esc(ruleText(r))} · replay ${esc(pct(l.replayFraction))} of earlier questions · ${l.heldOut.toLocaleString('en-US')} held-out questions</p>
</header>
${banner}
<div class="cards">${cards.map(([k, v]) => `<div class="card"><div class="k">${esc(k)}</div><div class="v">${esc(v)}</div></div>`).join('')}</div>
<section id="iterations">
<h2>Iterations</h2>
<p class="method">Each iteration is a campaign on new and replayed questions; its final model is judged against the champion of the time on the held-out questions. A gating dimension passes when the lower bound of its 95% CI exceeds ${esc(pct(l.promotion.threshold, 1))}.</p>
${gate ?? '<p class="empty">No iteration has been judged yet.</p>'}
<div class="table-scroll">${iterationTable(r)}</div>
</section>
<section id="champions">
<h2>Champion history</h2>
<p class="method">Current champion: ${r.champion ? `<strong>${esc(r.champion.label)}</strong> (<code>${esc(r.champion.campaignId)}</code>, served as <code>${esc(r.champion.servedModel)}</code>)` : 'the line’s base model'}. Changes by the gate (judged), or by a person (promote, rollback).</p>
${champions ?? '<p class="empty">No champion changes yet.</p>'}
<div class="table-scroll">${championTable(r)}</div>
</section>
<footer>${r.simulated && r.simulationNotice ? `${esc(r.simulationNotice)} ` : ''}Tie-adjusted win rate = (wins + 0.5 ties) / n; 95% CI by percentile bootstrap over questions. Generated by meteorctl.</footer>
</main>
</body>
</html>
`;
}
