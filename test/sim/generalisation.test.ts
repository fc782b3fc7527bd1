/**
 * The simulator's fine-tunes generalise along their lineage, and its judge does not saturate.
 * Every model here is a simulation (infra/sim), not a real model: these tests check that the
 * simulation behaves as documented, so that the demo's evaluation shows an evolution.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderQuestion } from '../../core/prompts';
import type { AdapterFile, TrainingCounts } from '../../infra/sim/adapters';
import { skillsOf } from '../../infra/sim/adapters';
import { DIMENSIONS, judge } from '../../infra/sim/grading';
import { readKnowledgeFile } from '../../infra/sim/knowledge';
import { recall, sentences } from '../../infra/sim/text';
import { generalizedPlan, render, weakPlan } from '../../infra/sim/writing';

const EXAMPLES = join(__dirname, '../../examples/kubernetes-ops');
const EVAL = readKnowledgeFile(join(EXAMPLES, 'eval.jsonl'));
const TRAIN = readKnowledgeFile(join(EXAMPLES, 'train.jsonl'));

function adapterFile(generation: number, training: TrainingCounts): AdapterFile {
  return {
    simulation: true,
    baseModel: 'sim-weak-8b',
    examples: [],
    trainedAt: 'x',
    datasetRows: 0,
    generation,
    training,
  };
}

// The example campaign's lineage: distill → assess × 2 (answers and critiques) → contrast × 2.
const LINEAGE = [
  adapterFile(1, { sft: 48, critique: 0, preference: 0 }),
  adapterFile(3, { sft: 144, critique: 96, preference: 0 }),
  adapterFile(5, { sft: 144, critique: 96, preference: 96 }),
];

const questionOf = (item: { title?: string; question: string }) => renderQuestion(item);
const base = (item: (typeof EVAL)[number]) => render(weakPlan(questionOf(item), item.reference, 0), 0);
/** Greedy answer of an adapter with these skills to an unseen question. */
const tuned = (file: AdapterFile, item: (typeof EVAL)[number], i: number) => {
  const near = TRAIN[i % TRAIN.length]!;
  const nearest = { answer: near.reference, score: 0.1 };
  return render(generalizedPlan(questionOf(item), item.reference, skillsOf(file), nearest, 0), 0);
};
/** How many of the reference's sentences the answer states word for word. */
const stated = (reference: string, answer: string) =>
  sentences(reference).filter((s) => answer.includes(s)).length;

describe('simulated generalisation along a lineage', () => {
  it('skills grow with answer, critique and preference rows and with generations, never reaching 1', () => {
    const s = LINEAGE.map(skillsOf);
    expect(s[0]!.knowledge).toBeLessThan(s[1]!.knowledge);
    expect(s[1]!.knowledge).toBeLessThan(s[2]!.knowledge);
    expect(s[0]!.critique).toBe(0);
    expect(s[1]!.critique).toBeGreaterThan(0);
    expect(s[1]!.preference).toBe(0);
    expect(s[2]!.preference).toBeGreaterThan(0);
    const huge = skillsOf(adapterFile(50, { sft: 1e6, critique: 1e6, preference: 1e6 }));
    for (const v of Object.values(huge)) expect(v).toBeLessThan(1);
    // A hand-written adapter file (no lineage fields) is a first fine-tune on its examples.
    const legacy: AdapterFile = {
      simulation: true,
      baseModel: 'sim-weak-8b',
      examples: [{ question: 'q', answer: 'a' }],
      trainedAt: 'x',
      datasetRows: 1,
    };
    expect(skillsOf(legacy)).toEqual(skillsOf(adapterFile(1, { sft: 1, critique: 0, preference: 0 })));
  });

  it('states more of the reference on unseen questions stage by stage, never all of it', () => {
    const means = LINEAGE.map((file) => {
      let total = 0;
      EVAL.forEach((item, i) => {
        const answer = tuned(file, item, i);
        expect(stated(item.reference, answer)).toBeLessThan(sentences(item.reference).length);
        total += recall(item.reference, answer);
      });
      return total / EVAL.length;
    });
    expect(means[0]).toBeLessThan(means[1]!);
    expect(means[1]).toBeLessThan(means[2]!);
    // Per question: a descendant states at least the points its ancestor stated.
    EVAL.forEach((item, i) => {
      const counts = LINEAGE.map((file) => stated(item.reference, tuned(file, item, i)));
      expect(counts).toEqual([...counts].sort((a, b) => a - b));
    });
    // And it is the same answer every time.
    expect(tuned(LINEAGE[0]!, EVAL[0]!, 0)).toBe(tuned(LINEAGE[0]!, EVAL[0]!, 0));
  });
});

describe('the simulated judge', () => {
  it('mirrors its judgment when the answers swap places, and is deterministic', () => {
    EVAL.forEach((item, i) => {
      const q = questionOf(item);
      const a = tuned(LINEAGE[i % 3]!, item, i);
      const b = base(item);
      const ab = judge(q, item.reference, a, b);
      const ba = judge(q, item.reference, b, a);
      const flip = (s: string) => (s === 'A' ? 'B' : s === 'B' ? 'A' : s);
      expect(ba.winner).toBe(flip(ab.winner));
      for (const d of DIMENSIONS) expect(ba.dimensions[d]).toBe(flip(ab.dimensions[d]));
      expect(ba.scores).toEqual({ A: ab.scores.B, B: ab.scores.A });
      expect(judge(q, item.reference, a, b)).toEqual(ab);
    });
  });

  it('does not saturate: close answers tie, the weakest fine-tune does not win everything', () => {
    const sides = { A: 0, B: 0, tie: 0 };
    let closeTies = 0;
    EVAL.forEach((item, i) => {
      const q = questionOf(item);
      const j = judge(q, item.reference, tuned(LINEAGE[0]!, item, i), base(item));
      for (const d of DIMENSIONS) sides[j.dimensions[d]]++;
      // The same answer with a closing remark: nearly the same, so mostly ties.
      const b = base(item);
      const close = judge(q, item.reference, b, `${b} Hope this helps.`);
      closeTies += DIMENSIONS.filter((d) => close.dimensions[d] === 'tie').length;
    });
    const n = EVAL.length * DIMENSIONS.length;
    expect(sides.A).toBeGreaterThan(sides.B);
    expect(sides.A).toBeLessThan(n);
    expect(sides.tie).toBeGreaterThan(0);
    expect(closeTies).toBeGreaterThan(n / 2);
  });

  it('prefers the reference to the base model on every question', () => {
    for (const item of EVAL) {
      const j = judge(questionOf(item), item.reference, base(item), item.reference);
      expect(j.winner).toBe('B');
      expect(j.scores.B.accuracy).toBeGreaterThan(j.scores.A.accuracy);
    }
  });
});

describe('the simulated trainer records the lineage', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meteor-sim-lineage-'));
  const sft = (user: string, assistant: string) =>
    JSON.stringify({
      messages: [
        { role: 'user', content: user },
        { role: 'assistant', content: assistant },
      ],
    });

  it('counts answer, critique and preference rows and generations along the parent chain', async () => {
    const [a, b] = TRAIN as [(typeof TRAIN)[number], (typeof TRAIN)[number]];
    const first = join(dir, 'sft.jsonl');
    writeFileSync(
      first,
      [
        sft(a.question, a.reference),
        sft(b.question, b.reference),
        sft(
          `Question:\n${a.question}\n\nAnswer:\nRestart it.\n\nIs this answer correct? Reply as JSON.`,
          JSON.stringify({ correct: false, feedback: 'It should also say why.' }),
        ),
      ].join('\n') + '\n',
    );
    const m1 = join(dir, 'm1');
    expect((await train(first, m1)).code).toBe(0);
    const f1 = readAdapter(m1);
    expect(f1).toMatchObject({
      generation: 1,
      datasetRows: 3,
      training: { sft: 2, critique: 1, preference: 0 },
    });
    expect(f1.examples).toHaveLength(2);

    const second = join(dir, 'pairs.jsonl');
    writeFileSync(
      second,
      JSON.stringify({
        input: { messages: [{ role: 'user', content: a.question }] },
        preferred_output: [{ role: 'assistant', content: `${a.reference} Check it afterwards.` }],
        non_preferred_output: [{ role: 'assistant', content: 'Restart it.' }],
      }) + '\n',
    );
    const m2 = join(dir, 'm2');
    expect((await train(second, m2, m1)).code).toBe(0);
    expect(readAdapter(m2)).toMatchObject({
      generation: 2,
      datasetRows: 1,
      training: { sft: 2, critique: 1, preference: 1 },
    });
    expect(skillsOf(readAdapter(m2)).knowledge).toBeGreaterThan(skillsOf(f1).knowledge);
  });
});

function readAdapter(dir: string): AdapterFile {
  return JSON.parse(readFileSync(join(dir, 'adapter.json'), 'utf8')) as AdapterFile;
}

function train(dataset: string, out: string, parent?: string): Promise<{ code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn('node_modules/.bin/tsx', ['infra/sim/train.ts'], {
      env: {
        ...process.env,
        METEOR_DATASET_PATH: dataset,
        METEOR_OUTPUT_DIR: out,
        METEOR_BASE_MODEL: 'sim-weak-8b',
        METEOR_SIM_TRAIN_SECONDS: '0',
        ...(parent ? { METEOR_PARENT_ADAPTER: parent } : {}),
      },
      stdio: 'ignore',
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code }));
  });
}
