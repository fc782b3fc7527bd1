/**
 * The evolution line report's HTML page, rendered from a hand-built LineReport (three judged
 * iterations, one skipped, a gate promotion, a manual promote and a rollback) and opened in
 * headless Chromium (Debian's /usr/bin/chromium): one row per iteration, the gate chart has a
 * point and a CI rule per iteration × gating dimension and the threshold line, the champion chart
 * a marker per change; the page says it is a simulation and loads nothing. Screenshot:
 * test-artifacts/line-report.png.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LineGateDimension, LineIterationReport, LineReport } from '../../client/line-report';
import { renderLineReportHtml } from '../../client/line-report-html';
import { REPO_ROOT } from '../support/harness';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const THRESHOLD = 0.55;

function gate(
  dimension: string,
  wins: number,
  ties: number,
  losses: number,
  lo: number,
  hi: number,
): LineGateDimension {
  const n = wins + ties + losses;
  return {
    dimension,
    wins,
    ties,
    losses,
    tieAdjustedWinRate: (wins + 0.5 * ties) / n,
    ci: { lo, hi },
    passed: lo > THRESHOLD,
  };
}

function iteration(
  n: number,
  over: Partial<LineIterationReport> & Pick<LineIterationReport, 'against'>,
): LineIterationReport {
  return {
    iteration: n,
    campaignId: `line-c${n}`,
    state: 'completed',
    startedAt: `2026-03-0${n}T02:00:00.000Z`,
    finishedAt: `2026-03-0${n}T02:40:00.000Z`,
    questionsAdded: 40,
    questionsReplayed: 10,
    costUsd: 0.42 * n,
    candidate: { label: 'M5', servedModel: `line-c${n}-m5` },
    gate: null,
    promoted: null,
    reason: null,
    ...over,
  };
}

const base = { campaignId: null, label: 'M0', servedModel: 'sim-weak-8b' };
const REPORT: LineReport = {
  generatedAt: '2026-03-06T09:00:00.000Z',
  simulated: true,
  simulationNotice:
    "SIMULATION: this line's models are the project's model simulator (sim-*), not real models. Its numbers say nothing about any real model.",
  line: {
    name: 'k8s-nightly',
    state: 'active',
    scheduleId: 'line-k8s-nightly',
    schedule: 'every 24h',
    promotion: { dimensions: ['accuracy', 'relevance'], threshold: THRESHOLD, minHeldOut: 8 },
    replayFraction: 0.2,
    heldOut: 24,
  },
  champion: { campaignId: 'line-c1', label: 'M5', servedModel: 'line-c1-m5' },
  championHistory: [
    {
      at: '2026-03-01T02:41:00.000Z',
      campaignId: 'line-c1',
      label: 'M5',
      servedModel: 'line-c1-m5',
      kind: 'gate',
      actor: 'gate',
      why: null,
    },
    {
      at: '2026-03-03T10:00:00.000Z',
      campaignId: 'line-c2',
      label: 'M5',
      servedModel: 'line-c2-m5',
      kind: 'promote',
      actor: 'alice',
      why: 'accuracy matters more here',
    },
    {
      at: '2026-03-04T08:00:00.000Z',
      campaignId: 'line-c1',
      label: 'M5',
      servedModel: 'line-c1-m5',
      kind: 'rollback',
      actor: 'bob',
      why: 'regression in production',
    },
  ],
  iterations: [
    iteration(1, {
      against: base,
      gate: [gate('accuracy', 18, 4, 2, 0.62, 0.88), gate('relevance', 15, 6, 3, 0.58, 0.83)],
      promoted: true,
      reason: 'CI lower bound above 55% on accuracy, relevance',
    }),
    iteration(2, {
      against: { campaignId: 'line-c1', label: 'M5', servedModel: 'line-c1-m5' },
      gate: [gate('accuracy', 12, 6, 6, 0.41, 0.7), gate('relevance', 11, 8, 5, 0.44, 0.71)],
      promoted: false,
      reason: 'accuracy: CI lower bound 41.0% ≤ 55.0%',
    }),
    iteration(3, {
      state: 'skipped',
      finishedAt: '2026-03-03T02:00:01.000Z',
      questionsAdded: 0,
      questionsReplayed: 0,
      costUsd: 0,
      candidate: null,
      campaignId: null,
      against: { campaignId: 'line-c1', label: 'M5', servedModel: 'line-c1-m5' },
      reason: 'no new questions',
    }),
    iteration(4, {
      against: { campaignId: 'line-c1', label: 'M5', servedModel: 'line-c1-m5' },
      gate: [gate('accuracy', 13, 5, 6, 0.48, 0.75), gate('relevance', 12, 6, 6, 0.45, 0.73)],
      promoted: false,
      reason: 'accuracy: CI lower bound 48.0% ≤ 55.0%',
    }),
  ],
};
const JUDGED = REPORT.iterations.filter((it) => it.gate !== null).length;
const DIMS = REPORT.line.promotion.dimensions.length;

describe('the line report in a browser', () => {
  let browser: Browser;
  let html: string;
  let htmlFile: string;
  let renderMs: number;

  beforeAll(async () => {
    const t0 = Date.now();
    html = await renderLineReportHtml(REPORT);
    renderMs = Date.now() - t0;
    await mkdir(ARTIFACTS, { recursive: true });
    htmlFile = path.join(ARTIFACTS, 'line-report.html');
    await writeFile(htmlFile, html);
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does`,
      );
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('renders in well under the CLI budget and is one self-contained file', () => {
    expect(renderMs).toBeLessThan(10_000);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\(\s*["']?https?:/i);
  });

  it('shows the iterations, the gate and the champion history', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 }, deviceScaleFactor: 1 });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(htmlFile).href);

    // Header: name, schedule, rule, replay fraction, held-out count, state.
    const header = await page.locator('header').innerText();
    for (const s of [
      'k8s-nightly',
      'every 24h',
      'line-k8s-nightly',
      '55.0%',
      'accuracy, relevance',
      'replay 20%',
      '24 held-out',
      'active',
    ]) {
      expect(header).toContain(s);
    }

    // One row per iteration, in order, with its gate cells and decision.
    const rows = page.locator('#iterations [data-iteration]');
    await expect(
      rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-iteration'))),
    ).resolves.toEqual(['1', '2', '3', '4']);
    await expect(rows.nth(0).innerText()).resolves.toMatch(
      /#1\s+line-c1\s+completed\s+40 \/ 10\s+\$0\.42\s+M0 \(base\)\s+M5/,
    );
    await expect(rows.nth(0).innerText()).resolves.toMatch(/✓ 83\.3%\s+\[62\.0%–88\.0%\][\s\S]*yes/);
    await expect(rows.nth(1).innerText()).resolves.toMatch(/✗ 62\.5%\s+\[41\.0%–70\.0%\][\s\S]*no/);
    await expect(rows.nth(2).innerText()).resolves.toMatch(/skipped[\s\S]*no new questions/);

    // The gate chart: a point and a CI rule per judged iteration × gating dimension, the threshold.
    const gateChart = page.locator('[data-chart="gate"]');
    await expect(gateChart.locator('svg').count()).resolves.toBe(1);
    await expect(gateChart.locator('g.gate_marks path').count()).resolves.toBe(JUDGED * DIMS);
    await expect(gateChart.locator('g.ci_marks line').count()).resolves.toBe(JUDGED * DIMS);
    await expect(gateChart.locator('g.threshold_marks line').count()).resolves.toBe(1);
    // Points sit at their rates: iteration 1's accuracy (83.3%) is above the threshold line,
    // iteration 2's (62.5%) too, and each CI's lower end of iteration 2 below it.
    const thresholdY = await gateChart
      .locator('g.threshold_marks line')
      .evaluate((e) => e.getBoundingClientRect().top);
    const ciBottoms = await gateChart
      .locator('g.ci_marks line')
      .evaluateAll((els) => els.map((e) => e.getBoundingClientRect().bottom));
    // Iteration 1's CIs start above the threshold (smaller y), the others' below it.
    expect(ciBottoms.slice(0, DIMS).every((b) => b < thresholdY)).toBe(true);
    expect(ciBottoms.slice(DIMS).every((b) => b > thresholdY)).toBe(true);
    await expect(gateChart.locator('svg title').first().textContent()).resolves.toMatch(/Gate/);
    await expect(gateChart.getAttribute('aria-label')).resolves.toMatch(/threshold 55\.0%/);

    // The champion history: a marker per change, a step line, a table row per change.
    const champions = page.locator('[data-chart="champions"]');
    await expect(champions.locator('g.change_marks path').count()).resolves.toBe(
      REPORT.championHistory.length,
    );
    await expect(champions.locator('g.tenure_marks path').count()).resolves.toBe(1);
    await expect(
      champions
        .locator('g.change_marks path')
        .evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? '')),
    ).resolves.toEqual([
      expect.stringMatching(/by gate/),
      expect.stringMatching(/by promote \(alice\)/),
      expect.stringMatching(/by rollback \(bob\): regression/),
    ]);
    await expect(
      page
        .locator('#champions [data-change]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-change'))),
    ).resolves.toEqual(['gate', 'promote', 'rollback']);

    // The simulation is said first, in a banner on screen.
    const banner = page.locator('[data-simulation]');
    await expect(banner.isVisible()).resolves.toBe(true);
    expect((await banner.boundingBox())!.y).toBeLessThan(260);
    await expect(page.title()).resolves.toMatch(/SIMULATION/);

    const sizes = await page
      .locator('[data-chart] svg')
      .evaluateAll((els) => els.map((e) => e.getBoundingClientRect()).map((r) => r.width * r.height));
    expect(sizes).toHaveLength(2);
    expect(sizes.every((s) => s > 10_000)).toBe(true);

    expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([]);
    await page.screenshot({ path: path.join(ARTIFACTS, 'line-report.png'), fullPage: true });
    await page.close();
  });

  it('says when nothing was judged yet, and no banner for real models', async () => {
    const quiet = await renderLineReportHtml({
      ...REPORT,
      simulated: false,
      simulationNotice: null,
      champion: null,
      championHistory: [],
      iterations: [],
    });
    expect(quiet).not.toContain('data-simulation');
    expect(quiet).not.toContain('data-chart');
    expect(quiet).toContain('No iteration has been judged yet.');
    expect(quiet).toContain('No champion changes yet.');
  });
});
