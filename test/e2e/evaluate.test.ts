/**
 * The evaluation end to end on the simulator: distill (12 questions) → M1, then the 16 held-out
 * questions answered by M0 and M1 and judged twice per pair with the positions swapped.
 *
 * - the judgments exist in the expected counts, each leading to its LLM calls, and a rerun of a
 *   batch redoes nothing (a lost judgment is redone from the logged calls, paying for nothing);
 * - the report's numbers, recomputed here from the judgment and answer rows, match buildReport;
 * - a position-biased judge (always prefers answer A) yields ties, not wins;
 * - malformed judge replies are asked again (attempts > 1), the ones that never parse are
 *   recorded as unparseable with their raw text and count as ties, and the stage completes.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateActivities } from '../../stages/evaluate/batch';
import { buildReport, type CampaignReport } from '../../client/report';
import { LlmGateway } from '../../core/llm/gateway';
import { auditRecords } from '../../core/records';
import type { BatchResult } from '../../workflows/types';
import {
  EXAMPLE_EVAL,
  exampleQuestions,
  launch,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type CampaignStatusView,
  type Harness,
  countRows,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';

const TRAIN = 12;
const EVAL = 16;
const DIMS = ['accuracy', 'completeness', 'relevance', 'coherence', 'reliability'] as const;

type Verdict = 'model' | 'base' | 'tie';
interface Row {
  model_label: string;
  question_id: string;
  position: 'model-first' | 'base-first';
  status: string;
  verdicts: Record<string, Verdict> | null;
  scores: { model: Record<string, number>; base: Record<string, number> } | null;
  attempts: number;
  raw_text: string;
  judge_model: string;
  prompt_version: string;
  call_id: string;
}

let h: Harness;
let trainFile: string;

beforeAll(async () => {
  h = await startHarness();
  trainFile = await writeQuestions(h.tmp, 'train.jsonl', await exampleQuestions(TRAIN));
}, 60_000);

afterAll(async () => {
  await h?.close();
});

async function runCampaign(overrides: Record<string, unknown> = {}): Promise<CampaignStatusView> {
  const spec = await writeSpec(h, {
    questions: { train: trainFile, eval: EXAMPLE_EVAL },
    stages: { evaluate: { enabled: true, ...overrides } },
  });
  const { campaignId } = await launch(h, spec);
  return waitDone(h, campaignId, 100_000);
}

function judgmentRows(campaignId: string): Promise<Row[]> {
  return h.clients.db
    .selectFrom('judgments')
    .select([
      'model_label',
      'question_id',
      'position',
      'status',
      'verdicts',
      'scores',
      'attempts',
      'raw_text',
      'judge_model',
      'prompt_version',
      'call_id',
    ])
    .where('campaign_id', '=', campaignId)
    .execute();
}

/** The evaluation recomputed from the rows, written out independently of core/evaluation/stats.ts. */
async function recompute(campaignId: string) {
  const rows = await judgmentRows(campaignId);
  const answers = await h.clients.db
    .selectFrom('eval_answers')
    .select(['model_label', 'question_id', 'answer'])
    .where('campaign_id', '=', campaignId)
    .execute();
  const words = (t: string) => t.split(/\s+/).filter((w) => w !== '').length;
  const out: Record<string, unknown> = {};
  for (const label of [...new Set(rows.map((r) => r.model_label))]) {
    const mine = rows.filter((r) => r.model_label === label);
    const questions = [...new Set(mine.map((r) => r.question_id))];
    const side = (q: string, pos: string, dim: string): Verdict | null => {
      const r = mine.find((x) => x.question_id === q && x.position === pos);
      return r && r.status === 'ok' && r.verdicts ? (r.verdicts[dim] ?? null) : null;
    };
    const dims: Record<string, unknown> = {};
    for (const dim of DIMS) {
      let wins = 0;
      let ties = 0;
      let losses = 0;
      for (const q of questions) {
        const a = side(q, 'model-first', dim);
        const b = side(q, 'base-first', dim);
        if (a === 'model' && b === 'model') wins++;
        else if (a === 'base' && b === 'base') losses++;
        else ties++;
      }
      const n = questions.length;
      dims[dim] = { wins, ties, losses, n, winRate: wins / n, tieAdjustedWinRate: (wins + ties / 2) / n };
    }
    const parsed = mine.filter((r) => r.status === 'ok');
    const avg = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const lengthOf = (l: string) =>
      avg(
        questions.map((q) => words(answers.find((a) => a.model_label === l && a.question_id === q)!.answer)),
      );
    out[label] = {
      dims,
      overall: {
        model: avg(parsed.map((r) => r.scores!.model.overall!)),
        base: avg(parsed.map((r) => r.scores!.base.overall!)),
      },
      length: { model: lengthOf(label), base: lengthOf('M0') },
    };
  }
  return out;
}

/** buildReport's evaluation in the shape of recompute(). */
function reported(report: CampaignReport) {
  const out: Record<string, unknown> = {};
  for (const m of report.evaluation?.models ?? []) {
    out[m.modelLabel] = {
      dims: Object.fromEntries(
        m.dimensions.map((d) => [
          d.dimension,
          {
            wins: d.wins,
            ties: d.ties,
            losses: d.losses,
            n: d.n,
            winRate: d.winRate,
            tieAdjustedWinRate: d.tieAdjustedWinRate,
          },
        ]),
      ),
      overall: m.overallScore,
      length: m.meanLength,
    };
  }
  return out;
}

describe('evaluation on the simulator (unbiased judge)', () => {
  let final: CampaignStatusView;
  let id: string;

  beforeAll(async () => {
    final = await runCampaign();
    id = final.campaignId;
  }, 120_000);

  it('completes: distill → M1, then the evaluation with eval questions × candidates × 2 judgments', async () => {
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => m.label)).toEqual(['M0', 'M1']);
    const ev = final.stages.find((s) => s.stage === 'evaluate');
    expect(ev).toMatchObject({ status: 'completed', total: EVAL, records: EVAL * 1 * 2 });

    const rows = await judgmentRows(id);
    expect(rows).toHaveLength(EVAL * 1 * 2);
    const keys = new Set(rows.map((r) => `${r.model_label}|${r.question_id}|${r.position}`));
    expect(keys.size).toBe(EVAL * 2);
    expect(rows.filter((r) => r.position === 'model-first')).toHaveLength(EVAL);
    for (const r of rows) {
      expect(r).toMatchObject({
        model_label: 'M1',
        status: 'ok',
        judge_model: 'sim-judge',
        prompt_version: 'pairwise-judge.v1',
      });
      expect(Object.keys(r.verdicts!).sort()).toEqual([...DIMS, 'overall'].sort());
      expect(r.scores!.model.overall).toBeGreaterThanOrEqual(1);
      expect(r.scores!.base.overall).toBeLessThanOrEqual(10);
      expect(() => JSON.parse(r.raw_text) as unknown).not.toThrow();
    }
    const answers = await h.clients.db
      .selectFrom('eval_answers')
      .select(['model_label', 'served_model'])
      .where('campaign_id', '=', id)
      .execute();
    expect(answers.filter((a) => a.model_label === 'M0')).toHaveLength(EVAL);
    expect(answers.filter((a) => a.model_label === 'M1')).toHaveLength(EVAL);
    expect(new Set(answers.filter((a) => a.model_label === 'M0').map((a) => a.served_model))).toEqual(
      new Set(['sim-weak-8b']),
    );
    expect(new Set(answers.filter((a) => a.model_label === 'M1').map((a) => a.served_model))).toEqual(
      new Set([final.lineage[1]!.servedModel]),
    );

    const run = await h.clients.db
      .selectFrom('stage_runs')
      .select(['status', 'metrics'])
      .where('campaign_id', '=', id)
      .where('stage', '=', 'evaluate')
      .executeTakeFirstOrThrow();
    expect(run.status).toBe('completed');
    expect(run.metrics).toMatchObject({ records: 32, judgments: 32, unparseable: 0, answers: 32 });
  });

  it("the report's numbers match a recomputation from the judgment rows", async () => {
    const report = await buildReport(h.clients.db, id);
    expect(report.simulated).toBe(true);
    expect(report.simulationNotice).toMatch(/simulat/i);
    expect(report.evaluation).not.toBeNull();
    const ev = report.evaluation!;
    expect(ev).toMatchObject({ baseModel: 'M0', evalQuestions: EVAL, judgeModels: ['sim-judge'] });
    const mine = await recompute(id);
    const theirs = reported(report);
    expect(Object.keys(theirs)).toEqual(['M1']);
    // toEqual on floats computed in another order: compare with a tolerance.
    const flat = (o: unknown, p = ''): Array<[string, unknown]> =>
      o !== null && typeof o === 'object'
        ? Object.entries(o).flatMap(([k, v]) => flat(v, `${p}.${k}`))
        : [[p, o]];
    const a = new Map(flat(mine));
    const b = new Map(flat(theirs));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [k, v] of a) {
      if (typeof v === 'number') expect(b.get(k), k).toBeCloseTo(v, 9);
      else expect(b.get(k), k).toEqual(v);
    }
    // The CI brackets the tie-adjusted win rate and is reproducible (seeded).
    const again = await buildReport(h.clients.db, id);
    for (const [i, d] of ev.models[0]!.dimensions.entries()) {
      expect(d.ci).not.toBeNull();
      expect(d.ci!.lo).toBeLessThanOrEqual(d.tieAdjustedWinRate!);
      expect(d.ci!.hi).toBeGreaterThanOrEqual(d.tieAdjustedWinRate!);
      expect(again.evaluation!.models[0]!.dimensions[i]!.ci).toEqual(d.ci);
    }
    // The simulated fine-tune knows more than the base model, and the judge (unbiased) sees it:
    // a sign that verdicts are mapped to the right side in both positions.
    const acc = ev.models[0]!.dimensions.find((d) => d.dimension === 'accuracy')!;
    expect(acc.wins).toBeGreaterThan(acc.losses);

    // Per stage: records, dataset rows, tokens and cost, as the database has them.
    const evalStage = report.stages.find((s) => s.stage === 'evaluate')!;
    const distill = report.stages.find((s) => s.stage === 'distill')!;
    expect(distill).toMatchObject({ records: TRAIN, datasetRows: TRAIN, modelIn: 'M0', modelOut: 'M1' });
    expect(evalStage).toMatchObject({ records: EVAL * 2, datasetRows: null, status: 'completed' });
    const calls = await h.clients.db
      .selectFrom('llm_calls')
      .select(['prompt_tokens', 'completion_tokens', 'cost_usd', 'purpose'])
      .where('campaign_id', '=', id)
      .where('stage', '=', 'evaluate')
      .where('status', '=', 'ok')
      .execute();
    expect(evalStage.calls).toBe(calls.length);
    expect(calls.filter((c) => c.purpose === 'pairwise-judgment')).toHaveLength(EVAL * 2);
    expect(evalStage.promptTokens).toBe(calls.reduce((s, c) => s + c.prompt_tokens, 0));
    expect(evalStage.completionTokens).toBe(calls.reduce((s, c) => s + c.completion_tokens, 0));
    expect(evalStage.costUsd).toBeCloseTo(
      calls.reduce((s, c) => s + c.cost_usd, 0),
      9,
    );
    expect(report.lineage.map((n) => [n.label, n.parent])).toEqual([
      ['M0', null],
      ['M1', 'M0'],
    ]);
  });

  it('audits every judgment with the question, both answers, the raw text and its LLM calls', async () => {
    const lines: Array<Record<string, unknown>> = [];
    for await (const line of auditRecords(h.clients.db, id, 'evaluate')) lines.push(line);
    expect(lines).toHaveLength(EVAL * 2);
    const callIds = new Set<string>();
    for (const l of lines) {
      expect(l).toMatchObject({
        stage: 'evaluate',
        judgeModel: 'sim-judge',
        promptVersion: 'pairwise-judge.v1',
      });
      expect(typeof l.question).toBe('string');
      expect(typeof l.rawText).toBe('string');
      const model = l.model as { label: string; answer: string };
      const base = l.base as { label: string; answer: string };
      expect(model.label).toBe('M1');
      expect(base.label).toBe('M0');
      expect(model.answer.length).toBeGreaterThan(0);
      expect(base.answer.length).toBeGreaterThan(0);
      const ids = l.llmCallIds as Record<string, string | null>;
      for (const k of ['judge', 'modelAnswer', 'baseAnswer']) {
        expect(ids[k], k).toBeTruthy();
        callIds.add(String(ids[k]));
      }
    }
    const calls = await h.clients.db
      .selectFrom('llm_calls')
      .select(['id', 'stage', 'purpose'])
      .where('id', 'in', [...callIds])
      .execute();
    expect(calls).toHaveLength(callIds.size);
    expect(new Set(calls.map((c) => c.stage))).toEqual(new Set(['evaluate']));
    expect(new Set(calls.map((c) => c.purpose))).toEqual(
      new Set(['pairwise-judgment', 'eval-answer', 'eval-answer-base']),
    );
  });

  it("probes self-correction per model: a revision after SCoRe's instruction, both attempts judged, the metrics recomputed from the rows", async () => {
    const { db } = h.clients;
    const probes = await db
      .selectFrom('self_corrections')
      .selectAll()
      .where('campaign_id', '=', id)
      .orderBy('model_label')
      .orderBy('question_id')
      .execute();
    // The base model and the candidate, on every held-out question.
    expect(probes.filter((p) => p.model_label === 'M0')).toHaveLength(EVAL);
    expect(probes.filter((p) => p.model_label === 'M1')).toHaveLength(EVAL);
    const answers = await db
      .selectFrom('eval_answers')
      .select(['model_label', 'question_id', 'answer', 'served_model'])
      .where('campaign_id', '=', id)
      .execute();
    const calls = new Map(
      (
        await db
          .selectFrom('llm_calls')
          .select(['id', 'purpose', 'role', 'stage', 'request'])
          .where(
            'id',
            'in',
            probes.flatMap((p) => [p.revision_call_id, p.verdict_t1_call_id, p.verdict_t2_call_id]),
          )
          .execute()
      ).map((c) => [String(c.id), c]),
    );
    type Req = { model: string; messages: Array<{ role: string; content: string }> };
    const instructions = new Set<string>();
    for (const p of probes) {
      const first = answers.find((a) => a.model_label === p.model_label && a.question_id === p.question_id)!;
      const revision = calls.get(String(p.revision_call_id))!;
      expect(revision).toMatchObject({ purpose: 'self-revision', role: 'weak', stage: 'evaluate' });
      const req = revision.request as Req;
      // The model revises its own evaluation answer, as the model it is, told nothing of its verdict.
      expect(req.model).toBe(first.served_model);
      expect(req.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
      expect(req.messages[2]!.content).toBe(first.answer);
      instructions.add(req.messages[3]!.content);
      expect(p.revision.length).toBeGreaterThan(0);
      // Each attempt judged by the strong model: attempt 1 is the evaluation answer, 2 the revision.
      for (const [callId, text] of [
        [p.verdict_t1_call_id, first.answer],
        [p.verdict_t2_call_id, p.revision],
      ] as const) {
        const v = calls.get(String(callId))!;
        expect(v).toMatchObject({ purpose: 'self-correction-verdict', role: 'strong' });
        expect((v.request as Req).messages.at(-1)!.content).toContain(text);
      }
      expect(['correct', 'incorrect']).toContain(p.verdict_t1);
      expect(['correct', 'incorrect']).toContain(p.verdict_t2);
    }
    // One instruction for every question and model: it cannot tell a model whether it was right.
    expect(instructions.size).toBe(1);
    expect([...instructions][0]).toMatch(/might be an error/);

    // The report's SCoRe metrics, recomputed here from the rows.
    const report = await buildReport(db, id);
    const recount = (label: string) => {
      const mine = probes.filter((p) => p.model_label === label);
      const right = (v: string) => v === 'correct';
      const share = (f: (p: (typeof mine)[number]) => boolean) => mine.filter(f).length / mine.length;
      return {
        n: mine.length,
        accT1: share((p) => right(p.verdict_t1)),
        accT2: share((p) => right(p.verdict_t2)),
        delta: share((p) => right(p.verdict_t2)) - share((p) => right(p.verdict_t1)),
        deltaIC: share((p) => !right(p.verdict_t1) && right(p.verdict_t2)),
        deltaCI: share((p) => right(p.verdict_t1) && !right(p.verdict_t2)),
      };
    };
    const ev = report.evaluation!;
    for (const [label, got] of [
      ['M0', ev.baseSelfCorrection],
      ['M1', ev.models[0]!.selfCorrection],
    ] as const) {
      expect(got, label).not.toBeNull();
      const want = recount(label);
      expect(got!.n).toBe(want.n);
      for (const m of ['accT1', 'accT2', 'delta', 'deltaIC', 'deltaCI'] as const) {
        expect(got![m], `${label} ${m}`).toBeCloseTo(want[m], 9);
        expect(got!.ci[m].lo).toBeLessThanOrEqual(got![m]);
        expect(got!.ci[m].hi).toBeGreaterThanOrEqual(got![m]);
      }
    }
    // The simulated fine-tune learned the training answers; its first attempts are more often right.
    expect(ev.models[0]!.selfCorrection!.accT1).toBeGreaterThanOrEqual(ev.baseSelfCorrection!.accT1);

    // The audit line of each judgment carries both models' probes on its question.
    for await (const line of auditRecords(db, id, 'evaluate')) {
      for (const side of ['model', 'base'] as const) {
        const who = line[side] as { label: string; selfCorrection: { llmCallIds: Record<string, string> } };
        const p = probes.find((x) => x.model_label === who.label && x.question_id === line.questionId)!;
        expect(who.selfCorrection.llmCallIds).toEqual({
          revision: String(p.revision_call_id),
          verdictT1: String(p.verdict_t1_call_id),
          verdictT2: String(p.verdict_t2_call_id),
        });
      }
    }
  });

  it('a rerun redoes nothing; a lost judgment is redone from the logged calls', async () => {
    const { db } = h.clients;
    const acts = evaluateActivities({
      db,
      llm: new LlmGateway(db),
      artifactsDir: h.artifactsDir,
      env: {},
      hostId: 'test',
    });
    const m1 = final.lineage[1]!;
    const batch = {
      campaignId: id,
      iteration: 1,
      modelIn: 'sim-weak-8b',
      candidates: [{ label: 'M1', servedModel: m1.servedModel }],
      offset: 0,
      limit: EVAL,
      withTotals: true,
    };
    const callCount = () => countRows(h, 'llm_calls', id);
    const before = await callCount();
    const servedBefore = h.sim.stats().served;
    const again: BatchResult = await new MockActivityEnvironment().run(acts.evaluateBatch, batch);
    expect(again).toMatchObject({ processed: EVAL, created: 0, stageTotals: { records: EVAL * 2 } });

    const lost = await db
      .deleteFrom('judgments')
      .where('campaign_id', '=', id)
      .where('position', '=', 'base-first')
      .where(
        'question_id',
        'in',
        (await judgmentRows(id)).slice(0, 3).map((r) => r.question_id),
      )
      .returning(['question_id', 'raw_text'])
      .execute();
    expect(lost.length).toBeGreaterThan(0);
    const redo: BatchResult = await new MockActivityEnvironment().run(acts.evaluateBatch, batch);
    expect(redo).toMatchObject({ processed: EVAL, created: lost.length, stageTotals: { records: EVAL * 2 } });
    // Same requests → the logged calls are reused: the server answered nothing new, and nothing
    // of this campaign was paid twice by its own count of requests by content.
    expect(h.sim.stats().served).toBe(servedBefore);
    expect(await paidTwice(h, [id])).toEqual([]);
    expect(await callCount()).toBe(before);
    const rows = await judgmentRows(id);
    expect(rows).toHaveLength(EVAL * 2);
    for (const l of lost) {
      expect(rows.find((r) => r.question_id === l.question_id && r.position === 'base-first')?.raw_text).toBe(
        l.raw_text,
      );
    }
  });
});

describe('a position-biased judge', () => {
  let final: CampaignStatusView;

  beforeAll(async () => {
    h.sim.setBehaviour({ judgeBias: 'first' });
    try {
      final = await runCampaign();
    } finally {
      h.sim.setBehaviour({ judgeBias: null });
    }
  }, 120_000);

  it('prefers answer A whatever it is: each order contradicts the other, so every pair is a tie', async () => {
    expect(final.state).toBe('completed');
    const rows = await judgmentRows(final.campaignId);
    expect(rows).toHaveLength(EVAL * 2);
    // The judge's bias is there in the raw verdicts...
    for (const r of rows) {
      const want = r.position === 'model-first' ? 'model' : 'base';
      for (const d of DIMS) expect(r.verdicts![d]).toBe(want);
    }
    // ...and the swap turns it into ties, not wins.
    const report = await buildReport(h.clients.db, final.campaignId);
    const m = report.evaluation!.models[0]!;
    for (const d of m.dimensions) {
      expect(d).toMatchObject({
        wins: 0,
        losses: 0,
        ties: EVAL,
        n: EVAL,
        winRate: 0,
        tieAdjustedWinRate: 0.5,
      });
    }
    expect(reported(report)).toEqual(await recompute(final.campaignId));
  });
});

describe('malformed judge replies', () => {
  let final: CampaignStatusView;
  let malformed = 0;

  beforeAll(async () => {
    h.sim.reset();
    h.sim.setBehaviour({ malformedRate: { pairwise_judgment: 0.5 } });
    try {
      // Two asks per judgment: with half the replies malformed, some judgments never parse.
      final = await runCampaign({ judgeAttempts: 2 });
      malformed = h.sim.stats().malformed['pairwise_judgment'] ?? 0;
    } finally {
      h.sim.setBehaviour({ malformedRate: { pairwise_judgment: 0 } });
    }
  }, 120_000);

  it('asks again, records what never parsed with its raw text, and completes', async () => {
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(malformed).toBeGreaterThan(0);
    const rows = await judgmentRows(final.campaignId);
    expect(rows).toHaveLength(EVAL * 2);
    const retried = rows.filter((r) => r.attempts > 1);
    expect(retried.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.attempts).toBeLessThanOrEqual(2);

    const bad = rows.filter((r) => r.status === 'unparseable');
    expect(bad.length).toBeGreaterThan(0);
    for (const r of bad) {
      expect(r.attempts).toBe(2);
      expect(r.verdicts).toBeNull();
      expect(r.scores).toBeNull();
      expect(r.raw_text.length).toBeGreaterThan(0);
      // The raw text kept is the malformed reply itself.
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(r.raw_text);
      } catch {
        parsed = null;
      }
      const ok =
        parsed !== null &&
        typeof parsed === 'object' &&
        ['explanation', 'dimensions', 'winner', 'scores'].every((k) => k in parsed);
      expect(ok).toBe(false);
    }
    // Every ask is in the call log: more judge calls than judgments.
    const judgeCalls = await h.clients.db
      .selectFrom('llm_calls')
      .select('id')
      .where('campaign_id', '=', final.campaignId)
      .where('purpose', '=', 'pairwise-judgment')
      .where('status', '=', 'ok')
      .execute();
    expect(judgeCalls.length).toBe(rows.reduce((s, r) => s + r.attempts, 0));

    const run = await h.clients.db
      .selectFrom('stage_runs')
      .select('metrics')
      .where('campaign_id', '=', final.campaignId)
      .where('stage', '=', 'evaluate')
      .executeTakeFirstOrThrow();
    expect(run.metrics).toMatchObject({ judgments: EVAL * 2, unparseable: bad.length });

    // The report counts them as ties and says how many there were.
    const report = await buildReport(h.clients.db, final.campaignId);
    expect(report.evaluation!.models[0]!.unparseableJudgments).toBe(bad.length);
    const mine = await recompute(final.campaignId);
    const theirs = reported(report) as Record<string, { dims: unknown }>;
    expect(theirs['M1']!.dims).toEqual((mine as Record<string, { dims: unknown }>)['M1']!.dims);
  });
});
