/**
 * The HTML report of a finished small campaign (distill → assess → contrast → evaluate on the
 * simulator), written by the real CLI (`meteorctl campaign report ID --json --html FILE`) and
 * opened in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core): the charts
 * are drawn (a win-rate bar and a CI error bar per model × dimension, a lineage node per model,
 * the stage charts), the page says it is a simulation, loads nothing from anywhere, and a
 * screenshot is left in test-artifacts/report.png (with report.html and report.json).
 */
import { execFile } from 'node:child_process';
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
  services,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type CampaignStatusView,
  type Harness,
} from '../support/harness';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const TRAIN = 10;
const EVAL = 8;
const DIMENSIONS = 5;
const LINEAGE = ['M0', 'M1', 'M2', 'M3', 'M4', 'M5'];

function cli(h: Harness, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const svc = services();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: svc.databaseUrl,
    TEMPORAL_ADDRESS: svc.temporalAddress,
    TEMPORAL_NAMESPACE: svc.namespace,
    METEOR_TASK_QUEUE: h.taskQueue,
  };
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['bin/meteorctl.cjs', ...args],
      { cwd: REPO_ROOT, env, timeout: 60_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`meteorctl ${args.join(' ')} did not run: ${err.message}\n${stderr}`));
          return;
        }
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
  });
}

describe('the HTML report in a browser', () => {
  let h: Harness;
  let browser: Browser;
  let final: CampaignStatusView;
  let report: CampaignReport;
  let htmlFile: string;
  let textReport: string;

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
    const { campaignId } = await launch(h, spec);
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

    const models = report.evaluation!.models.length;
    const winrate = page.locator('svg[data-chart="winrate"]');
    await expect(winrate.count()).resolves.toBe(1);
    const bars = winrate.locator('[data-bar]');
    await expect(bars.count()).resolves.toBe(models * DIMENSIONS);
    await expect(winrate.locator('[data-ci]').count()).resolves.toBe(models * DIMENSIONS);
    // Each bar is drawn at the height of its tie-adjusted win rate (a 0–100% axis).
    const plotted = await bars.evaluateAll((els) =>
      els.map((e) => ({
        model: e.getAttribute('data-model'),
        dimension: e.getAttribute('data-dimension'),
        value: Number(e.getAttribute('data-value')),
        height: e.getBoundingClientRect().height,
      })),
    );
    for (const m of report.evaluation!.models) {
      for (const d of m.dimensions) {
        const bar = plotted.find((p) => p.model === m.modelLabel && p.dimension === d.dimension);
        expect(bar, `${m.modelLabel} ${d.dimension}`).toBeDefined();
        expect(bar!.value).toBeCloseTo(d.tieAdjustedWinRate!, 4);
      }
    }
    const unit = plotted.find((p) => p.value > 0.05);
    expect(unit).toBeDefined();
    for (const p of plotted) {
      if (p.value > 0.05) expect(p.height / p.value).toBeCloseTo(unit!.height / unit!.value, 0);
    }
    // CI whiskers are real lines.
    const ciLines = await winrate.locator('[data-ci] line').count();
    expect(ciLines).toBe(models * DIMENSIONS * 3);

    await expect(page.locator('svg[data-chart="outcomes"] [data-outcome]').count()).resolves.toBeGreaterThan(
      0,
    );
    await expect(page.locator('svg[data-chart="scores"] [data-score]').count()).resolves.toBe(models * 2);
    const stageCharts = page.locator('svg[data-chart="stages"]');
    await expect(stageCharts.count()).resolves.toBe(4);
    await expect(
      stageCharts.evaluateAll((els) => els.map((e) => e.getAttribute('data-metric'))),
    ).resolves.toEqual(['records', 'dataset', 'tokens', 'cost']);
    await expect(
      page.locator('svg[data-chart="stages"][data-metric="records"] [data-stage-bar]').count(),
    ).resolves.toBe(report.stages.length);

    const nodes = page.locator('svg[data-chart="lineage"] [data-node]');
    await expect(nodes.evaluateAll((els) => els.map((e) => e.getAttribute('data-node')))).resolves.toEqual(
      LINEAGE,
    );
    await expect(page.locator('svg[data-chart="lineage"] [data-edge]').count()).resolves.toBe(
      LINEAGE.length - 1,
    );
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
      .locator('svg[data-chart]')
      .evaluateAll((els) => els.map((e) => e.getBoundingClientRect()).map((r) => r.width * r.height));
    expect(sizes.every((s) => s > 1000)).toBe(true);

    expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([]);
    await page.screenshot({ path: path.join(ARTIFACTS, 'report.png'), fullPage: true });
    await page.close();
  });
});
