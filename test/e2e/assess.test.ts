/**
 * Stage 2 (self-assessment) end to end: rounds stop at maxRounds, never-correct questions stay
 * out of the dataset unless `unsolved: distilled-answer`, critique examples add rows, malformed
 * critic replies are asked again and recorded, each iteration fine-tunes and the next one uses
 * the new model, the audit leads to the LLM calls, and a retried batch redoes nothing.
 *
 * Two questions are crafted for the simulation (which does not know them): its critic judges
 * them against their reference; feedback names at most two missing sentences per round, so the
 * short one is solved on the re-answer and the long one (12 sentences) never is in 3 rounds.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assessActivities } from '../../stages/assess/batch';
import { buildReport } from '../../client/report';
import { LlmGateway } from '../../core/llm/gateway';
import { CRITIQUE_QUESTION } from '../../core/prompts';
import { auditRecords } from '../../core/records';
import type { BatchResult } from '../../workflows/types';
import {
  exampleQuestions,
  launch,
  startHarness,
  waitDone,
  writeQuestions,
  writeSpec,
  type CampaignStatusView,
  type ExampleQuestion,
  type Harness,
  countRows,
} from '../support/harness';
import { paidTwice } from '../support/paid-twice';

const LONG: ExampleQuestion = {
  id: 'assess-unknown-long',
  title: 'Quarterly rotation of the Vexmoor ingress certificates',
  question:
    'Our platform team runs an in-house controller called Vexmoor that rotates the ingress certificates ' +
    'every quarter. What is the full procedure we documented for the rotation, step by step?',
  reference: [
    'Freeze all Helm releases touching the gateway namespace during the maintenance window.',
    'Export the current Vexmoor keystore into the encrypted backup bucket named quarry.',
    'Generate fresh elliptic curve keys with the internal signing appliance called Tolvane.',
    'Submit the certificate signing requests through the Brightwell approval queue.',
    'Wait until two security officers countersign every request inside Brightwell.',
    'Upload the signed bundles into staging Secret objects labelled rotation-candidate.',
    'Run the Ostrava smoke suite against the staging listeners before promoting anything.',
    'Swap the production Secret references by patching the Gateway resources atomically.',
    'Watch handshake error rates on the Grafana board called lantern for thirty minutes.',
    'Revoke the retired serials at the upstream authority once traffic looks healthy.',
    'Purge cached copies of the retired keys from every sidecar by restarting the mesh agents.',
    'Record the completed rotation in the compliance ledger together with the ticket number.',
  ].join(' '),
};

const SHORT: ExampleQuestion = {
  id: 'assess-unknown-short',
  title: 'Resetting the Quillon build cache',
  question: 'How do we reset the Quillon build cache on our self-hosted CI runners?',
  reference:
    'Delete the quillon-cache PersistentVolumeClaim in the runners namespace. ' +
    'Then restart the quillon-agent DaemonSet so that it recreates the claim empty.',
};

const KNOWN = 6;
const TRAIN = KNOWN + 2;
const MAX_ROUNDS = 3;

interface Round {
  iteration: number;
  question_id: string;
  round: number;
  model_in: string;
  answer: string;
  verdict: 'correct' | 'incorrect' | 'unparseable';
  feedback: string | null;
  answer_call_id: string;
  verdict_call_id: string;
  verdict_attempts: number;
}

async function roundsOf(h: Harness, campaignId: string): Promise<Round[]> {
  return h.clients.db
    .selectFrom('assess_rounds')
    .select([
      'iteration',
      'question_id',
      'round',
      'model_in',
      'answer',
      'verdict',
      'feedback',
      'answer_call_id',
      'verdict_call_id',
      'verdict_attempts',
    ])
    .where('campaign_id', '=', campaignId)
    .orderBy('iteration')
    .orderBy('question_id')
    .orderBy('round')
    .execute();
}

/** Per (iteration, question): its rounds, in order. */
function byQuestion(rounds: Round[], iteration: number): Map<string, Round[]> {
  const out = new Map<string, Round[]>();
  for (const r of rounds.filter((x) => x.iteration === iteration)) {
    out.set(r.question_id, [...(out.get(r.question_id) ?? []), r]);
  }
  return out;
}

const solvedIds = (qs: Map<string, Round[]>) =>
  [...qs].filter(([, rs]) => rs[rs.length - 1]?.verdict === 'correct').map(([id]) => id);

interface SftLine {
  messages: Array<{ role: string; content: string }>;
}

async function datasetLines(h: Harness, campaignId: string, iteration: number): Promise<SftLine[]> {
  const ds = await h.clients.db
    .selectFrom('datasets')
    .select(['uri', 'rows'])
    .where('campaign_id', '=', campaignId)
    .where('stage', '=', 'assess')
    .where('iteration', '=', iteration)
    .where('format', '=', 'openai')
    .executeTakeFirstOrThrow();
  const lines = (await readFile(fileURLToPath(ds.uri), 'utf8')).split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(ds.rows);
  return lines.map((l) => JSON.parse(l) as SftLine);
}

const userOf = (l: SftLine) => l.messages.find((m) => m.role === 'user')?.content ?? '';
const assistantOf = (l: SftLine) => l.messages.find((m) => m.role === 'assistant')?.content ?? '';
const isCritique = (l: SftLine) => userOf(l).includes(CRITIQUE_QUESTION);
const mentions = (l: SftLine, q: ExampleQuestion) => userOf(l).includes(q.question);

describe('stage 2: self-assessment', () => {
  let h: Harness;
  let questions: ExampleQuestion[];
  let trainFile: string;
  let main: { campaignId: string; final: CampaignStatusView };
  let options: { campaignId: string; final: CampaignStatusView };

  beforeAll(async () => {
    h = await startHarness();
    questions = [...(await exampleQuestions(KNOWN)), LONG, SHORT];
    trainFile = await writeQuestions(h.tmp, 'assess-train.jsonl', questions);
    const common = { questions: { train: trainFile, eval: undefined } };
    // The defaults (the example spec turns critiques on): unsolved questions dropped, no critique examples.
    const mainSpec = await writeSpec(h, {
      ...common,
      stages: {
        assess: {
          enabled: true,
          iterations: 2,
          maxRounds: MAX_ROUNDS,
          batchSize: 3,
          unsolved: 'drop',
          includeCritiques: false,
        },
      },
    });
    const optionsSpec = await writeSpec(h, {
      ...common,
      stages: {
        assess: {
          enabled: true,
          iterations: 1,
          maxRounds: MAX_ROUNDS,
          batchSize: 3,
          unsolved: 'distilled-answer',
          includeCritiques: true,
        },
      },
    });
    const [a, b] = await Promise.all([launch(h, mainSpec), launch(h, optionsSpec)]);
    const [finalA, finalB] = await Promise.all([
      waitDone(h, a.campaignId, 150_000),
      waitDone(h, b.campaignId, 150_000),
    ]);
    main = { campaignId: a.campaignId, final: finalA };
    options = { campaignId: b.campaignId, final: finalB };
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  it('completes distill + 2 assess iterations with the lineage M0 → M1 → M2 → M3', async () => {
    const { final, campaignId } = main;
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => [m.label, m.parent, m.stage, m.iteration])).toEqual([
      ['M0', null, null, null],
      ['M1', 'M0', 'distill', 1],
      ['M2', 'M1', 'assess', 1],
      ['M3', 'M2', 'assess', 2],
    ]);
    for (const it of [1, 2]) {
      const entry = final.stages.find((s) => s.stage === 'assess' && s.iteration === it);
      expect(entry).toMatchObject({ status: 'completed', total: TRAIN, records: TRAIN });
    }

    // Each iteration works with the model the previous step made, and calls it by its served name.
    const runs = await h.clients.db
      .selectFrom('stage_runs')
      .select(['stage', 'iteration', 'model_in', 'status', 'metrics'])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'assess')
      .orderBy('iteration')
      .execute();
    expect(runs.map((r) => [r.iteration, r.model_in, r.status])).toEqual([
      [1, 'M1', 'completed'],
      [2, 'M2', 'completed'],
    ]);
    const served = new Map(final.lineage.map((m) => [m.label, m.servedModel]));
    const rounds = await roundsOf(h, campaignId);
    for (const r of rounds) expect(r.model_in).toBe(served.get(r.iteration === 1 ? 'M1' : 'M2'));
    const weakModels = await h.clients.db
      .selectFrom('llm_calls')
      .select(['iteration', 'model'])
      .distinct()
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'assess')
      .where('role', '=', 'weak')
      .orderBy('iteration')
      .execute();
    expect(weakModels.map((m) => [m.iteration, m.model])).toEqual([
      [1, served.get('M1')],
      [2, served.get('M2')],
    ]);

    // The figures kept with the run agree with the rounds.
    const it1 = byQuestion(rounds, 1);
    expect(runs[0]?.metrics).toMatchObject({
      questions: TRAIN,
      solved: solvedIds(it1).length,
      neverCorrect: TRAIN - solvedIds(it1).length,
      rounds: rounds.filter((r) => r.iteration === 1).length,
      unparseableVerdicts: 0,
    });
  });

  it("reports SCoRe's metrics per iteration from rounds 1 and 2, recomputed here from the rounds", async () => {
    const { campaignId } = main;
    const rounds = await roundsOf(h, campaignId);
    const report = await buildReport(h.clients.db, campaignId);
    const runs = await h.clients.db
      .selectFrom('stage_runs')
      .select(['iteration', 'metrics'])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'assess')
      .execute();
    for (const it of [1, 2]) {
      // Attempt 1 is round 1; attempt 2 is round 2, or round 1 again when it was right (not re-asked).
      const pairs = [...byQuestion(rounds, it).values()].map((rs) => {
        const t1 = rs[0]!.verdict === 'correct';
        return { t1, t2: rs[1] ? rs[1].verdict === 'correct' : t1 };
      });
      const share = (f: (p: { t1: boolean; t2: boolean }) => boolean) =>
        pairs.filter(f).length / pairs.length;
      const want = {
        accT1: share((p) => p.t1),
        accT2: share((p) => p.t2),
        delta: share((p) => p.t2) - share((p) => p.t1),
        deltaIC: share((p) => !p.t1 && p.t2),
        deltaCI: share((p) => p.t1 && !p.t2),
      };
      const got = report.stages.find((s) => s.stage === 'assess' && s.iteration === it)!.selfCorrection!;
      expect(got.n).toBe(TRAIN);
      const kept = runs.find((r) => r.iteration === it)!.metrics as Record<string, number>;
      for (const m of ['accT1', 'accT2', 'delta', 'deltaIC', 'deltaCI'] as const) {
        expect(got[m], `${it} ${m}`).toBeCloseTo(want[m], 9);
        expect(kept[m], `stage_runs ${it} ${m}`).toBeCloseTo(want[m], 9);
        expect(got.ci[m].lo).toBeLessThanOrEqual(got[m]);
        expect(got.ci[m].hi).toBeGreaterThanOrEqual(got[m]);
      }
      // A right first answer is never asked again.
      expect(got.deltaCI).toBe(0);
    }
    // The short question is fixed by its second round in iteration 1.
    const it1 = report.stages.find((s) => s.stage === 'assess' && s.iteration === 1)!.selfCorrection!;
    expect(it1.deltaIC).toBeGreaterThanOrEqual(1 / TRAIN);
    expect(it1.accT2).toBeGreaterThan(it1.accT1);
    // The other stages have none.
    for (const s of report.stages.filter((x) => x.stage !== 'assess')) expect(s.selfCorrection).toBeNull();
  });

  it('stops at maxRounds, and only there or at a correct verdict', async () => {
    const rounds = await roundsOf(h, main.campaignId);
    for (const it of [1, 2]) {
      const qs = byQuestion(rounds, it);
      expect([...qs.keys()].sort()).toEqual(questions.map((q) => q.id).sort());
      for (const [id, rs] of qs) {
        expect(
          rs.map((r) => r.round),
          id,
        ).toEqual(rs.map((_, i) => i + 1));
        expect(rs.length).toBeLessThanOrEqual(MAX_ROUNDS);
        // Every round but the last was judged incorrect; the last is correct, or the rounds ran out.
        for (const r of rs.slice(0, -1)) expect(r.verdict).toBe('incorrect');
        const last = rs[rs.length - 1]!;
        if (last.verdict !== 'correct') expect(rs).toHaveLength(MAX_ROUNDS);
        for (const r of rs) expect(r.verdict_attempts).toBe(1);
        for (const r of rs.filter((x) => x.verdict === 'incorrect')) expect(r.feedback).toBeTruthy();
      }
      // The long question is never right: all maxRounds rounds made, each re-answer using the feedback.
      const long = qs.get(LONG.id)!;
      expect(long.map((r) => r.verdict)).toEqual(Array(MAX_ROUNDS).fill('incorrect'));
      expect(new Set(long.map((r) => r.answer)).size).toBe(MAX_ROUNDS);
    }
    // The short one is solved once the feedback says what is missing; M2, trained on that answer,
    // gets it right at once in iteration 2.
    expect(
      byQuestion(rounds, 1)
        .get(SHORT.id)
        ?.map((r) => r.verdict),
    ).toEqual(['incorrect', 'correct']);
    expect(
      byQuestion(rounds, 2)
        .get(SHORT.id)
        ?.map((r) => r.verdict),
    ).toEqual(['correct']);
  });

  it('leaves never-correct questions out of the dataset by default: one row per solved question', async () => {
    const rounds = await roundsOf(h, main.campaignId);
    for (const it of [1, 2]) {
      const qs = byQuestion(rounds, it);
      const solved = solvedIds(qs);
      expect(solved.length).toBeGreaterThan(0);
      expect(solved).not.toContain(LONG.id);
      const lines = await datasetLines(h, main.campaignId, it);
      expect(lines).toHaveLength(solved.length);
      expect(lines.filter((l) => mentions(l, LONG))).toEqual([]);
      expect(lines.filter(isCritique)).toEqual([]);
      // Each row is question → the final, correct answer.
      for (const id of solved) {
        const q = questions.find((x) => x.id === id)!;
        const rs = qs.get(id)!;
        const row = lines.filter((l) => mentions(l, q));
        expect(row, id).toHaveLength(1);
        expect(assistantOf(row[0]!)).toBe(rs[rs.length - 1]!.answer);
      }
    }
  });

  it("keeps them with unsolved: 'distilled-answer', and includeCritiques adds one row per verdict", async () => {
    const { final, campaignId } = options;
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    const qs = byQuestion(await roundsOf(h, campaignId), 1);
    const solved = solvedIds(qs);
    const verdicts = [...qs.values()].flat();
    expect(solved).not.toContain(LONG.id);

    const lines = await datasetLines(h, campaignId, 1);
    const critiques = lines.filter(isCritique);
    const answers = lines.filter((l) => !isCritique(l));
    expect(critiques).toHaveLength(verdicts.length);
    // Solved questions, plus the never-solved one with its Stage-1 strong answer.
    expect(answers).toHaveLength(solved.length + 1);
    const distilled = await h.clients.db
      .selectFrom('distill_records')
      .select('answer')
      .where('campaign_id', '=', campaignId)
      .where('question_id', '=', LONG.id)
      .executeTakeFirstOrThrow();
    const longRows = answers.filter((l) => mentions(l, LONG));
    expect(longRows).toHaveLength(1);
    expect(assistantOf(longRows[0]!)).toBe(distilled.answer);

    // A critique row: the question and an answer in, the critic's verdict as JSON out.
    for (const r of verdicts) {
      const q = questions.find((x) => x.id === r.question_id)!;
      const match = critiques.filter((l) => mentions(l, q) && userOf(l).includes(r.answer));
      expect(match.length, `${r.question_id} round ${r.round}`).toBeGreaterThan(0);
      expect(match.map((l) => JSON.parse(assistantOf(l)) as unknown)).toContainEqual({
        correct: r.verdict === 'correct',
        feedback: r.feedback,
      });
    }
  });

  it('exports one audit line per question and iteration, whose call ids lead to llm_calls rows', async () => {
    const { db } = h.clients;
    const lines: Array<Record<string, unknown>> = [];
    for await (const l of auditRecords(db, main.campaignId, 'assess')) lines.push(l);
    expect(lines).toHaveLength(2 * TRAIN);
    const ids = new Set<string>();
    for (const l of lines) {
      expect(l).toMatchObject({ campaignId: main.campaignId, stage: 'assess' });
      const rounds = l.rounds as Array<{ round: number; llmCallIds: { answer: string; verdict: string } }>;
      expect(rounds.length).toBeGreaterThan(0);
      for (const r of rounds) {
        ids.add(String(r.llmCallIds.answer));
        ids.add(String(r.llmCallIds.verdict));
      }
    }
    const long = lines.find((l) => l.questionId === LONG.id && l.iteration === 1);
    expect(long).toMatchObject({ outcome: 'incorrect', solvedInRound: null });
    expect(long?.rounds).toHaveLength(MAX_ROUNDS);

    const calls = await db
      .selectFrom('llm_calls')
      .select(['id', 'campaign_id', 'stage', 'status', 'role', 'purpose'])
      .where('id', 'in', [...ids])
      .execute();
    expect(calls).toHaveLength(ids.size);
    for (const c of calls) {
      expect(c).toMatchObject({ campaign_id: main.campaignId, stage: 'assess', status: 'ok' });
      expect(c.role === 'weak' ? ['answer', 're-answer'] : ['verdict']).toContain(c.purpose);
    }
  });

  it('redoes nothing when a batch is retried, and resumes a question from its last recorded round', async () => {
    const { db } = h.clients;
    const { campaignId, final } = main;
    const acts = assessActivities({
      db,
      llm: new LlmGateway(db),
      artifactsDir: h.artifactsDir,
      env: {},
      hostId: 'test',
    });
    const m1 = final.lineage.find((m) => m.label === 'M1')!;
    const batch = { campaignId, iteration: 1, modelIn: m1.servedModel, offset: 0, limit: TRAIN };
    const countCalls = () => countRows(h, 'llm_calls', campaignId);
    const callsBefore = await countCalls();
    const before = await roundsOf(h, campaignId);
    const simCallsBefore = h.sim.stats().requests;

    const again: BatchResult = await new MockActivityEnvironment().run(acts.assessBatch, batch);
    expect(again).toMatchObject({ processed: TRAIN, created: 0, skipped: 0 });
    expect(await roundsOf(h, campaignId)).toEqual(before);

    // Lose the last round of the long question, as a crash between its calls and its write would.
    const lastLong = before.filter((r) => r.iteration === 1 && r.question_id === LONG.id).pop()!;
    await db
      .deleteFrom('assess_rounds')
      .where('campaign_id', '=', campaignId)
      .where('iteration', '=', 1)
      .where('question_id', '=', LONG.id)
      .where('round', '=', lastLong.round)
      .execute();
    const resumed: BatchResult = await new MockActivityEnvironment().run(acts.assessBatch, {
      ...batch,
      withTotals: true,
    });
    expect(resumed).toMatchObject({ processed: TRAIN, created: 1, skipped: 0 });
    expect(resumed.stageTotals?.records).toBe(TRAIN);
    // The round is back as it was, made from the logged calls: nothing new paid for or logged.
    expect(await roundsOf(h, campaignId)).toEqual(before);
    expect(await countCalls()).toBe(callsBefore);
    expect(h.sim.stats().requests).toBe(simCallsBefore);
    // Nor was anything of the campaign paid twice, by the server's own count by content.
    expect(await paidTwice(h, [campaignId])).toEqual([]);
  });
});

describe('stage 2 with a critic that often replies malformed JSON', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ malformedRate: { assessment_verdict: 0.5 } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('asks again, records the attempts (unparseable after verdictAttempts), and completes', async () => {
    const train = await writeQuestions(h.tmp, 'malformed-train.jsonl', await exampleQuestions(8));
    const spec = await writeSpec(h, {
      questions: { train, eval: undefined },
      stages: {
        assess: {
          enabled: true,
          iterations: 1,
          maxRounds: 2,
          batchSize: 4,
          verdictAttempts: 3,
          includeCritiques: false,
        },
      },
    });
    const { campaignId } = await launch(h, spec);
    const final = await waitDone(h, campaignId, 110_000);
    expect(final.error).toBeNull();
    expect(final.state).toBe('completed');
    expect(final.lineage.map((m) => m.label)).toEqual(['M0', 'M1', 'M2']);
    expect(h.sim.stats().malformed.assessment_verdict ?? 0).toBeGreaterThan(0);

    const rounds = await roundsOf(h, campaignId);
    expect(new Set(rounds.map((r) => r.question_id)).size).toBe(8);
    expect(rounds.some((r) => r.verdict_attempts > 1)).toBe(true);
    for (const r of rounds) {
      expect(r.verdict_attempts).toBeGreaterThanOrEqual(1);
      expect(r.verdict_attempts).toBeLessThanOrEqual(3);
      if (r.verdict === 'unparseable') {
        // Asked the full three times, no feedback, and the question stopped there.
        expect(r.verdict_attempts).toBe(3);
        expect(r.feedback).toBeNull();
        expect(rounds.filter((x) => x.question_id === r.question_id && x.round > r.round)).toEqual([]);
      } else {
        expect(r.feedback).not.toBeNull();
      }
    }

    // Every ask is in the call log; a row points at the ask that parsed (or the last one).
    const verdictCalls = await h.clients.db
      .selectFrom('llm_calls')
      .select(['id', 'response'])
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'assess')
      .where('purpose', '=', 'verdict')
      .where('status', '=', 'ok')
      .execute();
    expect(verdictCalls).toHaveLength(rounds.reduce((n, r) => n + r.verdict_attempts, 0));
    const callIds = new Set(verdictCalls.map((c) => String(c.id)));
    for (const r of rounds) expect(callIds.has(String(r.verdict_call_id))).toBe(true);

    const run = await h.clients.db
      .selectFrom('stage_runs')
      .select('metrics')
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'assess')
      .executeTakeFirstOrThrow();
    expect(run.metrics).toMatchObject({
      verdictReasks: rounds.reduce((n, r) => n + r.verdict_attempts - 1, 0),
      unparseableVerdicts: rounds.filter((r) => r.verdict === 'unparseable').length,
    });

    // Only questions judged correct are trained on.
    const solved = new Set(rounds.filter((r) => r.verdict === 'correct').map((r) => r.question_id));
    const ds = await h.clients.db
      .selectFrom('datasets')
      .select('rows')
      .where('campaign_id', '=', campaignId)
      .where('stage', '=', 'assess')
      .where('format', '=', 'openai')
      .executeTakeFirstOrThrow();
    expect(ds.rows).toBe(solved.size);
  });
});
