import { describe, expect, it } from 'vitest';
import { bestIndex, chosenIsFirst } from '../../stages/contrast/batch';
import { tokenJaccard, wordSet } from '../../core/text-similarity';

describe('tokenJaccard', () => {
  it('is 1 for identical texts and for texts with the same words', () => {
    const t = 'Check the pod events with kubectl describe pod.';
    expect(tokenJaccard(t, t)).toBe(1);
    expect(tokenJaccard('Hello, World!', 'world hello')).toBe(1);
    expect(tokenJaccard('', '')).toBe(1);
    expect(tokenJaccard('...', '!!')).toBe(1);
  });

  it('is 0 for texts without a word in common, or when only one has words', () => {
    expect(tokenJaccard('alpha beta', 'gamma delta')).toBe(0);
    expect(tokenJaccard('alpha', '')).toBe(0);
  });

  it('is |A ∩ B| / |A ∪ B| over lower-cased words, ignoring punctuation and repeats', () => {
    // {the, pod, is, pending} vs {the, pod, is, running}: 3 shared of 5.
    expect(tokenJaccard('The pod is Pending.', 'the pod is running, the pod')).toBeCloseTo(3 / 5);
    expect(tokenJaccard('a b c d', 'c d e f')).toBeCloseTo(2 / 6);
  });

  it('is symmetric and between 0 and 1', () => {
    const a = 'Increase the memory limit of the container; OOMKilled means it ran out.';
    const b = 'The container was OOMKilled: raise its memory limit or find the leak.';
    expect(tokenJaccard(a, b)).toBe(tokenJaccard(b, a));
    expect(tokenJaccard(a, b)).toBeGreaterThan(0);
    expect(tokenJaccard(a, b)).toBeLessThan(1);
  });

  it('normalises words of any script and digits', () => {
    expect([...wordSet('Größe 42, größe ÉTÉ')].sort()).toEqual(['42', 'größe', 'été']);
  });
});

describe('best-of-N ranking', () => {
  it('picks the highest score, the earliest sample on a tie', () => {
    expect(bestIndex([3, 7, 5])).toBe(1);
    expect(bestIndex([6, 8, 8, 2])).toBe(1);
    expect(bestIndex([4])).toBe(0);
  });

  it('ranks an unparseable critique (score 0) below every real score', () => {
    expect(bestIndex([0, 1, 0])).toBe(1);
    expect(bestIndex([0, 0])).toBe(0);
  });
});

describe('pairwise self-critique positions', () => {
  it('are fixed per question and put the chosen output first for about half of the questions', () => {
    const ids = Array.from({ length: 200 }, (_, i) => `q-${i}`);
    expect(ids.map(chosenIsFirst)).toEqual(ids.map(chosenIsFirst));
    const first = ids.filter(chosenIsFirst).length;
    expect(first).toBeGreaterThan(70);
    expect(first).toBeLessThan(130);
  });
});
