/**
 * Migrations across one version (issue 11): a database made by the previous release (v0.1.0,
 * migrations 001–011) and filled with rows shaped as v0.1.0's code writes them is migrated to the
 * current schema. The migrations after 011 must be expand-only — no old column dropped, renamed,
 * retyped or made NOT NULL, every old row unchanged — so that v0.1.0 workers still running during
 * an upgrade keep writing (their inserts are replayed here), and the current code must read the
 * old campaign (audit, report, training data). 012 and later also go down to 011 and up again
 * without touching the old rows.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Migrator, sql, type Migration } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildReport } from '../../client/report';
import { getCampaign } from '../../core/campaigns';
import { createDb, type Db } from '../../core/db/connection';
import { migrateDb } from '../../core/db/migrate';
import { auditRecords } from '../../core/records';
import { trainingLines } from '../../core/training-data';
import { migrations } from '../../migrations';
import { adminQuery } from '../support/harness';

/** The migrations v0.1.0 shipped (`git show v0.1.0:migrations/index.ts`), unchanged since. */
const V010 = [
  '001_init',
  '002_full_loop',
  '003_finetune_dispatch',
  '004_lines',
  '005_failed_questions',
  '006_endpoint_limits',
  '008_outage_budget',
  '009_duplicate_calls',
  '010_spend_per_statement',
  '011_self_correction',
];
const V010_LAST = '011_self_correction';
const v010Migrations: Record<string, Migration> = Object.fromEntries(
  V010.flatMap((name) => {
    const m = migrations[name];
    return m ? [[name, m]] : [];
  }),
);
const ADDED = Object.keys(migrations).filter((name) => !V010.includes(name));

/**
 * The spec as v0.1.0 stored it: v0.1.0's own loadSpecFile (run from `git archive v0.1.0`) on its
 * examples/kubernetes-ops/campaign.yaml, defaults filled — the current parser must still take it.
 */
const V010_SPEC: unknown = JSON.parse(
  readFileSync(path.join(__dirname, '..', 'fixtures', 'v0.1.0-db', 'campaign-spec.json'), 'utf8'),
);
const CAMPAIGN = 'k8s-ops-v010';

let adminUrl: string;
let dbName: string;
let db: Db;

beforeAll(async () => {
  adminUrl = inject('databaseUrl');
  // A database of its own: the shared one is already at the latest schema.
  dbName = `meteor_upgrade_${randomBytes(4).toString('hex')}`;
  await adminQuery(`create database ${dbName}`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  db = createDb(url.toString(), { max: 2 });
});

afterAll(async () => {
  await db?.destroy();
  if (dbName) await adminQuery(`drop database if exists ${dbName} with (force)`);
});

function migrator(known: Record<string, Migration>): Migrator {
  return new Migrator({ db, provider: { getMigrations: async () => known } });
}

async function migrateTo(known: Record<string, Migration>, target: string): Promise<string[]> {
  const { error, results } = await migrator(known).migrateTo(target);
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** An insert of exactly these columns, as v0.1.0's code sends it (its column lists, JSON as text). */
async function insert(table: string, row: Record<string, unknown>): Promise<Record<string, unknown>> {
  const cols = Object.keys(row);
  const { rows } = await sql<Record<string, unknown>>`insert into ${sql.table(table)}
    (${sql.join(cols.map((c) => sql.ref(c)))}) values (${sql.join(cols.map((c) => row[c]))})
    returning *`.execute(db);
  const inserted = rows[0];
  if (!inserted) throw new Error(`nothing inserted into ${table}`);
  return inserted;
}

interface Column {
  table: string;
  column: string;
  type: string;
  nullable: boolean;
  hasDefault: boolean;
}

async function columns(): Promise<Column[]> {
  const { rows } = await sql<{
    table_name: string;
    column_name: string;
    data_type: string;
    is_nullable: string;
    column_default: string | null;
  }>`select table_name, column_name, data_type, is_nullable, column_default
     from information_schema.columns
     where table_schema = 'public' and table_name not like 'kysely_%'
     order by table_name, column_name`.execute(db);
  return rows.map((r) => ({
    table: r.table_name,
    column: r.column_name,
    type: r.data_type,
    nullable: r.is_nullable === 'YES',
    hasDefault: r.column_default !== null,
  }));
}

/** Per table: row count and an md5 of its rows over the given columns (new columns left out). */
async function checksums(schema: Column[]): Promise<Record<string, { rows: number; md5: string }>> {
  const byTable = new Map<string, string[]>();
  for (const c of schema) byTable.set(c.table, [...(byTable.get(c.table) ?? []), c.column]);
  const out: Record<string, { rows: number; md5: string }> = {};
  for (const [table, cols] of byTable) {
    const { rows } = await sql<{ n: number; md5: string | null }>`
      select count(*)::int as n, md5(string_agg(r, E'\n' order by r)) as md5
      from (select (${sql.join(cols.map((c) => sql.ref(c)))})::text as r from ${sql.table(table)}) t`.execute(
      db,
    );
    out[table] = { rows: rows[0]?.n ?? 0, md5: rows[0]?.md5 ?? '' };
  }
  return out;
}

const collect = async <T>(lines: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const line of lines) out.push(line);
  return out;
};

let callSeq = 0;
/** An llm_calls row as v0.1.0's gateway logs a paid answer (or an error, or a duplicate). */
async function call(
  stage: string,
  iteration: number,
  role: 'weak' | 'strong' | 'judge',
  purpose: string,
  content: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  callSeq++;
  const model = { weak: 'sim-weak-8b', strong: 'sim-strong', judge: 'sim-judge' }[role];
  const row = await insert('llm_calls', {
    campaign_id: CAMPAIGN,
    stage,
    iteration,
    request_hash: `hash-${callSeq}`,
    role,
    base_url: 'http://127.0.0.1:8787/v1',
    model,
    purpose,
    prompt_version: `${purpose}@1`,
    request: JSON.stringify({ model, messages: [{ role: 'user', content: `request ${callSeq}` }] }),
    response: JSON.stringify({ choices: [{ message: { role: 'assistant', content } }] }),
    status: 'ok',
    prompt_tokens: 100,
    completion_tokens: 50,
    latency_ms: 12,
    cost_usd: role === 'weak' ? 0 : 0.00075,
    ...extra,
  });
  return String(row.id);
}

const QUESTIONS = [
  { id: 'q-1', split: 'train', ordinal: 0, title: 'Pod restarts', question: 'Why does my pod restart?' },
  { id: 'q-2', split: 'train', ordinal: 1, title: null, question: 'How do I drain a node safely?' },
  { id: 'q-3', split: 'train', ordinal: 2, title: null, question: 'What is a PodDisruptionBudget?' },
  { id: 'e-1', split: 'eval', ordinal: 0, title: 'OOMKilled', question: 'What does OOMKilled mean?' },
] as const;
const ANSWERS: Record<string, string> = {
  'q-1': 'Check the liveness probe and the container exit code.',
  'q-2': 'Cordon it, then kubectl drain --ignore-daemonsets.',
};

/** A small finished campaign, row by row as v0.1.0 writes one (column lists from its activities). */
async function fillAsV010(): Promise<{ paidUsd: number }> {
  await insert('campaigns', {
    id: CAMPAIGN,
    name: 'k8s-ops',
    domain: 'Kubernetes operations and troubleshooting',
    spec: JSON.stringify(V010_SPEC),
    spec_file: '/srv/meteor/examples/kubernetes-ops/campaign.yaml',
    spec_dir: '/srv/meteor/examples/kubernetes-ops',
    workflow_id: `campaign-${CAMPAIGN}`,
    task_queue: 'meteor',
    line_name: null,
    line_iteration: null,
  });
  for (const q of QUESTIONS) {
    await insert('questions', {
      campaign_id: CAMPAIGN,
      id: q.id,
      split: q.split,
      ordinal: q.ordinal,
      title: q.title,
      question: q.question,
      reference: q.split === 'eval' ? 'The kernel killed it for exceeding its memory limit.' : null,
      content_hash: `sha256-${q.id}`,
    });
  }
  await insert('model_versions', {
    campaign_id: CAMPAIGN,
    label: 'M0',
    parent_label: null,
    served_model: 'sim-weak-8b',
  });

  // Stage 1: two records, one question given up on.
  for (const id of ['q-1', 'q-2']) {
    const guideline = await call('distill', 1, 'weak', 'guideline', `guideline for ${id}`);
    const answer = await call('distill', 1, 'strong', 'answer', ANSWERS[id] ?? '');
    await insert('distill_records', {
      campaign_id: CAMPAIGN,
      iteration: 1,
      question_id: id,
      model_in: 'M0',
      guideline: `guideline for ${id}`,
      answer: ANSWERS[id],
      guideline_corrected: id === 'q-1',
      correction: id === 'q-1' ? 'Mention the exit code.' : null,
      guideline_call_id: guideline,
      answer_call_id: answer,
    });
  }
  const refused = await call('distill', 1, 'strong', 'answer', '', {
    status: 'error',
    response: null,
    error: '400 prompt too long',
    http_status: 400,
    prompt_tokens: 0,
    completion_tokens: 0,
    cost_usd: 0,
  });
  await insert('failed_questions', {
    campaign_id: CAMPAIGN,
    stage: 'distill',
    iteration: 1,
    question_id: 'q-3',
    reason: '400 prompt too long',
    http_status: 400,
    call_ids: JSON.stringify([refused]),
  });
  // A paid answer an overlapping attempt logged first (migration 009): counts in cost.
  await call('distill', 1, 'strong', 'answer', ANSWERS['q-1'] ?? '', {
    request_hash: 'hash-2',
    status: 'duplicate',
  });
  const distillSet = await insert('datasets', {
    campaign_id: CAMPAIGN,
    stage: 'distill',
    iteration: 1,
    kind: 'sft',
    format: 'openai',
    uri: `file:///srv/artifacts/${CAMPAIGN}/distill-1.openai.jsonl`,
    sha256: 'a'.repeat(64),
    rows: 2,
    bytes: 1234,
  });
  const job = await insert('finetune_jobs', {
    campaign_id: CAMPAIGN,
    stage: 'distill',
    iteration: 1,
    idempotency_key: `${CAMPAIGN}-distill-1`,
    backend: 'local',
    status: 'pending',
    base_model: 'sim-weak-8b',
    dataset_id: distillSet.id,
    output_dir: `/srv/artifacts/${CAMPAIGN}/m1`,
    job_dir: `/srv/jobs/${CAMPAIGN}-distill-1`,
    job_dir_remote: `/srv/jobs/${CAMPAIGN}-distill-1`,
    name: `meteor-${CAMPAIGN}-distill-1`,
    parent_label: 'M0',
    parent_served: 'sim-weak-8b',
    parent_checkpoint: null,
    queue: 'meteor-gpu@host-1',
  });
  await insert('finetune_events', { job_id: job.id, kind: 'submitted', message: 'pid 4242' });
  await sql`update finetune_jobs set status = 'succeeded', checkpoint_uri = ${`file:///srv/artifacts/${CAMPAIGN}/m1`},
    started_at = now(), finished_at = now(), final_loss = 0.75 where id = ${job.id}`.execute(db);
  await insert('model_versions', {
    campaign_id: CAMPAIGN,
    label: 'M1',
    parent_label: 'M0',
    served_model: `${CAMPAIGN}-m1`,
    stage: 'distill',
    iteration: 1,
    dataset_id: distillSet.id,
    finetune_job_id: job.id,
    checkpoint_uri: `file:///srv/artifacts/${CAMPAIGN}/m1`,
    deployed_at: new Date('2026-11-30T10:00:00Z'),
  });

  // Stage 2: q-1 right at once, q-2 after one critique.
  for (const [id, round, verdict] of [
    ['q-1', 1, 'correct'],
    ['q-2', 1, 'incorrect'],
    ['q-2', 2, 'correct'],
  ] as const) {
    const answer = await call('assess', 1, 'weak', 'answer', `attempt ${round} at ${id}`);
    const critic = await call('assess', 1, 'strong', 'verdict', verdict);
    await insert('assess_rounds', {
      campaign_id: CAMPAIGN,
      iteration: 1,
      question_id: id,
      round,
      model_in: 'M1',
      answer: `attempt ${round} at ${id}`,
      verdict,
      feedback: verdict === 'incorrect' ? 'You forgot to cordon.' : null,
      answer_call_id: answer,
      verdict_call_id: critic,
      verdict_attempts: 1,
    });
  }

  // Stage 3: one pair kept, one dropped by the critique.
  for (const [id, agrees] of [
    ['q-1', true],
    ['q-2', false],
  ] as const) {
    const greedy = await call('contrast', 1, 'weak', 'greedy', `greedy ${id}`);
    const high = await call('contrast', 1, 'weak', 'beam', `beam ${id}`);
    const critique = await call('contrast', 1, 'strong', 'critique', agrees ? 'A' : 'B');
    await insert('preference_pairs', {
      campaign_id: CAMPAIGN,
      iteration: 1,
      question_id: id,
      model_in: 'M1',
      method: 'beam',
      chosen: `beam ${id}`,
      rejected: `greedy ${id}`,
      similarity: 0.42,
      kept: agrees,
      drop_reason: agrees ? null : 'critique-disagrees',
      critique_agrees: agrees,
      greedy_call_id: greedy,
      high_call_id: high,
      critique_call_ids: JSON.stringify([critique]),
    });
  }
  const contrastSet = await insert('datasets', {
    campaign_id: CAMPAIGN,
    stage: 'contrast',
    iteration: 1,
    kind: 'preference',
    format: 'openai',
    uri: `file:///srv/artifacts/${CAMPAIGN}/contrast-1.openai.jsonl`,
    sha256: 'b'.repeat(64),
    rows: 1,
    bytes: 321,
  });
  await insert('model_versions', {
    campaign_id: CAMPAIGN,
    label: 'M2',
    parent_label: 'M1',
    served_model: `${CAMPAIGN}-m2`,
    stage: 'contrast',
    iteration: 1,
    dataset_id: contrastSet.id,
    checkpoint_uri: `file:///srv/artifacts/${CAMPAIGN}/m2`,
    deployed_at: new Date('2026-11-30T12:00:00Z'),
  });

  // The evaluation: M2 against M0 on the held-out question, judged both ways round.
  for (const label of ['M0', 'M2']) {
    const answerCall = await call('evaluate', 1, 'weak', 'eval-answer', `${label} says: memory limit`);
    await insert('eval_answers', {
      campaign_id: CAMPAIGN,
      model_label: label,
      question_id: 'e-1',
      served_model: label === 'M0' ? 'sim-weak-8b' : `${CAMPAIGN}-m2`,
      answer: `${label} says: memory limit`,
      call_id: answerCall,
    });
  }
  const dims = ['accuracy', 'completeness', 'relevance', 'coherence', 'reliability'];
  for (const position of ['model-first', 'base-first']) {
    const judgeCall = await call('evaluate', 1, 'judge', 'judge', `{"winner":"A"}`);
    await insert('judgments', {
      campaign_id: CAMPAIGN,
      model_label: 'M2',
      question_id: 'e-1',
      position,
      judge_model: 'sim-judge',
      prompt_version: 'judge@1',
      raw_text: '{"winner":"A"}',
      status: 'ok',
      verdicts: JSON.stringify(Object.fromEntries([...dims, 'overall'].map((d) => [d, 'model']))),
      scores: JSON.stringify({
        model: Object.fromEntries([...dims, 'overall'].map((d) => [d, 8])),
        base: Object.fromEntries([...dims, 'overall'].map((d) => [d, 5])),
      }),
      call_id: judgeCall,
      attempts: 1,
    });
  }

  const runs: Array<[string, string, string | null, number, Record<string, number>]> = [
    ['distill', 'M0', 'M1', 3, { guidelinesCorrected: 1 }],
    ['assess', 'M1', null, 3, {}],
    ['contrast', 'M1', 'M2', 3, {}],
    ['evaluate', 'M0', null, 1, {}],
  ];
  for (const [stage, modelIn, modelOut, total, metrics] of runs) {
    await insert('stage_runs', {
      campaign_id: CAMPAIGN,
      stage,
      iteration: 1,
      status: 'completed',
      model_in: modelIn,
      model_out: modelOut,
      total,
      metrics: JSON.stringify(metrics),
      finished_at: new Date('2026-11-30T13:00:00Z'),
    });
  }
  await sql`update campaigns set state = 'completed', updated_at = now() where id = ${CAMPAIGN}`.execute(db);

  const { rows } = await sql<{ usd: number }>`select sum(cost_usd)::float8 as usd from llm_calls
    where campaign_id = ${CAMPAIGN} and status in ('ok', 'duplicate')`.execute(db);
  return { paidUsd: rows[0]?.usd ?? 0 };
}

describe('upgrading a v0.1.0 database', () => {
  let oldSchema: Column[];
  let before: Record<string, { rows: number; md5: string }>;
  let paidUsd: number;

  it('starts from exactly the v0.1.0 migrations, with a finished v0.1.0 campaign in it', async () => {
    expect(V010.every((name) => name in migrations)).toBe(true);
    expect(ADDED).toEqual([
      '012_search_trees',
      '013_mcts',
      '014_evolve',
      '015_rstar',
      '016_row_scores',
      '017_billing',
      '018_forecasts',
      '019_provider_batches',
      '020_batch_drain',
    ]);
    expect(await migrateTo(v010Migrations, V010_LAST)).toEqual(V010);
    ({ paidUsd } = await fillAsV010());
    oldSchema = await columns();
    before = await checksums(oldSchema);
    expect(before['questions']?.rows).toBe(4);
    expect(before['llm_calls']?.rows).toBeGreaterThan(20);
    // The spend trigger of 008/010 ran on the v0.1.0 schema.
    const { rows } = await sql<{ usd: number }>`select sum(cost_usd)::float8 as usd from campaign_spend
      where campaign_id = ${CAMPAIGN}`.execute(db);
    expect(rows[0]?.usd).toBeCloseTo(paidUsd, 9);
  });

  it('migrates to the latest schema by expanding it only: old columns and rows unchanged', async () => {
    expect(await migrateDb(db)).toEqual(ADDED);
    const newSchema = await columns();
    const key = (c: Column) => `${c.table}.${c.column}`;
    const now = new Map(newSchema.map((c) => [key(c), c]));
    for (const old of oldSchema) {
      const c = now.get(key(old));
      // Gone or renamed, retyped, or NOT NULL where v0.1.0 may leave it null: v0.1.0 breaks.
      expect(c, `${key(old)} still there`).toBeDefined();
      expect(c?.type, `${key(old)} type`).toBe(old.type);
      if (old.nullable) expect(c?.nullable, `${key(old)} still nullable`).toBe(true);
    }
    const oldTables = new Set(oldSchema.map((c) => c.table));
    const oldKeys = new Set(oldSchema.map(key));
    const added = newSchema.filter((c) => oldTables.has(c.table) && !oldKeys.has(key(c)));
    expect(added.map(key).sort()).toEqual([
      'campaigns.forecast',
      'llm_calls.billing_mode',
      'llm_calls.cached_tokens',
      'preference_pairs.chosen_call_ids',
      'preference_pairs.chosen_path',
      'questions.evolved_from',
      'questions.origin',
      'stage_runs.drain_requested_at',
    ]);
    // v0.1.0's inserts never name them: each must be nullable or have a default.
    for (const c of added) expect(c.nullable || c.hasDefault, `${key(c)} nullable or defaulted`).toBe(true);

    expect(await checksums(oldSchema)).toEqual(before);
    const origins = await sql<{ origin: string; evolved_from: string | null }>`
      select distinct origin, evolved_from from questions`.execute(db);
    expect(origins.rows).toEqual([{ origin: 'given', evolved_from: null }]);
    const pairs = await sql<{ n: number }>`select count(*)::int as n from preference_pairs
      where chosen_path is null and chosen_call_ids is null`.execute(db);
    expect(pairs.rows[0]?.n).toBe(2);
    // Every old call reads as what it was: online, its cache not reported.
    const billing = await sql<{ billing_mode: string; cached_tokens: number | null }>`
      select distinct billing_mode, cached_tokens from llm_calls`.execute(db);
    expect(billing.rows).toEqual([{ billing_mode: 'online', cached_tokens: null }]);
  });

  it('reads the old campaign with the current code: spec, audit, report and training data', async () => {
    const { spec } = await getCampaign(db, CAMPAIGN);
    expect(spec.name).toBe('k8s-ops');

    const audit = await collect(auditRecords(db, CAMPAIGN, 'distill'));
    expect(audit.map((l) => [l.questionId, l.answer ?? null, l.failed ?? null])).toEqual([
      ['q-1', ANSWERS['q-1'], null],
      ['q-2', ANSWERS['q-2'], null],
      ['q-3', null, expect.objectContaining({ reason: '400 prompt too long', httpStatus: 400 })],
    ]);
    // Not marked synthetic: v0.1.0's questions are all given.
    expect(audit.some((l) => 'synthetic' in l && l.synthetic === true)).toBe(false);

    const report = await buildReport(db, CAMPAIGN);
    expect(report.stages.map((s) => [s.stage, s.records, s.failed, s.datasetRows])).toEqual([
      ['distill', 2, 1, 2],
      ['assess', 2, 0, null],
      ['contrast', 2, 0, 1],
      ['evaluate', 2, 0, null],
    ]);
    expect(report.totals.costUsd).toBeCloseTo(paidUsd, 9);
    expect(report.lineage.map((n) => [n.label, n.parent, n.stage])).toEqual([
      ['M0', null, null],
      ['M1', 'M0', 'distill'],
      ['M2', 'M1', 'contrast'],
    ]);
    expect(report.evaluation?.models.map((m) => [m.modelLabel, m.questions, m.judgments])).toEqual([
      ['M2', 1, 2],
    ]);
    expect(report.simulated).toBe(true);
    expect(report.fineTunes.map((f) => [f.stage, f.iteration, f.finalLoss])).toEqual([['distill', 1, 0.75]]);

    const sft = await collect(trainingLines(db, spec, CAMPAIGN, 'distill', 1, 'openai'));
    expect(sft.map((l) => (l as { messages: Array<{ content: string }> }).messages[2]?.content)).toEqual([
      ANSWERS['q-1'],
      ANSWERS['q-2'],
    ]);
    expect(JSON.stringify(sft[0])).toContain('Why does my pod restart?');
    const prefs = await collect(trainingLines(db, spec, CAMPAIGN, 'contrast', 1, 'openai'));
    // Only the kept pair trains.
    expect(prefs).toHaveLength(1);
    expect(prefs[0]).toMatchObject({
      preferred_output: [{ role: 'assistant', content: 'beam q-1' }],
      non_preferred_output: [{ role: 'assistant', content: 'greedy q-1' }],
    });
  });

  it('takes 012 and later down to 011 and up again without touching the old rows', async () => {
    expect(await migrateTo(migrations, V010_LAST)).toEqual([...ADDED].reverse());
    expect(await columns()).toEqual(oldSchema);
    expect(await checksums(oldSchema)).toEqual(before);
    expect(await migrateDb(db)).toEqual(ADDED);
    expect(await checksums(oldSchema)).toEqual(before);
  });

  it('takes v0.1.0-shaped writes on the new schema (an old worker during the upgrade)', async () => {
    // Column lists of v0.1.0's core/campaigns.ts, activities/distill.ts, activities/contrast.ts
    // and core/llm/gateway.ts: none of the new columns named.
    await insert('questions', {
      campaign_id: CAMPAIGN,
      id: 'q-4',
      split: 'train',
      ordinal: 3,
      title: null,
      question: 'How do I roll back a deployment?',
      reference: null,
      content_hash: 'sha256-q-4',
    });
    const guideline = await call('distill', 1, 'weak', 'guideline', 'guideline for q-4');
    const answer = await call('distill', 1, 'strong', 'answer', 'kubectl rollout undo.');
    await insert('distill_records', {
      campaign_id: CAMPAIGN,
      iteration: 1,
      question_id: 'q-4',
      model_in: 'M0',
      guideline: 'guideline for q-4',
      answer: 'kubectl rollout undo.',
      guideline_corrected: false,
      correction: null,
      guideline_call_id: guideline,
      answer_call_id: answer,
    });
    const greedy = await call('contrast', 1, 'weak', 'greedy', 'greedy q-4');
    const high = await call('contrast', 1, 'weak', 'beam', 'beam q-4');
    const pair = await insert('preference_pairs', {
      campaign_id: CAMPAIGN,
      iteration: 1,
      question_id: 'q-4',
      model_in: 'M1',
      method: 'best-of-n',
      chosen: 'beam q-4',
      rejected: 'greedy q-4',
      similarity: 0.3,
      kept: true,
      drop_reason: null,
      critique_agrees: null,
      greedy_call_id: greedy,
      high_call_id: high,
      critique_call_ids: JSON.stringify([]),
    });
    expect(pair).toMatchObject({ chosen_path: null, chosen_call_ids: null });
    const q4 = await sql<{ origin: string }>`select origin from questions where id = 'q-4'`.execute(db);
    expect(q4.rows).toEqual([{ origin: 'given' }]);
    // Its calls, which name neither billing column, are online calls with no cache reported.
    const billing = await sql<{ billing_mode: string; cached_tokens: number | null }>`
      select distinct billing_mode, cached_tokens from llm_calls`.execute(db);
    expect(billing.rows).toEqual([{ billing_mode: 'online', cached_tokens: null }]);

    const { spec } = await getCampaign(db, CAMPAIGN);
    const sft = await collect(trainingLines(db, spec, CAMPAIGN, 'distill', 1, 'openai'));
    expect(sft).toHaveLength(3);
    const prefs = await collect(trainingLines(db, spec, CAMPAIGN, 'contrast', 1, 'openai'));
    expect(prefs).toHaveLength(2);
  });

  it("v0.1.0's worker cannot restart on the new database; from now on an older worker can", async () => {
    // v0.1.0's start-up migration is Kysely's migrateToLatest, which calls the newer migrations
    // corrupted: a v0.1.0 worker that restarts mid-upgrade stays down (README says so).
    const { error } = await migrator(v010Migrations).migrateToLatest();
    expect(String(error)).toMatch(/previously executed migration 012_search_trees is missing/);

    // The current start-up migration, given an older version's list, leaves a newer database be.
    expect(await migrateDb(db, v010Migrations)).toEqual([]);
    // And today's code starts on a database the next version expanded.
    const future: Migration = {
      up: async (d) => {
        await d.schema.alterTable('questions').addColumn('future_note', 'text').execute();
      },
      down: async (d) => {
        await d.schema.alterTable('questions').dropColumn('future_note').execute();
      },
    };
    // Named after every migration of ours, as the next version's are.
    expect(await migrateDb(db, { ...migrations, '999_future': future })).toEqual(['999_future']);
    expect(await migrateDb(db)).toEqual([]);
    // Unknown migrations while some of ours are missing: not a newer version's database.
    const gap = Object.fromEntries(Object.entries(v010Migrations).filter(([name]) => name !== V010_LAST));
    await expect(migrateDb(db, { ...gap, '011b_mine': future })).rejects.toThrow(
      /does not know .*but lacks some of its own \(011b_mine\)/,
    );
  });
});
