/**
 * The simulated model server over real HTTP, through the openai client the platform uses.
 * Every model here is a simulation (infra/sim), not a real model.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  STRONG_ANSWER_SCHEMA,
  guidelinePrompt,
  renderQuestion,
  sftSystemPrompt,
  strongAnswerPrompt,
} from '../../core/prompts';
import type { SimServer } from '../../infra/sim/server';
import { startSimServer } from '../../infra/sim/server';

const DOMAIN = 'Kubernetes operations';
const KNOWLEDGE = [
  {
    title: 'Pod stuck in Pending',
    question: 'My pod stays in Pending state forever after I apply the deployment. What should I check?',
    reference:
      'A pod stays Pending when the scheduler cannot place it on any node. Run kubectl describe pod and read the Events: insufficient CPU or memory, unsatisfied node selectors or affinity, untolerated taints, or an unbound PersistentVolumeClaim are the usual causes. Fix the constraint (lower requests, add nodes, add a toleration, or provision the volume) and the scheduler will place the pod.',
  },
  {
    question: 'How do I roll back a Kubernetes deployment to the previous version?',
    reference:
      'Use kubectl rollout undo deployment/NAME to return to the previous revision, or add --to-revision=N for a specific one. kubectl rollout history deployment/NAME lists the revisions. Rollback only restores the pod template, not ConfigMaps or Secrets the pods read.',
  },
  {
    question: 'Why does my container keep restarting with CrashLoopBackOff?',
    reference:
      'CrashLoopBackOff means the container starts, exits, and the kubelet restarts it with growing back-off delays. Read the logs of the previous run with kubectl logs --previous and the exit code in kubectl describe pod. Typical causes are a crashing application, a wrong command or missing configuration, and liveness probes that kill a slow-starting container.',
  },
];
const [PENDING, ROLLBACK, CRASHLOOP] = KNOWLEDGE as [
  (typeof KNOWLEDGE)[number],
  (typeof KNOWLEDGE)[number],
  (typeof KNOWLEDGE)[number],
];

const StrongAnswer = z.strictObject({
  guidelineCorrect: z.boolean(),
  correction: z.string().nullable(),
  answer: z.string().min(1),
});
const Verdict = z.object({ correct: z.boolean(), feedback: z.string().min(1) });
const Side = z.enum(['A', 'B', 'tie']);
const Judgment = z.object({
  winner: Side,
  dimensions: z.record(z.string(), Side),
  scores: z.object({ A: z.record(z.string(), z.number()), B: z.record(z.string(), z.number()) }),
  explanation: z.string(),
});

type ChatParams = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
type VllmParams = ChatParams & { use_beam_search?: boolean; length_penalty?: number; best_of?: number };

const dir = mkdtempSync(join(tmpdir(), 'meteor-sim-test-'));
const knowledgeFile = join(dir, 'knowledge.jsonl');
writeFileSync(knowledgeFile, KNOWLEDGE.map((k) => JSON.stringify(k)).join('\n') + '\n');

let sim: SimServer;
let client: OpenAI;

const clientFor = (s: SimServer, apiKey = 'unused') =>
  new OpenAI({ baseURL: s.url, apiKey, maxRetries: 0, timeout: 5000 });
const content = (r: OpenAI.Chat.ChatCompletion, i = 0) => r.choices[i]?.message.content ?? '';
const ask = (model: string, question: string, extra: Partial<VllmParams> = {}) =>
  client.chat.completions.create({
    model,
    messages: [
      { role: 'system', content: sftSystemPrompt(DOMAIN) },
      { role: 'user', content: question },
    ],
    temperature: 0,
    ...extra,
  } as VllmParams);
const verdictSchema = {
  type: 'json_schema' as const,
  json_schema: {
    name: 'assessment_verdict',
    strict: true,
    schema: {
      type: 'object',
      additionalProperties: false,
      required: ['correct', 'feedback'],
      properties: { correct: { type: 'boolean' }, feedback: { type: 'string' } },
    },
  },
};

function judgeAB(question: string, a: string, b: string) {
  return client.chat.completions.create({
    model: 'sim-judge',
    temperature: 0,
    messages: [{ role: 'user', content: `Question:\n${question}\n\nAnswer A:\n${a}\n\nAnswer B:\n${b}` }],
    response_format: { type: 'json_schema', json_schema: { name: 'pairwise_judgment' } },
  });
}

beforeAll(async () => {
  sim = await startSimServer({ knowledgeFiles: [knowledgeFile] });
  client = clientFor(sim);
});
afterAll(async () => {
  await sim.close();
});

describe('simulated model server', () => {
  it('lists the simulated models', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(['sim-weak-8b', 'sim-strong', 'sim-judge']));
  });

  it('writes a guideline that does not answer, then a strong answer matching the schema', async () => {
    const g = await client.chat.completions.create({
      model: 'sim-weak-8b',
      messages: guidelinePrompt(DOMAIN, PENDING),
      temperature: 0,
    });
    const guideline = content(g);
    const steps = guideline.split('\n').filter((l) => /^\d+\. /.test(l));
    expect(steps.length).toBeGreaterThanOrEqual(4);
    expect(steps.length).toBeLessThanOrEqual(6);
    expect(guideline).not.toContain('scheduler cannot place');
    expect(g.usage?.completion_tokens).toBe(Math.ceil(guideline.length / 4));
    expect(g.system_fingerprint).toBe('meteor-simulator');

    const request: ChatParams = {
      model: 'sim-strong',
      messages: strongAnswerPrompt(DOMAIN, PENDING, guideline),
      temperature: 0,
      response_format: { type: 'json_schema', json_schema: { ...STRONG_ANSWER_SCHEMA, strict: true } },
    };
    const s = await client.chat.completions.create(request);
    const parsed = StrongAnswer.parse(JSON.parse(content(s)));
    expect(parsed.answer).toContain(PENDING.reference);
    // Deterministic: the same request gets the same reply.
    expect(content(await client.chat.completions.create(request))).toBe(content(s));
    expect(sim.stats().recent.slice(-1)[0]).toMatchObject({
      model: 'sim-strong',
      task: 'strong_answer',
      responseFormat: 'json_schema:strong_answer',
      status: 200,
    });
  });

  it('corrects about a fifth of guidelines and answers unknown questions plausibly', async () => {
    let corrected = 0;
    for (let i = 0; i < 40; i++) {
      const q = {
        question: `Synthetic question ${i}: how should the ingress controller handle TLS certificate rotation?`,
      };
      const r = await client.chat.completions.create({
        model: 'sim-strong',
        messages: strongAnswerPrompt(DOMAIN, q, '1. Check things.'),
        temperature: 0,
        response_format: { type: 'json_schema', json_schema: { ...STRONG_ANSWER_SCHEMA } },
      });
      const a = StrongAnswer.parse(JSON.parse(content(r)));
      if (!a.guidelineCorrect) {
        corrected++;
        expect(a.correction).toMatch(/Step \d/);
      }
      expect(a.answer.length).toBeGreaterThan(100);
    }
    expect(corrected).toBeGreaterThanOrEqual(2);
    expect(corrected).toBeLessThanOrEqual(16);
  });

  it('answers weakly as the base model; the verdict and the judge prefer the reference', async () => {
    const weak = content(await ask('sim-weak-8b', renderQuestion(PENDING)));
    expect(weak).not.toContain(PENDING.reference);
    const v = await client.chat.completions.create({
      model: 'sim-strong',
      messages: [{ role: 'user', content: `Question:\n${renderQuestion(PENDING)}\n\nAnswer:\n${weak}` }],
      response_format: verdictSchema,
    });
    const verdict = Verdict.parse(JSON.parse(content(v)));
    expect(verdict.correct).toBe(false);
    // A re-answer that takes the feedback in is judged correct.
    const again = content(
      await client.chat.completions.create({
        model: 'sim-weak-8b',
        temperature: 0,
        messages: [
          {
            role: 'user',
            content: `Question:\n${renderQuestion(PENDING)}\n\nPrevious answer:\n${weak}\n\nFeedback:\n${verdict.feedback}`,
          },
        ],
      }),
    );
    const v2 = await client.chat.completions.create({
      model: 'sim-strong',
      messages: [{ role: 'user', content: `Question:\n${renderQuestion(PENDING)}\n\nAnswer:\n${again}` }],
      response_format: verdictSchema,
    });
    expect(Verdict.parse(JSON.parse(content(v2))).correct).toBe(true);

    const j = Judgment.parse(JSON.parse(content(await judgeAB(PENDING.question, weak, PENDING.reference))));
    expect(j.winner).toBe('B');
    const swapped = Judgment.parse(
      JSON.parse(content(await judgeAB(PENDING.question, PENDING.reference, weak))),
    );
    expect(swapped.winner).toBe('A');
    expect(j.scores.B['accuracy']).toBeGreaterThan(j.scores.A['accuracy'] ?? 10);
  });

  it('returns n choices: identical when greedy, varied by seed when sampling, beams best first', async () => {
    const q = renderQuestion(ROLLBACK);
    const greedy = await ask('sim-weak-8b', q, { n: 3 });
    expect(new Set(greedy.choices.map((c) => c.message.content)).size).toBe(1);

    const sampled = await ask('sim-weak-8b', q, { n: 4, temperature: 0.9, seed: 7 });
    expect(sampled.choices).toHaveLength(4);
    expect(new Set(sampled.choices.map((c) => c.message.content)).size).toBeGreaterThan(1);
    const again = await ask('sim-weak-8b', q, { n: 4, temperature: 0.9, seed: 7 });
    expect(again.choices.map((c) => c.message.content)).toEqual(
      sampled.choices.map((c) => c.message.content),
    );

    const beams = await ask('sim-weak-8b', q, { n: 5, use_beam_search: true, length_penalty: 1.0 });
    expect(beams.choices.map((c) => c.index)).toEqual([0, 1, 2, 3, 4]);
    const best = content(beams, 0);
    const one = content(greedy, 0);
    expect(best.length).toBeGreaterThan(one.length * 1.3);
    expect(best.startsWith(one)).toBe(true);
    expect(new Set(beams.choices.map((c) => c.message.content)).size).toBe(5);
    expect(sim.stats().recent.slice(-1)[0]).toMatchObject({
      n: 5,
      use_beam_search: true,
      length_penalty: 1,
      temperature: 0,
      task: 'answer',
    });
  });

  it('rejects unknown models, streaming and (when configured) beam search', async () => {
    await expect(ask('gpt-nonexistent', 'hi')).rejects.toSatisfy(
      (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
    );
    const res = await fetch(`${sim.url}/chat/completions`, {
      method: 'POST',
      body: '{not json',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
    const streamed = await fetch(`${sim.url}/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({
        model: 'sim-weak-8b',
        stream: true,
        messages: [{ role: 'user', content: 'q' }],
      }),
    });
    expect(streamed.status).toBe(400);

    const noBeam = await startSimServer({ rejectBeamSearch: true });
    try {
      const c = clientFor(noBeam);
      await expect(
        c.chat.completions.create({
          model: 'sim-weak-8b',
          messages: [{ role: 'user', content: 'q' }],
          n: 4,
          use_beam_search: true,
        } as VllmParams),
      ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
      expect(
        (
          await c.chat.completions.create({
            model: 'sim-weak-8b',
            messages: [{ role: 'user', content: 'q' }],
            n: 4,
            temperature: 0.7,
          })
        ).choices,
      ).toHaveLength(4);
    } finally {
      await noBeam.close();
    }
  });

  it('requires the API key when one is set', async () => {
    const secured = await startSimServer({ apiKey: 'sk-sim-secret' });
    try {
      await expect(clientFor(secured, 'wrong').models.list()).rejects.toBeInstanceOf(
        OpenAI.AuthenticationError,
      );
      const ok = await clientFor(secured, 'sk-sim-secret').chat.completions.create({
        model: 'sim-strong',
        messages: [{ role: 'user', content: 'q' }],
      });
      expect(ok.choices).toHaveLength(1);
    } finally {
      await secured.close();
    }
  });

  it('injects faults, latency, and drops hanging requests on close', async () => {
    const faulty = await startSimServer({ failRate: 1, faultKinds: ['429', '500'] });
    const c = clientFor(faulty);
    const call = () =>
      c.chat.completions.create({ model: 'sim-weak-8b', messages: [{ role: 'user', content: 'q' }] });
    try {
      await expect(call()).rejects.toBeInstanceOf(OpenAI.RateLimitError);
      await expect(call()).rejects.toBeInstanceOf(OpenAI.InternalServerError);
      const raw = await fetch(`${faulty.url}/chat/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'sim-weak-8b', messages: [{ role: 'user', content: 'q' }] }),
      });
      expect(raw.status).toBe(429);
      expect(raw.headers.get('retry-after')).toBe('1');
      expect(faulty.stats().faults).toEqual({ '429': 2, '500': 1 });

      faulty.setFaults({ faultKinds: ['timeout'], hangMs: 50 });
      await expect(call()).rejects.toBeInstanceOf(OpenAI.APIConnectionError);

      await fetch(faulty.url.replace(/\/v1$/, '/sim/faults'), {
        method: 'POST',
        body: JSON.stringify({ failRate: 0, latencyMs: 120 }),
      });
      const t0 = Date.now();
      await call();
      expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
      faulty.setLatency(0);

      const stats = (await (await fetch(faulty.url.replace(/\/v1$/, '/sim/stats'))).json()) as {
        requests: number;
        served: number;
      };
      expect(stats).toMatchObject({ requests: 5, served: 1 });
      await fetch(faulty.url.replace(/\/v1$/, '/sim/reset'), { method: 'POST' });
      expect(faulty.stats().requests).toBe(0);

      faulty.setFaults({ failRate: 1, hangMs: 60_000 });
      const hanging = call();
      await new Promise((r) => setTimeout(r, 50));
      const t1 = Date.now();
      await faulty.close();
      await expect(hanging).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
      expect(Date.now() - t1).toBeLessThan(1000);
    } finally {
      await faulty.close();
    }
  });

  it('counts requests in flight per model, and fails the next N with a chosen Retry-After', async () => {
    const s = await startSimServer({ latencyMs: 100 });
    const c = clientFor(s);
    const call = (model: string) =>
      c.chat.completions.create({ model, messages: [{ role: 'user', content: 'q' }] });
    try {
      await Promise.all([call('sim-weak-8b'), call('sim-weak-8b'), call('sim-weak-8b'), call('sim-strong')]);
      expect(s.stats().inFlight).toEqual({
        'sim-weak-8b': { now: 0, peak: 3 },
        'sim-strong': { now: 0, peak: 1 },
      });

      const at = 'Wed, 21 Oct 2015 07:28:00 GMT';
      await fetch(s.url.replace(/\/v1$/, '/sim/faults'), {
        method: 'POST',
        body: JSON.stringify({ faultKinds: ['429'], retryAfter: at, failNext: 2 }),
      });
      for (let i = 0; i < 2; i++) {
        const raw = await fetch(`${s.url}/chat/completions`, {
          method: 'POST',
          body: JSON.stringify({ model: 'sim-strong', messages: [{ role: 'user', content: 'q' }] }),
        });
        expect(raw.status).toBe(429);
        expect(raw.headers.get('retry-after')).toBe(at);
      }
      await call('sim-strong'); // failRate is still 0: the third goes through
      expect(s.stats().faults).toEqual({ '429': 2 });
    } finally {
      await s.close();
    }
  });

  it('serves a loaded LoRA adapter that answers what it learned', async () => {
    const adapterDir = join(dir, 'adapter-hand');
    mkdirSync(adapterDir);
    const learned = 'Learned: ' + CRASHLOOP.reference;
    writeFileSync(
      join(adapterDir, 'adapter.json'),
      JSON.stringify({
        simulation: true,
        baseModel: 'sim-weak-8b',
        examples: [{ question: CRASHLOOP.question, answer: learned }],
        trainedAt: new Date().toISOString(),
        datasetRows: 1,
      }),
    );
    const load = (body: unknown) =>
      fetch(`${sim.url}/load_lora_adapter`, { method: 'POST', body: JSON.stringify(body) });
    expect((await load({ lora_name: 'm-hand', lora_path: join(dir, 'missing') })).status).toBe(400);
    expect((await load({ lora_name: 'm-hand', lora_path: adapterDir })).status).toBe(200);
    expect((await load({ lora_name: 'm-hand', lora_path: adapterDir })).status).toBe(400);

    const ids = (await client.models.list()).data.map((m) => m.id);
    expect(ids).toContain('m-hand');
    expect(content(await ask('m-hand', CRASHLOOP.question))).toBe(learned);
    const guideline = content(
      await client.chat.completions.create({
        model: 'm-hand',
        messages: guidelinePrompt(DOMAIN, CRASHLOOP),
        temperature: 0,
      }),
    );
    expect(guideline).toMatch(/^1\. /);

    // On a question it was not trained on, it still beats the base model.
    const base = content(await ask('sim-weak-8b', ROLLBACK.question));
    const tuned = content(await ask('m-hand', ROLLBACK.question));
    expect(Judgment.parse(JSON.parse(content(await judgeAB(ROLLBACK.question, base, tuned)))).winner).toBe(
      'B',
    );

    expect(
      (
        await fetch(`${sim.url}/unload_lora_adapter`, {
          method: 'POST',
          body: JSON.stringify({ lora_name: 'm-hand' }),
        })
      ).status,
    ).toBe(200);
    await expect(ask('m-hand', 'q')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('trains an adapter with the simulated trainer script, end to end', async () => {
    const dataset = join(dir, 'sft.jsonl');
    const lines = [
      {
        messages: [
          { role: 'system', content: sftSystemPrompt(DOMAIN) },
          { role: 'user', content: renderQuestion(PENDING) },
          { role: 'assistant', content: PENDING.reference },
        ],
      },
      {
        input: { messages: [{ role: 'user', content: ROLLBACK.question }] },
        preferred_output: [{ role: 'assistant', content: ROLLBACK.reference }],
        non_preferred_output: [{ role: 'assistant', content: 'Redeploy it.' }],
      },
    ];
    writeFileSync(dataset, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const parentDir = join(dir, 'parent');
    mkdirSync(parentDir);
    writeFileSync(
      join(parentDir, 'adapter.json'),
      JSON.stringify({
        simulation: true,
        baseModel: 'sim-weak-8b',
        examples: [{ question: CRASHLOOP.question, answer: 'parent answer' }],
        trainedAt: 'x',
        datasetRows: 1,
      }),
    );
    const out = join(dir, 'trained');

    const run = await runTrainer({
      METEOR_DATASET_PATH: dataset,
      METEOR_OUTPUT_DIR: out,
      METEOR_BASE_MODEL: 'sim-weak-8b',
      METEOR_PARENT_ADAPTER: parentDir,
      METEOR_SIM_TRAIN_SECONDS: '0.2',
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/\[simulated trainer\] epoch 3\/3 step 1\/1 loss \d+\.\d{3}/);
    const file = JSON.parse(readFileSync(join(out, 'adapter.json'), 'utf8')) as {
      simulation: boolean;
      datasetRows: number;
      examples: unknown[];
    };
    expect(file).toMatchObject({ simulation: true, baseModel: 'sim-weak-8b', datasetRows: 2 });
    expect(file.examples).toHaveLength(3);

    expect(
      (
        await fetch(`${sim.url}/load_lora_adapter`, {
          method: 'POST',
          body: JSON.stringify({ lora_name: 'm1', lora_path: out }),
        })
      ).status,
    ).toBe(200);
    expect(content(await ask('m1', renderQuestion(PENDING)))).toBe(PENDING.reference);
    expect(content(await ask('m1', ROLLBACK.question))).toBe(ROLLBACK.reference);
    expect(content(await ask('m1', CRASHLOOP.question))).toBe('parent answer');

    writeFileSync(dataset, '{"messages":[{"role":"user","content":"q"}]}\n');
    const bad = await runTrainer({
      METEOR_DATASET_PATH: dataset,
      METEOR_OUTPUT_DIR: join(dir, 'bad'),
      METEOR_BASE_MODEL: 'sim-weak-8b',
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${dataset}:1`);
  });

  it('stops the trainer promptly on SIGTERM', async () => {
    const dataset = join(dir, 'sft-long.jsonl');
    writeFileSync(
      dataset,
      JSON.stringify({
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'a' },
        ],
      }) + '\n',
    );
    const run = await runTrainer(
      {
        METEOR_DATASET_PATH: dataset,
        METEOR_OUTPUT_DIR: join(dir, 'long'),
        METEOR_BASE_MODEL: 'sim-weak-8b',
        METEOR_SIM_TRAIN_SECONDS: '60',
      },
      'simulation: no real training',
    );
    expect(run.code).toBe(143);
  });
});

/** Runs the trainer; with `killAfter`, sends SIGTERM once stdout shows that text. */
function runTrainer(
  env: Record<string, string>,
  killAfter?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('node_modules/.bin/tsx', ['infra/sim/train.ts'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (killAfter && stdout.includes(killAfter)) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('simulated misbehaviour: biased judge and malformed replies', () => {
  const judgeWith = (c: OpenAI, a: string, b: string) =>
    c.chat.completions.create({
      model: 'sim-judge',
      temperature: 0,
      messages: [
        { role: 'user', content: `Question:\n${PENDING.question}\n\nAnswer A:\n${a}\n\nAnswer B:\n${b}` },
      ],
      response_format: { type: 'json_schema', json_schema: { name: 'pairwise_judgment' } },
    });
  const verdictWith = (c: OpenAI, answer: string) =>
    c.chat.completions.create({
      model: 'sim-strong',
      messages: [{ role: 'user', content: `Question:\n${renderQuestion(PENDING)}\n\nAnswer:\n${answer}` }],
      response_format: verdictSchema,
    });
  const parses = (text: string): boolean => {
    try {
      Verdict.parse(JSON.parse(text));
      return true;
    } catch {
      return false;
    }
  };
  const WEAK = 'Check the pod.';

  it("judgeBias 'first' prefers answer A on every dimension, whichever answer is good", async () => {
    const biased = await startSimServer({ knowledgeFiles: [knowledgeFile], judgeBias: 'first' });
    try {
      const c = clientFor(biased);
      for (const [a, b] of [
        [WEAK, PENDING.reference],
        [PENDING.reference, WEAK],
      ] as const) {
        const j = Judgment.parse(JSON.parse(content(await judgeWith(c, a, b))));
        expect(j.winner).toBe('A');
        expect(Object.values(j.dimensions)).toEqual(['A', 'A', 'A', 'A', 'A']);
        expect(j.scores.A['overall']).toBeGreaterThan(j.scores.B['overall'] ?? 10);
      }
      expect(biased.setBehaviour({ judgeBias: 'second' }).judgeBias).toBe('second');
      const second = Judgment.parse(JSON.parse(content(await judgeWith(c, PENDING.reference, WEAK))));
      expect(second.winner).toBe('B');
      const res = await fetch(biased.url.replace(/\/v1$/, '/sim/behaviour'), {
        method: 'POST',
        body: JSON.stringify({ judgeBias: null }),
      });
      expect(await res.json()).toMatchObject({ judgeBias: null });
      const fair = Judgment.parse(JSON.parse(content(await judgeWith(c, PENDING.reference, WEAK))));
      expect(fair.winner).toBe('A');
      expect(Judgment.parse(JSON.parse(content(await judgeWith(c, WEAK, PENDING.reference)))).winner).toBe(
        'B',
      );
    } finally {
      await biased.close();
    }
  });

  it('malformedRate 1 breaks every reply of that schema only, and counts them', async () => {
    const broken = await startSimServer({
      knowledgeFiles: [knowledgeFile],
      malformedRate: { assessment_verdict: 1 },
    });
    try {
      const c = clientFor(broken);
      const replies: string[] = [];
      for (let i = 0; i < 4; i++) replies.push(content(await verdictWith(c, WEAK)));
      expect(replies.filter(parses)).toHaveLength(0);
      // Both kinds: not JSON at all, and JSON missing the required fields.
      expect(replies.some((r) => !r.trim().endsWith('}'))).toBe(true);
      expect(replies.filter((r) => r === '{}')).toHaveLength(2);
      Judgment.parse(JSON.parse(content(await judgeWith(c, WEAK, PENDING.reference))));
      expect(broken.stats().malformed).toEqual({ assessment_verdict: 4 });
      expect(broken.stats().recent.filter((r) => r.malformed === 1)).toHaveLength(4);
    } finally {
      await broken.close();
    }
  });

  it('malformedRate 0.5 breaks some replies to the same request, deterministically from the seed', async () => {
    const flaky = await startSimServer({
      knowledgeFiles: [knowledgeFile],
      malformedRate: { assessment_verdict: 0.5 },
      seed: 7,
    });
    try {
      const c = clientFor(flaky);
      const run = async () => {
        const ok: boolean[] = [];
        for (let i = 0; i < 24; i++) ok.push(parses(content(await verdictWith(c, WEAK))));
        return ok;
      };
      const first = await run();
      const bad = first.filter((x) => !x).length;
      expect(bad).toBeGreaterThan(3);
      expect(bad).toBeLessThan(21);
      expect(flaky.stats().malformed).toEqual({ assessment_verdict: bad });
      flaky.reset();
      expect(await run()).toEqual(first);
      // Turned off at runtime.
      flaky.setBehaviour({ malformedRate: { assessment_verdict: 0 } });
      expect(parses(content(await verdictWith(c, WEAK)))).toBe(true);
    } finally {
      await flaky.close();
    }
  });
});
