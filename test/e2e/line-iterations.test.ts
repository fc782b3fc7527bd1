/**
 * Evolution lines on a real Temporal Schedule (dev server), real PostgreSQL and the simulator
 * over HTTP: a seconds-scale line runs its iterations, the first promotes its model, the next one
 * starts from that champion and trains only on the question appended in between, with the
 * configured share of earlier rows replayed; overlapping starts are skipped; pause holds the
 * schedule, unpause resumes it, delete stops it. A judge that cannot tell the models apart
 * promotes nothing, and people can promote and roll back by hand.
 */
import { execFileSync } from 'node:child_process';
import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { buildLineReport, renderLineReportText } from '../../client/line-report';
import { renderLineReportHtml } from '../../client/line-report-html';
import {
  createLine,
  deleteLine,
  lineStatus,
  pauseLine,
  promoteLine,
  rollbackLine,
  unpauseLine,
} from '../../client/lines';
import { UserError } from '../../core/errors';
import {
  exampleQuestions,
  REPO_ROOT,
  services,
  sleep,
  startHarness,
  waitFor,
  writeQuestions,
  writeSpec,
  type Harness,
} from '../support/harness';
import { closeWithLines, lineIterations, writeLineSpec } from '../support/lines';

const harnesses: Harness[] = [];
afterAll(async () => {
  for (const h of harnesses) await closeWithLines(h);
});

/** A 3 s line gated on accuracy (the tests override what they need). */
const lineFile = (h: Harness, name: string, campaign: string, extra: Record<string, unknown> = {}) =>
  writeLineSpec(h, name, campaign, {
    schedule: { every: '3s' },
    promotion: { dimensions: ['accuracy'], threshold: 0.5, minHeldOut: 10 },
    ...extra,
  });

/** Runs the line's schedule started after `since` (Temporal's visibility: TemporalScheduledById). */
async function runsStartedSince(h: Harness, line: string, since: Date): Promise<string[]> {
  const ids: string[] = [];
  const query = `TemporalScheduledById = 'line-${line}' AND StartTime > '${since.toISOString()}'`;
  for await (const wf of h.clients.temporal.workflow.list({ query })) ids.push(wf.workflowId);
  return ids;
}

const iterationsOf = lineIterations;

describe('an evolution line on a Temporal Schedule', () => {
  it('promotes, starts the next iteration from the champion on the new question with replay, skips overlaps, pauses and stops', async () => {
    const h = await startHarness();
    harnesses.push(h);
    const name = `line-${h.taskQueue.slice(-8)}`;
    const train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions());
    const campaign = await writeSpec(h, { questions: { train }, stages: { evaluate: { enabled: true } } });
    const started = Date.now();
    await createLine(h.clients, await lineFile(h, name, campaign, { replay: { fraction: 0.5 } }));

    // Iteration 1: every training question, judged against the base model, promoted.
    const first = await waitFor(
      'iteration 1 to finish',
      async () => (await iterationsOf(h, name)).find((it) => it.iteration === 1 && it.state !== 'running'),
      150_000,
      500,
    );
    expect(first).toMatchObject({ state: 'completed', questions_added: 48, promoted: true });
    const champion1 = await lineStatus(h.clients, name);
    expect(champion1.champion).toMatchObject({ campaignId: first.campaign_id, label: 'M1', kind: 'gate' });

    // A question arrives; the next iteration with something new trains on it alone.
    await appendFile(
      train,
      `${JSON.stringify({ id: 'k8s-train-new', title: 'HPA never scales past 3 replicas', question: 'Our HorizontalPodAutoscaler targets 60% CPU but never scales beyond 3 replicas even at 95% CPU. maxReplicas is 10. What limits it?' })}\n`,
    );
    const second = await waitFor(
      'an iteration on the new question',
      async () =>
        (await iterationsOf(h, name)).find(
          (it) => it.iteration > 1 && it.campaign_id !== null && it.state !== 'running',
        ),
      150_000,
      500,
    );
    const wallSeconds = (Date.now() - started) / 1000;
    expect(second).toMatchObject({ state: 'completed', questions_added: 1, questions_replayed: 1 });
    expect(second.promoted).not.toBeNull();
    expect(second.reason).toBeTruthy();
    const secondId = second.campaign_id as string;
    const trained = await h.clients.db
      .selectFrom('questions')
      .select('id')
      .where('campaign_id', '=', secondId)
      .where('split', '=', 'train')
      .execute();
    expect(trained.map((q) => q.id)).toEqual(['k8s-train-new']);
    // Its M0 is the champion of iteration 1: the lineage is one tree across iterations.
    const m0 = await h.clients.db
      .selectFrom('model_versions')
      .selectAll()
      .where('campaign_id', '=', secondId)
      .where('label', '=', 'M0')
      .executeTakeFirstOrThrow();
    expect(m0).toMatchObject({
      origin_campaign_id: first.campaign_id,
      origin_label: 'M1',
      served_model: champion1.champion?.servedModel,
    });
    expect(m0.checkpoint_uri).toBeTruthy();
    const ft = await h.clients.db
      .selectFrom('finetune_jobs')
      .select('parent_checkpoint')
      .where('campaign_id', '=', secondId)
      .executeTakeFirstOrThrow();
    expect(`file://${ft.parent_checkpoint}`).toBe(m0.checkpoint_uri);
    // Replay 0.5: one own row, one row of iteration 1, recorded as replay.
    const ds = await h.clients.db
      .selectFrom('datasets')
      .select(['rows'])
      .where('campaign_id', '=', secondId)
      .where('format', '=', 'openai')
      .executeTakeFirstOrThrow();
    expect(ds.rows).toBe(2);
    const replay = await h.clients.db
      .selectFrom('dataset_replay')
      .selectAll()
      .where('campaign_id', '=', secondId)
      .execute();
    expect(replay).toHaveLength(1);
    expect(replay[0]).toMatchObject({
      stage: 'distill',
      source_campaign_id: first.campaign_id,
      source_iteration: 1,
    });
    // The held-out set is the line's, fixed: never trained on.
    const heldOut = await h.clients.db
      .selectFrom('questions')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('campaign_id', '=', secondId)
      .where('split', '=', 'eval')
      .executeTakeFirstOrThrow();
    expect(heldOut.n).toBe(16);

    // A 3 s interval against iterations of many seconds: overlapping starts were skipped.
    const described = await h.clients.temporal.schedule.getHandle(`line-${name}`).describe();
    expect(described.info.numActionsSkippedOverlap).toBeGreaterThan(0);

    // Pause holds the schedule; unpause resumes it (nothing new: a skipped iteration); delete stops it.
    await waitFor(
      'no iteration running',
      async () => !(await iterationsOf(h, name)).some((it) => it.state === 'running'),
      120_000,
      500,
    );
    // The visibility query sees this line's runs (so an empty answer below means none started).
    expect((await runsStartedSince(h, name, new Date(started))).length).toBeGreaterThanOrEqual(2);
    await pauseLine(h.clients, name, { running: false });
    // From when the pause has taken effect (a start already in flight as it landed may still begin).
    const pausedAt = new Date(Date.now() + 1_000);
    await sleep(7_000);
    expect(await runsStartedSince(h, name, pausedAt)).toEqual([]);
    expect((await lineStatus(h.clients, name)).state).toBe('paused');
    const lastBeforeUnpause = Math.max(...(await iterationsOf(h, name)).map((it) => it.iteration));
    await unpauseLine(h.clients, name);
    const resumed = await waitFor(
      'an iteration after unpause',
      async () =>
        (await iterationsOf(h, name)).find(
          (it) => it.iteration > lastBeforeUnpause && it.state !== 'running',
        ),
      60_000,
      500,
    );
    expect(resumed).toMatchObject({ state: 'skipped', campaign_id: null });
    await deleteLine(h.clients, name);
    const deletedAt = new Date(Date.now() + 1_000);
    await sleep(7_000);
    expect(await runsStartedSince(h, name, deletedAt)).toEqual([]);
    expect((await lineStatus(h.clients, name)).state).toBe('deleted');

    const report = await buildLineReport(h.clients, name);
    expect(report.iterations.find((it) => it.campaignId === first.campaign_id)?.gate?.[0]).toMatchObject({
      dimension: 'accuracy',
      passed: true,
    });
    expect(report.championHistory[0]).toMatchObject({ campaignId: first.campaign_id, kind: 'gate' });
    expect(renderLineReportText(report)).toContain('promoted');
    expect(await renderLineReportHtml(report)).toContain('data-chart="gate"');
    // The same through meteorctl: one JSON document, and the HTML page.
    const env = {
      ...process.env,
      DATABASE_URL: services().databaseUrl,
      TEMPORAL_ADDRESS: services().temporalAddress,
      TEMPORAL_NAMESPACE: services().namespace,
    };
    const html = path.join(h.tmp, 'line.html');
    const json = JSON.parse(
      execFileSync(
        process.execPath,
        ['bin/meteorctl.cjs', 'line', 'report', name, '--json', '--html', html],
        {
          cwd: REPO_ROOT,
          env,
          encoding: 'utf8',
        },
      ),
    ) as { iterations: unknown[]; championHistory: unknown[] };
    expect(json.iterations).toHaveLength(report.iterations.length);
    expect(json.championHistory).toHaveLength(1);
    expect(await readFile(html, 'utf8')).toContain('data-chart="champions"');

    // Figures for the record: wall time, champion history, history lengths of the runs.
    const lengths: string[] = [];
    for (const id of [first.campaign_id, secondId]) {
      const d = await h.clients.temporal.workflow.getHandle(`campaign-${id}`).describe();
      lengths.push(`campaign-${id}: ${d.historyLength}`);
    }
    for (const a of described.info.recentActions) {
      const d = await h.clients.temporal.workflow.getHandle(a.action.workflow.workflowId).describe();
      lengths.push(`${a.action.workflow.workflowId}: ${d.historyLength}`);
    }
    console.log(
      `[line] two iterations in ${wallSeconds.toFixed(1)} s; champion history: ${report.championHistory
        .map((c) => `${c.kind} ${c.campaignId}/${c.label}`)
        .join(' → ')}; history events: ${lengths.join(', ')}`,
    );
  }, 420_000);
});

describe('the promotion gate and people', () => {
  it('does not promote a model the judge cannot tell apart; promote and rollback by hand are recorded', async () => {
    // A position-biased judge: every pair is a tie, so no lower bound passes 0.5.
    const h = await startHarness({ judgeBias: 'first' });
    harnesses.push(h);
    const name = `gate-${h.taskQueue.slice(-8)}`;
    const train = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(8));
    const campaign = await writeSpec(h, { questions: { train }, stages: { evaluate: { enabled: true } } });
    await createLine(h.clients, await lineFile(h, name, campaign, { schedule: { every: '1h' } }));
    await h.clients.temporal.schedule.getHandle(`line-${name}`).trigger();
    const it1 = await waitFor(
      'the iteration to finish',
      async () => (await iterationsOf(h, name)).find((it) => it.state !== 'running'),
      150_000,
      500,
    );
    expect(it1).toMatchObject({ state: 'completed', promoted: false });
    expect(it1.reason).toMatch(/not better than the champion: accuracy 50\.0%/);
    expect((await lineStatus(h.clients, name)).champion).toBeNull();

    const promoted = await promoteLine(h.clients, name, {
      campaignId: it1.campaign_id as string,
      label: null,
      actor: 'alice',
      why: 'reviewed the answers by hand',
    });
    expect(promoted.label).toBe('M1');
    expect((await lineStatus(h.clients, name)).champion).toMatchObject({ label: 'M1', kind: 'promote' });
    await expect(rollbackLine(h.clients, name, { actor: 'bob', why: null })).rejects.toBeInstanceOf(
      UserError,
    );
    const history = await h.clients.db
      .selectFrom('line_champions')
      .selectAll()
      .where('line', '=', name)
      .execute();
    expect(history.map((c) => [c.kind, c.actor, c.why])).toEqual([
      ['promote', 'alice', 'reviewed the answers by hand'],
    ]);
  }, 240_000);
});
