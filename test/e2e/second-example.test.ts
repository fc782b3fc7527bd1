/**
 * The second example campaign (examples/ab-testing) as written — task evolution, distill, rStar
 * contrast with a row filter, SRA-MCTS and the evaluation — run end to end on the simulator with
 * only its endpoints, paths and fine-tune pointed at the test's own: every stage leaves the rows
 * it should, the evaluation compares every training stage's final model, nothing is paid twice.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { CampaignReport } from '../../client/report';
import {
  REPO_ROOT,
  deepMerge,
  fineTuneQueueOf,
  launch,
  meteorctl,
  startHarness,
  waitDone,
  type CampaignStatusView,
  type Harness,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';

const EXAMPLE = path.join(REPO_ROOT, 'examples', 'ab-testing');
const GIVEN = 12;

describe('the second example campaign (evolve, mcts, rstar)', () => {
  let h: Harness;
  let campaignId: string;
  let final: CampaignStatusView;
  let report: CampaignReport;

  beforeAll(async () => {
    h = await startHarness({
      knowledgeFiles: [path.join(EXAMPLE, 'train.jsonl'), path.join(EXAMPLE, 'eval.jsonl')],
      // rStar needs no beam search: a server without it must do.
      rejectBeamSearch: true,
    });
    const example = parse(await readFile(path.join(EXAMPLE, 'campaign.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    const models = example.models as Record<string, Record<string, unknown>>;
    const spec = deepMerge(example, {
      questions: { train: path.join(EXAMPLE, 'train.jsonl'), eval: path.join(EXAMPLE, 'eval.jsonl') },
      models: Object.fromEntries(Object.entries(models).map(([r, ep]) => [r, { ...ep, baseURL: h.sim.url }])),
      fineTune: {
        cwd: REPO_ROOT,
        env: { METEOR_SIM_TRAIN_SECONDS: '0.5' },
        pollInterval: '500ms',
        queue: fineTuneQueueOf(h.taskQueue),
      },
    });
    const file = path.join(h.tmp, 'ab-testing.yaml');
    await writeFile(file, stringify(spec));
    ({ campaignId } = await launch(h, file));
    final = await waitDone(h, campaignId, 400_000);
    const json = await meteorctl(h, ['campaign', 'report', campaignId, '--json']);
    expect(json.code, json.stderr).toBe(0);
    report = JSON.parse(json.stdout) as CampaignReport;
  }, 450_000);

  afterAll(async () => {
    await h?.close();
  });

  const count = async (table: 'distill_records' | 'mcts_records' | 'preference_pairs') =>
    (
      await h.clients.db
        .selectFrom(table)
        .select(sql<number>`count(*)::int`.as('n'))
        .where('campaign_id', '=', campaignId)
        .executeTakeFirstOrThrow()
    ).n;

  it('runs evolve, distill, contrast, mcts and evaluate in the registry order', () => {
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.stages.map((s) => s.stage)).toEqual(['evolve', 'distill', 'contrast', 'mcts', 'evaluate']);
    expect(final.lineage.map((m) => [m.label, m.stage])).toEqual([
      ['M0', null],
      ['M1', 'distill'],
      ['M2', 'contrast'],
      ['M3', 'mcts'],
    ]);
    expect(report.evaluation?.models.map((m) => [m.modelLabel, m.stage])).toEqual([
      ['M1', 'distill'],
      ['M2', 'contrast'],
      ['M3', 'mcts'],
    ]);
  });

  it('trains every later stage on the given and the evolved questions', async () => {
    const { db } = h.clients;
    const evolved = await db
      .selectFrom('questions')
      .select(['id', 'evolved_from'])
      .where('campaign_id', '=', campaignId)
      .where('origin', '=', 'evolved')
      .execute();
    expect(evolved.length).toBeGreaterThan(0);
    const train = GIVEN + evolved.length;
    expect(await count('distill_records')).toBe(train);
    expect(await count('mcts_records')).toBe(train);
    expect(await count('preference_pairs')).toBe(train);
  });

  it('decodes stage 3 with rStar and trains only on the pairs the judge scored high enough', async () => {
    const { db } = h.clients;
    const pairs = await db
      .selectFrom('preference_pairs')
      .select(['question_id', 'method', 'kept'])
      .where('campaign_id', '=', campaignId)
      .execute();
    expect(new Set(pairs.map((p) => p.method))).toEqual(new Set(['rstar']));
    const candidates = await db
      .selectFrom('rstar_candidates')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('campaign_id', '=', campaignId)
      .executeTakeFirstOrThrow();
    expect(candidates.n).toBeGreaterThan(0);
    const scores = await db
      .selectFrom('row_scores')
      .select(['question_id', 'score'])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'contrast')
      .execute();
    // One score per kept pair (its only row), and the dataset is the pairs scored at least 5.
    expect(scores.map((s) => s.question_id).sort()).toEqual(
      pairs
        .filter((p) => p.kept)
        .map((p) => p.question_id)
        .sort(),
    );
    const passing = scores.filter((s) => s.score !== null && s.score >= 5).length;
    const contrast = report.stages.find((s) => s.stage === 'contrast');
    expect(contrast?.datasetRows).toBe(passing);
    expect(contrast?.figures.rowsScored).toBe(scores.length);
  });

  it('keeps every SRA-MCTS tree, and pays for no request twice', async () => {
    const trees = await h.clients.db
      .selectFrom('search_trees')
      .select(['stage', sql<number>`count(*)::int`.as('n')])
      .where('campaign_id', '=', campaignId)
      .groupBy('stage')
      .orderBy('stage')
      .execute();
    expect(trees.find((t) => t.stage === 'mcts')?.n).toBe(await count('mcts_records'));
    expect(trees.find((t) => t.stage === 'contrast')?.n).toBe(await count('preference_pairs'));
    expect(await paidTwice(h, [campaignId])).toEqual([]);
  });
});
