/**
 * Stage 3 end to end: beam search against a vLLM-like server (the request fields reach it), and
 * best-of-N ranked by the model's own critique against a server without beam search. Pairs,
 * the near-identical filter, the self-critique filter, the exported preference datasets in their
 * three formats, the preference fine-tunes with the spec's loss, and the lineage across iterations.
 * Stage 1 is off: the contrast stage starts from the base model M0.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PREFERENCE_FORMATS } from '../../core/dataset-formats';
import { auditRecords } from '../../core/records';
import { tokenJaccard } from '../../core/text-similarity';
import { chosenRejected, PREFERENCE_LINE_SCHEMAS } from '../support/preference-formats';
import {
  exampleQuestions,
  launch,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type CampaignStatusView,
  type Harness,
} from '../support/harness';
import type { SimStats } from '../../infra/sim/server';

const QUESTIONS = 6;
const BEAM_WIDTH = 4;
const LENGTH_PENALTY = 1.2;
const MAX_SIMILARITY = 0.9;
const SAMPLES = 4;
const SAMPLE_TEMPERATURE = 0.8;

interface CallRow {
  id: string;
  purpose: string;
  model: string;
  request: Record<string, unknown>;
  response: { choices: string[] } | null;
}

async function callsById(h: Harness, ids: string[]): Promise<Map<string, CallRow>> {
  if (ids.length === 0) return new Map();
  const rows = await h.clients.db
    .selectFrom('llm_calls')
    .select(['id', 'purpose', 'model', 'request', 'response'])
    .where('id', 'in', ids)
    .execute();
  return new Map(rows.map((r) => [r.id, r as CallRow]));
}

function pairsOf(h: Harness, campaignId: string) {
  return h.clients.db
    .selectFrom('preference_pairs')
    .selectAll()
    .where('campaign_id', '=', campaignId)
    .orderBy('iteration')
    .orderBy('question_id')
    .execute();
}

async function trainerConfigs(h: Harness, campaignId: string, iteration: number) {
  const job = await h.clients.db
    .selectFrom('finetune_jobs')
    .selectAll()
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', 'contrast')
    .where('iteration', '=', iteration)
    .executeTakeFirstOrThrow();
  const dir = path.join(String(job.job_dir), 'config');
  const trlText = await readFile(path.join(dir, 'trl.yaml'), 'utf8');
  return {
    job,
    trlText,
    trl: parse(trlText) as Record<string, unknown>,
    llamafactory: parse(await readFile(path.join(dir, 'llamafactory.yaml'), 'utf8')) as Record<
      string,
      unknown
    >,
  };
}

async function trainFile(h: Harness, n: number): Promise<string> {
  return writeQuestions(h.tmp, `train-${n}.jsonl`, await exampleQuestions(n));
}

describe('contrast stage with beam search', () => {
  let h: Harness;
  let campaignId: string;
  let final: CampaignStatusView;
  /** A sampler at temperature 0 returns the greedy output: every pair of this campaign is identical. */
  let identicalId: string;
  let identical: CampaignStatusView;
  let stats: SimStats;

  beforeAll(async () => {
    h = await startHarness();
    const spec = await writeSpec(h, {
      questions: { train: await trainFile(h, QUESTIONS) },
      stages: {
        distill: { enabled: false },
        contrast: {
          enabled: true,
          iterations: 2,
          method: 'beam',
          beamWidth: BEAM_WIDTH,
          lengthPenalty: LENGTH_PENALTY,
          maxSimilarity: MAX_SIMILARITY,
          batchSize: 4,
          loss: 'dpo',
        },
      },
    });
    const identicalSpec = await writeSpec(h, {
      name: 'k8s-identical',
      questions: { train: await trainFile(h, 3) },
      stages: {
        distill: { enabled: false },
        contrast: { enabled: true, iterations: 1, method: 'best-of-n', samples: 2, sampleTemperature: 0 },
      },
    });
    ({ campaignId } = await launch(h, spec));
    final = await waitDone(h, campaignId, 90_000);
    // The requests of the beam campaign only; the second campaign talks to the same server.
    stats = h.sim.stats();
    ({ campaignId: identicalId } = await launch(h, identicalSpec));
    identical = await waitDone(h, identicalId, 60_000);
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  it('completes two iterations: M0 → M1 → M2, each made by a contrast fine-tune', async () => {
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => [m.label, m.parent, m.stage, m.iteration])).toEqual([
      ['M0', null, null, null],
      ['M1', 'M0', 'contrast', 1],
      ['M2', 'M1', 'contrast', 2],
    ]);
    const runs = await h.clients.db
      .selectFrom('stage_runs')
      .selectAll()
      .where('campaign_id', '=', campaignId)
      .orderBy('iteration')
      .execute();
    expect(runs.map((r) => [r.stage, r.iteration, r.status, r.model_in])).toEqual([
      ['contrast', 1, 'completed', 'M0'],
      ['contrast', 2, 'completed', 'M1'],
    ]);
    const pairs = await pairsOf(h, campaignId);
    for (const r of runs) {
      const mine = pairs.filter((p) => p.iteration === r.iteration);
      expect(r.metrics).toMatchObject({
        records: QUESTIONS,
        pairs: QUESTIONS,
        kept: mine.filter((p) => p.kept).length,
        droppedNearIdentical: mine.filter((p) => p.drop_reason === 'near-identical').length,
        droppedCritique: 0,
      });
    }
  });

  it('sends vLLM beam search (use_beam_search, n = width, temperature 0, length_penalty) and greedy decodes', async () => {
    const served = new Map(final.lineage.map((m) => [m.label, m.servedModel]));
    const answers = stats.recent.filter((r) => r.task === 'answer' && r.status === 200);
    const beams = answers.filter((r) => r.use_beam_search === true);
    expect(beams).toHaveLength(2 * QUESTIONS);
    for (const r of beams) {
      expect(r).toMatchObject({ n: BEAM_WIDTH, temperature: 0, length_penalty: LENGTH_PENALTY });
    }
    const greedy = answers.filter((r) => r.use_beam_search === undefined);
    expect(greedy).toHaveLength(2 * QUESTIONS);
    for (const r of greedy) expect(r).toMatchObject({ n: 1, temperature: 0 });
    // Each iteration decodes with the current model: M0's then M1's.
    for (const list of [beams, greedy]) {
      expect(list.filter((r) => r.model === served.get('M0'))).toHaveLength(QUESTIONS);
      expect(list.filter((r) => r.model === served.get('M1'))).toHaveLength(QUESTIONS);
    }
    expect(served.get('M1')).not.toBe(served.get('M0'));
  });

  it('keeps one pair per question and iteration: chosen = best beam, rejected = greedy', async () => {
    const pairs = await pairsOf(h, campaignId);
    expect(pairs).toHaveLength(2 * QUESTIONS);
    const ids = (await exampleQuestions(QUESTIONS)).map((q) => q.id).sort();
    for (const iteration of [1, 2]) {
      expect(pairs.filter((p) => p.iteration === iteration).map((p) => p.question_id)).toEqual(ids);
    }
    const calls = await callsById(
      h,
      pairs.flatMap((p) => [p.greedy_call_id, p.high_call_id]),
    );
    for (const p of pairs) {
      expect(p.method).toBe('beam');
      expect(p.model_in).toBe(final.lineage[p.iteration - 1]?.servedModel);
      const high = calls.get(p.high_call_id)!;
      const greedy = calls.get(p.greedy_call_id)!;
      expect(high.purpose).toBe('beam-search');
      expect(high.request).toMatchObject({ use_beam_search: true, n: BEAM_WIDTH, temperature: 0 });
      expect(high.response?.choices).toHaveLength(BEAM_WIDTH);
      expect(p.chosen).toBe(high.response?.choices[0]);
      expect(greedy.purpose).toBe('greedy');
      expect(greedy.request).toMatchObject({ n: 1, temperature: 0 });
      expect(p.rejected).toBe(greedy.response?.choices[0]);
      expect(p.chosen).not.toBe(p.rejected);
      expect(p.critique_call_ids).toEqual([]);
      expect(p.critique_agrees).toBeNull();
    }
  });

  it('drops near-identical pairs (similarity ≥ maxSimilarity; identical = 1) and keeps the others', async () => {
    for (const p of await pairsOf(h, campaignId)) {
      expect(p.similarity).toBeCloseTo(tokenJaccard(p.chosen, p.rejected), 10);
      const near = p.similarity >= MAX_SIMILARITY;
      expect(p.kept).toBe(!near);
      expect(p.drop_reason).toBe(near ? 'near-identical' : null);
    }
    const same = await pairsOf(h, identicalId);
    expect(same).toHaveLength(3);
    for (const p of same) {
      expect(p.chosen).toBe(p.rejected);
      expect(p).toMatchObject({
        similarity: 1,
        kept: false,
        drop_reason: 'near-identical',
        critique_agrees: null,
      });
    }
    const run = await h.clients.db
      .selectFrom('stage_runs')
      .select('metrics')
      .where('campaign_id', '=', identicalId)
      .where('stage', '=', 'contrast')
      .executeTakeFirstOrThrow();
    expect(run.metrics).toMatchObject({ pairs: 3, kept: 0, droppedNearIdentical: 3, meanSimilarity: 1 });
    // Nothing was learned from nothing: no model came out of an iteration without pairs.
    expect(identical.lineage.map((m) => m.label)).toEqual(['M0']);
    const rows = await h.clients.db
      .selectFrom('datasets')
      .select('rows')
      .where('campaign_id', '=', identicalId)
      .execute();
    expect(rows.map((r) => r.rows)).toEqual([0, 0, 0]);
  });

  it('exports the kept pairs as preference datasets that parse as OpenAI DPO, TRL and LLaMA-Factory', async () => {
    const pairs = await pairsOf(h, campaignId);
    for (const iteration of [1, 2]) {
      const kept = pairs.filter((p) => p.iteration === iteration && p.kept);
      expect(kept.length).toBeGreaterThan(0);
      const datasets = await h.clients.db
        .selectFrom('datasets')
        .selectAll()
        .where('campaign_id', '=', campaignId)
        .where('stage', '=', 'contrast')
        .where('iteration', '=', iteration)
        .execute();
      expect(datasets.map((d) => d.format).sort()).toEqual([...PREFERENCE_FORMATS].sort());
      for (const ds of datasets) {
        const format = ds.format as (typeof PREFERENCE_FORMATS)[number];
        expect(ds.kind).toBe('preference');
        expect(ds.rows).toBe(kept.length);
        const lines = (await readFile(fileURLToPath(ds.uri), 'utf8')).split('\n').filter((l) => l !== '');
        expect(lines).toHaveLength(kept.length);
        const got = lines.map((l) => {
          const raw = JSON.parse(l) as unknown;
          expect(PREFERENCE_LINE_SCHEMAS[format].safeParse(raw).error).toBeUndefined();
          return chosenRejected(format, raw);
        });
        expect(got.sort((a, b) => a.chosen.localeCompare(b.chosen))).toEqual(
          kept
            .map((p) => ({ chosen: p.chosen, rejected: p.rejected }))
            .sort((a, b) => a.chosen.localeCompare(b.chosen)),
        );
      }
    }
  });

  it('fine-tunes with kind preference and the DPO loss (TRL sigmoid, LLaMA-Factory sigmoid)', async () => {
    for (const iteration of [1, 2]) {
      const { job, trl, trlText, llamafactory } = await trainerConfigs(h, campaignId, iteration);
      expect(job.status).toBe('succeeded');
      // Dataclass fields only (TRL's CLI stops at an unknown key); the command is a comment.
      expect(trlText).toContain('# Run: trl dpo --config trl.yaml');
      expect(trl).not.toHaveProperty('command');
      expect(trl).toMatchObject({ loss_type: 'sigmoid' });
      expect(llamafactory).toMatchObject({ stage: 'dpo', pref_loss: 'sigmoid' });
      const info = JSON.parse(
        await readFile(path.join(String(llamafactory.dataset_dir), 'dataset_info.json'), 'utf8'),
      ) as { meteor: { ranking?: boolean } };
      expect(info.meteor.ranking).toBe(true);
      const log = await readFile(path.join(String(job.job_dir), 'train.log'), 'utf8');
      expect(log).toContain('[simulated trainer]');
    }
  });

  it('audits every pair with the ids of the calls that made it', async () => {
    const lines: Array<Record<string, unknown>> = [];
    for await (const line of auditRecords(h.clients.db, campaignId, 'contrast')) lines.push(line);
    expect(lines).toHaveLength(2 * QUESTIONS);
    const ids = lines.flatMap((l) => {
      const c = l.llmCallIds as { greedy: string; high: string; critiques: string[] };
      expect(c.critiques).toEqual([]);
      return [c.greedy, c.high];
    });
    const calls = await callsById(h, ids);
    expect(calls.size).toBe(ids.length);
    for (const l of lines) {
      expect(l).toMatchObject({ stage: 'contrast', method: 'beam' });
      expect(typeof l.kept).toBe('boolean');
    }
  });
});

describe('contrast stage with best-of-N on a server without beam search', () => {
  let h: Harness;
  let campaignId: string;
  let final: CampaignStatusView;
  let beamCampaign: CampaignStatusView;

  beforeAll(async () => {
    h = await startHarness({ rejectBeamSearch: true });
    const train = await trainFile(h, QUESTIONS);
    const spec = await writeSpec(h, {
      questions: { train },
      stages: {
        distill: { enabled: false },
        contrast: {
          enabled: true,
          iterations: 1,
          method: 'best-of-n',
          samples: SAMPLES,
          sampleTemperature: SAMPLE_TEMPERATURE,
          maxSimilarity: 0.95,
          requireSelfCritique: true,
          loss: 'simpo',
        },
      },
    });
    // The same server with method 'beam': a configuration error, said as one.
    const beamSpec = await writeSpec(h, {
      name: 'k8s-beam-refused',
      questions: { train: await trainFile(h, 2) },
      stages: { distill: { enabled: false }, contrast: { enabled: true, iterations: 1, method: 'beam' } },
    });
    const [a, b] = await Promise.all([launch(h, spec), launch(h, beamSpec)]);
    campaignId = a.campaignId;
    [final, beamCampaign] = await Promise.all([
      waitDone(h, a.campaignId, 90_000),
      waitDone(h, b.campaignId, 90_000),
    ]);
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  it('completes with one preference fine-tune: M0 → M1', () => {
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => [m.label, m.parent, m.stage])).toEqual([
      ['M0', null, null],
      ['M1', 'M0', 'contrast'],
    ]);
  });

  it('fails a beam campaign on that server fast, saying to use best-of-n', () => {
    expect(beamCampaign.state).toBe('failed');
    expect(beamCampaign.error).toMatch(/use_beam_search/);
    expect(beamCampaign.error).toMatch(/best-of-n/);
    const refused = h.sim.stats().recent.filter((r) => r.use_beam_search === true);
    // Non-retryable: one request per question of the failing batch, no retries.
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.length).toBeLessThanOrEqual(2);
    for (const r of refused) expect(r.status).toBe(400);
  });

  it('samples N at the sample temperature and has the model critique its own samples', () => {
    const served = final.lineage[0]!.servedModel;
    const recent = h.sim.stats().recent.filter((r) => r.model === served && r.status === 200);
    const samples = recent.filter((r) => r.task === 'answer' && r.temperature === SAMPLE_TEMPERATURE);
    expect(samples.length).toBeGreaterThanOrEqual(QUESTIONS);
    for (const r of samples) expect(r.n).toBe(SAMPLES);
    expect(
      recent.filter((r) => r.responseFormat === 'json_schema:self_critique').length,
    ).toBeGreaterThanOrEqual(QUESTIONS);
  });

  it('chooses the sample its own critique scores best, rejected = greedy', async () => {
    const pairs = await pairsOf(h, campaignId);
    expect(pairs).toHaveLength(QUESTIONS);
    const calls = await callsById(
      h,
      pairs.flatMap((p) => [p.greedy_call_id, p.high_call_id, ...p.critique_call_ids]),
    );
    for (const p of pairs) {
      expect(p.method).toBe('best-of-n');
      const high = calls.get(p.high_call_id)!;
      expect(high.purpose).toBe('best-of-n');
      expect(high.request).toMatchObject({ n: SAMPLES, temperature: SAMPLE_TEMPERATURE });
      expect(high.request).not.toHaveProperty('use_beam_search');
      const samples = high.response?.choices ?? [];
      expect(samples).toContain(p.chosen);
      expect(p.rejected).toBe(calls.get(p.greedy_call_id)?.response?.choices[0]);

      const critiques = p.critique_call_ids.map((id) => calls.get(id)!);
      const scored = critiques.filter((c) => c.purpose === 'self-critique');
      // One critique per distinct sample, by the current model.
      expect(scored).toHaveLength(new Set(samples.filter((s) => s.trim() !== '')).size);
      const scoreOf = new Map(
        scored.map((c) => {
          const answer = /\nAnswer:\n([\s\S]*)$/.exec(
            (c.request.messages as Array<{ content: string }>)[1]!.content,
          )?.[1];
          const score = (JSON.parse(c.response!.choices[0]!) as { score: number }).score;
          return [answer, score] as const;
        }),
      );
      expect(scoreOf.get(p.chosen)).toBe(Math.max(...scoreOf.values()));
      for (const c of critiques) expect(c.model).toBe(final.lineage[0]!.servedModel);

      const pairwise = critiques.filter((c) => c.purpose === 'pairwise-self-critique');
      if (p.drop_reason === 'near-identical') {
        expect(pairwise).toHaveLength(0);
        expect(p.critique_agrees).toBeNull();
      } else {
        expect(pairwise).toHaveLength(1);
        expect(p.critique_agrees).not.toBeNull();
        expect(p.kept).toBe(p.critique_agrees);
        if (!p.kept) expect(p.drop_reason).toBe('critique-disagrees');
      }
    }
    expect(pairs.some((p) => p.kept)).toBe(true);
  });

  it('fine-tunes with the SimPO loss (TRL CPO simpo, LLaMA-Factory simpo) on the kept pairs', async () => {
    const { job, trl, trlText, llamafactory } = await trainerConfigs(h, campaignId, 1);
    expect(job.status).toBe('succeeded');
    // SimPO is reference-free: TRL's CPO trainer with loss_type simpo and no BC term.
    expect(trlText).toContain('CPOTrainer');
    expect(trl).toMatchObject({ loss_type: 'simpo', cpo_alpha: 0 });
    expect(llamafactory).toMatchObject({ stage: 'dpo', pref_loss: 'simpo' });
    const kept = (await pairsOf(h, campaignId)).filter((p) => p.kept).length;
    const ds = await h.clients.db
      .selectFrom('datasets')
      .select(['format', 'rows'])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'contrast')
      .execute();
    expect(ds.map((d) => d.rows)).toEqual([kept, kept, kept]);
  });
});
