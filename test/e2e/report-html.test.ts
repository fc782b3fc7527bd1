/**
 * The HTML report of a finished small campaign (distill → assess → contrast → evaluate on the
 * simulator), written by the real CLI (`meteorctl campaign report ID --json --html FILE`) and
 * opened in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core): the charts
 * (Vega-Lite rendered to inline SVG) are drawn (a win-rate bar and a CI rule per model ×
 * dimension at their values' heights, a lineage node per model, the stage charts), the page says it is a simulation, loads nothing from anywhere, and a
 * screenshot is left in test-artifacts/report.png (with report.html and report.json).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CampaignReport } from '../../client/report';
import {
  EXAMPLE_EVAL,
  REPO_ROOT,
  exampleQuestions,
  launch,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type CampaignStatusView,
  type Harness,
  meteorctl,
} from '../support/harness';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const TRAIN = 10;
const EVAL = 8;
const DIMENSIONS = 5;
const LINEAGE = ['M0', 'M1', 'M2', 'M3', 'M4', 'M5'];

const cli = (h: Harness, args: string[]) => meteorctl(h, args);

describe('the HTML report in a browser', () => {
  let h: Harness;
  let browser: Browser;
  let final: CampaignStatusView;
  let report: CampaignReport;
  let htmlFile: string;
  let textReport: string;
  let campaignId: string;

  beforeAll(async () => {
    h = await startHarness();
    const train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(TRAIN));
    const evalLines = (await readFile(EXAMPLE_EVAL, 'utf8')).split('\n').filter((l) => l.trim() !== '');
    const evalFile = await writeQuestions(h.tmp, 'eval.jsonl', evalLines.slice(0, EVAL));
    const spec = await writeSpec(h, {
      questions: { train, eval: evalFile },
      stages: {
        assess: { enabled: true, iterations: 2, maxRounds: 2 },
        contrast: { enabled: true, iterations: 2, beamWidth: 4 },
        evaluate: { enabled: true },
      },
    });
    ({ campaignId } = await launch(h, spec));
    final = await waitDone(h, campaignId, 110_000);

    await mkdir(ARTIFACTS, { recursive: true });
    htmlFile = path.join(ARTIFACTS, 'report.html');
    const json = await cli(h, ['campaign', 'report', campaignId, '--json', '--html', htmlFile]);
    expect(json.code, json.stderr).toBe(0);
    report = JSON.parse(json.stdout) as CampaignReport;
    await writeFile(path.join(ARTIFACTS, 'report.json'), json.stdout);
    const text = await cli(h, ['campaign', 'report', campaignId]);
    expect(text.code, text.stderr).toBe(0);
    textReport = text.stdout;

    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does`,
      );
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
  }, 170_000);

  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it('the campaign ran every stage, and the CLI printed one JSON report and a table', () => {
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => m.label)).toEqual(LINEAGE);
    expect(report.simulated).toBe(true);
    expect(report.evaluation?.models.map((m) => [m.modelLabel, m.stage])).toEqual([
      ['M1', 'distill'],
      ['M3', 'assess'],
      ['M5', 'contrast'],
    ]);
    expect(report.stages.map((s) => `${s.stage}#${s.iteration}`)).toEqual([
      'distill#1',
      'assess#1',
      'assess#2',
      'contrast#1',
      'contrast#2',
      'evaluate#1',
    ]);
    expect(textReport).toMatch(/^=+\nSIMULATION/);
    expect(textReport).toContain('M5 (contrast #2) vs M0');
    expect(textReport).toMatch(/accuracy\s+\d+\/\d+\/\d+\s+[\d.]+%\s+[\d.]+%\s+\[[\d.]+%, [\d.]+%\]/);
    expect(textReport).toContain(
      'lineage: M0 (sim-weak-8b) → M1 (distill #1) → M2 (assess #1) → M3 (assess #2) → M4 (contrast #1) → M5 (contrast #2)',
    );
  });

  it("shows each stage's own figures, as its rows count them, in JSON, text and HTML", async () => {
    const db = h.clients.db;
    const corrected = await db
      .selectFrom('distill_records')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('campaign_id', '=', campaignId)
      .where('guideline_corrected', '=', true)
      .executeTakeFirstOrThrow();
    const distill = report.stages.find((s) => s.stage === 'distill')!;
    expect(distill.figures.guidelinesCorrected).toBe(Number(corrected.n));
    const html = await readFile(htmlFile, 'utf8');
    for (const iteration of [1, 2]) {
      const pairs = await db
        .selectFrom('preference_pairs')
        .select(['kept'])
        .where('campaign_id', '=', campaignId)
        .where('iteration', '=', iteration)
        .execute();
      const contrast = report.stages.find((s) => s.stage === 'contrast' && s.iteration === iteration)!;
      expect(contrast.figures.pairs).toBe(pairs.length);
      expect(contrast.figures.kept).toBe(pairs.filter((p) => p.kept).length);
      expect(textReport).toContain(`  contrast #${iteration}: pairs ${pairs.length}, kept `);
      expect(html).toContain(
        `<li data-stage="contrast-${iteration}"><b>contrast #${iteration}</b>: pairs ${pairs.length}, kept `,
      );
    }
  });

  it("has SCoRe's self-correction metrics per model and per stage-2 iteration, in JSON, text and HTML", async () => {
    const ev = report.evaluation!;
    const metrics = ['accT1', 'accT2', 'delta', 'deltaIC', 'deltaCI'] as const;
    const probed = [ev.baseSelfCorrection, ...ev.models.map((m) => m.selfCorrection)];
    const assess = report.stages.filter((s) => s.stage === 'assess').map((s) => s.selfCorrection);
    for (const sc of [...probed, ...assess]) {
      expect(sc).not.toBeNull();
      expect(sc!.n).toBeGreaterThan(0);
      for (const m of metrics) {
        expect(sc![m]).toBeGreaterThanOrEqual(m === 'delta' ? -1 : 0);
        expect(sc![m]).toBeLessThanOrEqual(1);
      }
      expect(sc!.delta).toBeCloseTo(sc!.deltaIC - sc!.deltaCI, 12);
    }
    expect(probed.map((sc) => sc!.n)).toEqual(probed.map(() => EVAL));
    expect(textReport).toContain('self-correction on the held-out questions');
    expect(textReport).toMatch(/M0 \(base\)\s+\d+\s+[\d.]+%\s+[\d.]+%/);
    const html = await readFile(htmlFile, 'utf8');
    expect(html).toContain('<section id="self-correction">');
    // One row per evaluated model (the base first), then one per stage-2 iteration.
    expect(html.match(/<tr data-self-correction=/g)).toHaveLength(probed.length + assess.length);
  });

  it('is one self-contained file: no script, no external resource', async () => {
    const html = await readFile(htmlFile, 'utf8');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\(\s*["']?https?:/i);
  });

  it('draws the charts in Chromium and says it is a simulation', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 }, deviceScaleFactor: 1 });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(htmlFile).href);

    // Charts are Vega-Lite rendered to inline SVG: each in a [data-chart] figure, its marks in
    // `g.NAME_marks` groups (paths for bars and symbols, lines for rules), in data order.
    const models = report.evaluation!.models.length;
    const winrate = page.locator('[data-chart="winrate"]');
    await expect(winrate.locator('svg').count()).resolves.toBe(1);
    const bars = winrate.locator('g.bar_marks path');
    await expect(bars.count()).resolves.toBe(models * DIMENSIONS);
    // A CI rule per bar, capped by a tick at each end.
    await expect(winrate.locator('g.ci_marks line').count()).resolves.toBe(models * DIMENSIONS);
    await expect(winrate.locator('g.cap_marks path').count()).resolves.toBe(models * DIMENSIONS * 2);
    await expect(winrate.locator('g.parity_marks line').count()).resolves.toBe(1);
    // Each bar is drawn at the height of its tie-adjusted win rate (a 0–100% axis), and says so.
    const plotted = await bars.evaluateAll((els) =>
      els.map((e) => ({
        label: e.getAttribute('aria-label') ?? '',
        height: e.getBoundingClientRect().height,
      })),
    );
    const expected = report.evaluation!.models.flatMap((m) =>
      report.evaluation!.dimensions.map((dim) => ({
        model: m.modelLabel,
        dimension: dim,
        value: m.dimensions.find((d) => d.dimension === dim)!.tieAdjustedWinRate!,
      })),
    );
    const unit = plotted.reduce((best, p, i) => (expected[i]!.value > expected[best]!.value ? i : best), 0);
    expected.forEach((e, i) => {
      const bar = plotted[i]!;
      expect(bar.label, `${e.model} ${e.dimension}`).toContain(`${e.model} (`);
      expect(bar.label).toContain(`— ${e.dimension}: tie-adjusted win rate ${(100 * e.value).toFixed(1)}%`);
      if (e.value > 0.05) {
        expect(bar.height / e.value).toBeCloseTo(plotted[unit]!.height / expected[unit]!.value, 0);
      }
    });
    // A CI rule spans its interval: longer rules for wider intervals, on the same scale as the bars.
    const ciHeights = await winrate
      .locator('g.ci_marks line')
      .evaluateAll((els) => els.map((e) => e.getBoundingClientRect().height));
    const cis = report.evaluation!.models.flatMap((m) =>
      report.evaluation!.dimensions.map((dim) => m.dimensions.find((d) => d.dimension === dim)!.ci!),
    );
    const pxPerUnit = plotted[unit]!.height / expected[unit]!.value;
    cis.forEach((ci, i) => expect(Math.abs(ciHeights[i]! - (ci.hi - ci.lo) * pxPerUnit)).toBeLessThan(2));

    const outcomes = page.locator('[data-chart="outcomes"]');
    const segments = report.evaluation!.models.reduce(
      (n, m) =>
        n + m.dimensions.reduce((k, d) => k + [d.wins, d.ties, d.losses].filter((c) => c > 0).length, 0),
      0,
    );
    await expect(outcomes.locator('g.outcome_marks path').count()).resolves.toBe(segments);
    await expect(page.locator('[data-chart="scores"] g.score_marks path').count()).resolves.toBe(models * 2);
    const stageCharts = page.locator('[data-chart="stages"]');
    await expect(stageCharts.count()).resolves.toBe(4);
    await expect(
      stageCharts.evaluateAll((els) => els.map((e) => e.getAttribute('data-metric'))),
    ).resolves.toEqual(['records', 'dataset', 'tokens', 'cost']);
    await expect(
      page.locator('[data-chart="stages"][data-metric="records"] g.stagebar_marks path').count(),
    ).resolves.toBe(report.stages.length);
    // Tokens: prompt and completion stacked, two segments a stage.
    await expect(
      page.locator('[data-chart="stages"][data-metric="tokens"] g.stagebar_marks path').count(),
    ).resolves.toBe(report.stages.length * 2);

    const lineage = page.locator('[data-chart="lineage"]');
    await expect(lineage.locator('g.node_marks path').count()).resolves.toBe(LINEAGE.length);
    await expect(
      lineage.locator('g.label_marks text').evaluateAll((els) => els.map((e) => e.textContent)),
    ).resolves.toEqual(LINEAGE);
    await expect(
      lineage.locator('g.edge_marks line').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label'))),
    ).resolves.toEqual(LINEAGE.slice(1).map((m, i) => `${LINEAGE[i]}->${m}`));
    // Nodes left to right in lineage order.
    const xs = await lineage
      .locator('g.node_marks path')
      .evaluateAll((els) => els.map((e) => e.getBoundingClientRect().left));
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);

    // Every chart is named for assistive technology: an SVG title, a description on the figure.
    const names = await page.locator('[data-chart]').evaluateAll((els) =>
      els.map((e) => ({
        title: e.querySelector('svg > title')?.textContent ?? '',
        label: e.getAttribute('aria-label') ?? '',
      })),
    );
    expect(names).toHaveLength(8);
    expect(names.every((n) => n.title.length > 5 && n.label.length > 5)).toBe(true);

    // One row per fine-tune, each with its backend job id.
    const fineTunes = page.locator('#finetunes [data-finetune]');
    await expect(fineTunes.count()).resolves.toBe(LINEAGE.length - 1);
    await expect(fineTunes.first().innerText()).resolves.toMatch(
      /distill #1\s+local\s+local:\d+\s+succeeded/,
    );

    // The simulation is said first, in a banner on screen.
    const banner = page.locator('[data-simulation]');
    await expect(banner.isVisible()).resolves.toBe(true);
    await expect(banner.innerText()).resolves.toMatch(/SIMULATION/);
    const box = await banner.boundingBox();
    expect(box!.y).toBeLessThan(200);
    await expect(page.title()).resolves.toMatch(/SIMULATION/);

    // Every chart has a size on the page.
    const sizes = await page
      .locator('[data-chart] svg')
      .evaluateAll((els) => els.map((e) => e.getBoundingClientRect()).map((r) => r.width * r.height));
    expect(sizes.every((s) => s > 1000)).toBe(true);

    expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([]);
    await page.screenshot({ path: path.join(ARTIFACTS, 'report.png'), fullPage: true });
    for (const chart of ['winrate', 'lineage']) {
      await page
        .locator(`[data-chart="${chart}"]`)
        .screenshot({ path: path.join(ARTIFACTS, `report-${chart}.png`) });
    }
    await page.close();
  });
});
