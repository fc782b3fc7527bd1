/**
 * The simulator's fine-tune effect depends on what the dataset says, not only on its size: an
 * adapter learns an answer only when the simulation's own critic says it is right, and a
 * preference pair only when its chosen answer covers the reference better than its rejected one.
 * A dataset whose answers are shuffled between questions, or whose chosen and rejected are
 * swapped, shows no gain. Checked on the grading code, then end to end through the real trainer
 * script (what the `local` backend runs), vLLM's LoRA load API and chat completions over HTTP.
 * Every model here is a simulation (infra/sim), not a real model.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderQuestion, sftSystemPrompt } from '../../core/prompts';
import type { AdapterFile, TrainedRow } from '../../infra/sim/adapters';
import { learnedOf, skillsFrom } from '../../infra/sim/adapters';
import { KnowledgeBase, readKnowledgeFile, type KnowledgeItem } from '../../infra/sim/knowledge';
import { graderFor } from '../../infra/sim/learning';
import type { SimServer } from '../../infra/sim/server';
import { startSimServer } from '../../infra/sim/server';
import { recall } from '../../infra/sim/text';
import { render, weakPlan } from '../../infra/sim/writing';

const EXAMPLES = join(__dirname, '../../examples/kubernetes-ops');
const TRAIN_FILE = join(EXAMPLES, 'train.jsonl');
const EVAL_FILE = join(EXAMPLES, 'eval.jsonl');
const TRAIN = readKnowledgeFile(TRAIN_FILE);
const EVAL = readKnowledgeFile(EVAL_FILE);
const DOMAIN = 'Kubernetes operations';
const kb = KnowledgeBase.fromFiles([TRAIN_FILE, EVAL_FILE]);
const grade = graderFor(kb);

/** Each question paired with the next one's answer: every answer is some other question's. */
const shuffled = <T>(xs: readonly T[]): T[] => [...xs.slice(1), ...xs.slice(0, 1)];
/** The base model's greedy answer: what a preference pair rejects. */
const baseAnswer = (item: KnowledgeItem) => render(weakPlan(renderQuestion(item), item.reference, 0), 0);

interface Variant {
  kind: TrainedRow['kind'];
  rows: Array<{ item: KnowledgeItem; answer: string; rejected?: string }>;
}

const VARIANTS: Record<string, Variant> = {
  sft: { kind: 'sft', rows: TRAIN.map((item) => ({ item, answer: item.reference })) },
  'sft, answers shuffled between questions': {
    kind: 'sft',
    rows: TRAIN.map((item, i) => ({ item, answer: shuffled(TRAIN)[i]!.reference })),
  },
  preference: {
    kind: 'preference',
    rows: TRAIN.map((item) => ({ item, answer: item.reference, rejected: baseAnswer(item) })),
  },
  'preference, chosen and rejected swapped': {
    kind: 'preference',
    rows: TRAIN.map((item) => ({ item, answer: baseAnswer(item), rejected: item.reference })),
  },
};
const GAIN = ['sft', 'preference'];
const NO_GAIN = ['sft, answers shuffled between questions', 'preference, chosen and rejected swapped'];

function adapterOf(v: Variant): AdapterFile {
  const trained: TrainedRow[] = v.rows.map((r) => ({
    generation: 1,
    kind: v.kind,
    question: renderQuestion(r.item),
    answer: r.answer,
    ...(r.rejected !== undefined ? { rejected: r.rejected } : {}),
  }));
  return {
    simulation: true,
    baseModel: 'sim-weak-8b',
    examples: [],
    trainedAt: 'x',
    datasetRows: trained.length,
    generation: 1,
    training: {
      sft: v.kind === 'sft' ? trained.length : 0,
      critique: 0,
      preference: v.kind === 'preference' ? trained.length : 0,
    },
    trained,
  };
}

describe('what a simulated fine-tune learns (grading)', () => {
  it('learns right answers and better-than-rejected preferences, nothing from shuffled or swapped data', () => {
    const learned = Object.fromEntries(
      Object.entries(VARIANTS).map(([name, v]) => {
        const file = adapterOf(v);
        return [name, learnedOf(file, grade)];
      }),
    );
    expect(learned['sft']).toMatchObject({ training: { sft: TRAIN.length, preference: 0 } });
    expect(learned['sft']?.examples).toHaveLength(TRAIN.length);
    expect(learned['preference']).toMatchObject({ training: { sft: 0, preference: TRAIN.length } });
    for (const name of NO_GAIN) {
      expect(learned[name], name).toMatchObject({
        training: { sft: 0, critique: 0, preference: 0 },
        examples: [],
      });
      expect(Object.values(skillsFrom(learned[name]!)), name).toEqual([0, 0, 0]);
    }
    for (const name of GAIN) expect(skillsFrom(learned[name]!).knowledge, name).toBeGreaterThan(0);
  });

  it('a fine-tune on shuffled answers leaves its parent where it was', () => {
    const parent = adapterOf(VARIANTS['sft']!);
    const child = adapterOf(VARIANTS['sft, answers shuffled between questions']!);
    const lineage: AdapterFile = {
      ...child,
      generation: 2,
      trained: [...(parent.trained ?? []), ...(child.trained ?? []).map((r) => ({ ...r, generation: 2 }))],
    };
    const before = learnedOf(parent, grade);
    const after = learnedOf(lineage, grade);
    expect(after.training).toEqual(before.training);
    expect(after.generation).toBe(1);
    expect(skillsFrom(after)).toEqual(skillsFrom(before));
    // It still knows each question's own answer, not the shuffled one.
    expect(after.examples).toEqual(before.examples);
  });

  it('a preference set half right and half swapped teaches nothing; mostly right teaches the difference', () => {
    const right = VARIANTS['preference']!.rows;
    const swapped = VARIANTS['preference, chosen and rejected swapped']!.rows;
    const mix = (nRight: number): number => {
      const rows = [...right.slice(0, nRight), ...swapped.slice(nRight)];
      const file = adapterOf({ kind: 'preference', rows });
      return learnedOf(file, grade).training.preference;
    };
    expect(mix(TRAIN.length / 2)).toBe(0);
    expect(mix(36)).toBe(36 - 12);
  });
});

describe('through the simulated trainer and the LoRA API', () => {
  let sim: SimServer;
  let client: OpenAI;
  const dir = mkdtempSync(join(tmpdir(), 'meteor-sim-content-'));

  beforeAll(async () => {
    sim = await startSimServer({ knowledgeFiles: [TRAIN_FILE, EVAL_FILE] });
    client = new OpenAI({ baseURL: sim.url, apiKey: 'none', maxRetries: 0 });
  });
  afterAll(async () => {
    await sim?.close();
  });

  /** The dataset as the platform exports it (OpenAI SFT or preference lines). */
  function writeDataset(name: string, v: Variant): string {
    const file = join(dir, `${name.replace(/\W+/g, '-')}.jsonl`);
    const lines = v.rows.map((r) => {
      const input = [
        { role: 'system', content: sftSystemPrompt(DOMAIN) },
        { role: 'user', content: renderQuestion(r.item) },
      ];
      return v.kind === 'sft'
        ? { messages: [...input, { role: 'assistant', content: r.answer }] }
        : {
            input: { messages: input },
            preferred_output: [{ role: 'assistant', content: r.answer }],
            non_preferred_output: [{ role: 'assistant', content: r.rejected ?? '' }],
          };
    });
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    return file;
  }

  function train(dataset: string, out: string): Promise<number | null> {
    return new Promise((resolve, reject) => {
      const child = spawn('node_modules/.bin/tsx', ['infra/sim/train.ts'], {
        env: {
          ...process.env,
          METEOR_DATASET_PATH: dataset,
          METEOR_OUTPUT_DIR: out,
          METEOR_BASE_MODEL: 'sim-weak-8b',
          METEOR_SIM_TRAIN_SECONDS: '0',
        },
        stdio: 'ignore',
      });
      child.on('error', reject);
      child.on('close', resolve);
    });
  }

  async function answers(model: string, items: readonly KnowledgeItem[]): Promise<string[]> {
    return Promise.all(
      items.map(async (item) => {
        const res = await client.chat.completions.create({
          model,
          messages: [
            { role: 'system', content: sftSystemPrompt(DOMAIN) },
            { role: 'user', content: renderQuestion(item) },
          ],
          temperature: 0,
        });
        return res.choices[0]?.message.content ?? '';
      }),
    );
  }

  /** Mean share of the reference's content words an answer states: the simulation's own critic. */
  const coverage = (items: readonly KnowledgeItem[], texts: readonly string[]) =>
    items.reduce((s, item, i) => s + recall(item.reference, texts[i] ?? ''), 0) / items.length;

  it('normal data → gain; shuffled answers or swapped preferences → the base model’s answers exactly', async () => {
    const names = Object.keys(VARIANTS);
    const codes = await Promise.all(
      names.map((name, i) => train(writeDataset(name, VARIANTS[name]!), join(dir, `adapter-${i}`))),
    );
    expect(codes).toEqual(names.map(() => 0));
    for (const [i] of names.entries()) {
      const res = await fetch(sim.url.replace(/\/v1$/, '/v1/load_lora_adapter'), {
        method: 'POST',
        body: JSON.stringify({ lora_name: `adapter-${i}`, lora_path: join(dir, `adapter-${i}`) }),
      });
      expect(res.status).toBe(200);
    }
    const baseEval = await answers('sim-weak-8b', EVAL);
    const baseTrain = await answers('sim-weak-8b', TRAIN);
    const figures: Record<string, { eval: number; train: number }> = {
      base: { eval: coverage(EVAL, baseEval), train: coverage(TRAIN, baseTrain) },
    };
    for (const [i, name] of names.entries()) {
      const onEval = await answers(`adapter-${i}`, EVAL);
      const onTrain = await answers(`adapter-${i}`, TRAIN);
      figures[name] = { eval: coverage(EVAL, onEval), train: coverage(TRAIN, onTrain) };
      if (NO_GAIN.includes(name)) {
        expect(onEval, name).toEqual(baseEval);
        expect(onTrain, name).toEqual(baseTrain);
      }
    }
    process.stderr.write(`[content-learning] mean coverage of the reference: ${JSON.stringify(figures)}\n`);
    for (const name of GAIN) {
      expect(figures[name]!.eval, name).toBeGreaterThan(figures['base']!.eval);
      expect(figures[name]!.train, name).toBeGreaterThan(figures['base']!.train);
    }
  });
});
