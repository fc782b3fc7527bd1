/**
 * Charts for the HTML reports: Vega-Lite specs rendered here, in Node, to inline SVG strings, so a
 * report stays one self-contained file with no script. Vega runs headless (renderer 'none' plus
 * toSVG); without the optional `canvas` package it estimates text widths, which is good enough
 * for axis labels and legends.
 *
 * Each chart comes back wrapped in `<figure class="chart" data-chart="NAME" …>`, the hook tests
 * and tools find it by; inside, the SVG carries `<title>`/`<desc>` and the figure an aria-label
 * (Vega only puts its description on a live DOM container, which a string render lacks).
 * Vega writes each mark as `<g class="mark-TYPE role-mark NAME_marks">`; a layer named `NAME` in
 * a spec here is therefore findable as `g.NAME_marks`.
 */
import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite';
import type { Config, TopLevelSpec } from 'vega-lite';

/** One colour per stage, shared by every chart (and the lineage) of both reports. */
export const STAGE_COLORS: Record<string, string> = {
  distill: '#4e79a7',
  assess: '#f28e2b',
  contrast: '#59a14f',
  evaluate: '#8a96a3',
};
export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#b07aa1',
  '#76b7b2',
  '#edc948',
  '#e15759',
  '#9c755f',
];
export const BASE_COLOR = '#8a96a3';
export const OUTCOME_COLORS = { win: '#3f9a5a', tie: '#c9c3bd', loss: '#d8574f' } as const;
export const INK = '#1f2933';
export const MUTED = '#66727f';
export const GRID = '#e3e7eb';
export const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif';

/** A stage's colour, or the palette's index-th when the stage has none. */
export const colorOf = (stage: string | null, index: number): string =>
  (stage ? STAGE_COLORS[stage] : undefined) ?? (PALETTE[index % PALETTE.length] as string);

/** The reports' look, applied to every spec (a spec's own config wins). */
const CONFIG: Config = {
  font: FONT,
  background: 'transparent',
  view: { stroke: null },
  axis: {
    labelColor: MUTED,
    titleColor: INK,
    labelFontSize: 12,
    titleFontSize: 12.5,
    titleFontWeight: 600,
    gridColor: GRID,
    domainColor: '#c5ccd3',
    tickColor: '#c5ccd3',
  },
  // Legends name models and outcomes in full: Vega's default clips labels at 160 px.
  legend: {
    labelFontSize: 12.5,
    titleFontSize: 12.5,
    labelColor: INK,
    titleColor: INK,
    orient: 'top',
    labelLimit: 420,
  },
  header: { labelFontSize: 13, labelColor: INK, labelFontWeight: 600, titleFontSize: 0 },
  title: {
    fontSize: 14,
    fontWeight: 600,
    color: INK,
    anchor: 'start',
    subtitleColor: MUTED,
    subtitleFontSize: 12,
  },
  text: { color: INK, fontSize: 11.5 },
};

/** Escapes text for HTML content and attribute values. */
export function esc(value: unknown): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

type VegaModule = typeof Vega;
type VegaLiteModule = typeof VegaLite;

let libs: Promise<[VegaModule, VegaLiteModule]> | undefined;
/**
 * Vega is ESM-only and has a top-level await, so require() cannot load it even on Node ≥ 20.19:
 * it is imported dynamically, once, on the first chart, which also keeps its ~0.3 s load off
 * every CLI command that draws nothing.
 */
function loadVega(): Promise<[VegaModule, VegaLiteModule]> {
  libs ??= Promise.all([import('vega'), import('vega-lite')]);
  return libs;
}

export interface ChartOptions {
  /** The `data-chart` hook. */
  chart: string;
  /** Short accessible name (SVG title, figure aria-label). */
  title: string;
  /** Longer description; defaults to the spec's `description`. */
  description?: string;
  /** More attributes for the wrapper, e.g. `{ 'data-metric': 'cost' }`. */
  attrs?: Record<string, string>;
}

/** Renders one Vega-Lite spec to `<figure data-chart><svg>…</svg></figure>`. */
export async function renderChart(spec: TopLevelSpec, opts: ChartOptions): Promise<string> {
  const [vega, vl] = await loadVega();
  const withConfig = { ...spec, config: { ...CONFIG, ...spec.config } } as TopLevelSpec;
  // Vega's warnings (e.g. an ignored encoding) would go to the CLI's console: errors only.
  const logger = vega.logger(vega.Error);
  const compiled = vl.compile(withConfig, { logger }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logger });
  try {
    const raw = await view.toSVG();
    const description = opts.description ?? spec.description ?? opts.title;
    // Title and description first in the SVG, so it reads well on its own too (e.g. saved out).
    const svg = raw.replace(
      /^<svg([^>]*)>/,
      (_m, a: string) =>
        `<svg${a} role="img" aria-label="${esc(opts.title)}"><title>${esc(opts.title)}</title><desc>${esc(description)}</desc>`,
    );
    const attrs = Object.entries(opts.attrs ?? {})
      .map(([k, v]) => ` ${k}="${esc(v)}"`)
      .join('');
    return `<figure class="chart" data-chart="${esc(opts.chart)}"${attrs} aria-label="${esc(description)}">${svg}</figure>`;
  } finally {
    view.finalize();
  }
}
