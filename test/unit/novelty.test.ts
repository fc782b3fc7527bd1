/** Task evolution's novelty check (core/evolution/novelty.ts): near-copies of any known question are dropped. */
import { describe, expect, it } from 'vitest';
import { NoveltyFilter } from '../../core/evolution/novelty';

const train = [
  {
    id: 't1',
    text: 'Why does my pod stay in CrashLoopBackOff after a config change?',
    split: 'train' as const,
  },
  {
    id: 't2',
    text: 'How do I rotate the TLS certificate of an ingress controller?',
    split: 'train' as const,
  },
];
const heldOut = [
  { id: 'e1', text: 'How can I drain a node without evicting DaemonSet pods?', split: 'eval' as const },
];

describe('novelty filter', () => {
  it('drops a near-copy of a held-out question as such, so nothing of the evaluation leaks into training', () => {
    const f = new NoveltyFilter([...train, ...heldOut], 0.6);
    const v = f.check('How can I drain a node without evicting the DaemonSet pods?');
    expect(v).toMatchObject({ novel: false, reason: 'near-held-out', similarTo: 'e1' });
  });

  it('drops a near-copy of a training question, and keeps a new one', () => {
    const f = new NoveltyFilter([...train, ...heldOut], 0.6);
    expect(
      f.check('Why does my pod stay in CrashLoopBackOff after a config change? Please explain.'),
    ).toMatchObject({
      novel: false,
      reason: 'near-duplicate',
      similarTo: 't1',
    });
    const fresh = f.check('Which metrics show that the cluster autoscaler is about to add nodes?');
    expect(fresh.novel).toBe(true);
  });

  it('checks later candidates against the questions kept before them', () => {
    const f = new NoveltyFilter(train, 0.6);
    const q = 'Which metrics show that the cluster autoscaler is about to add nodes?';
    expect(f.check(q).novel).toBe(true);
    f.add({ id: 'evolved-1', text: q, split: 'train' });
    expect(f.check(`${q} Explain briefly.`)).toMatchObject({ novel: false, similarTo: 'evolved-1' });
    expect(f.size).toBe(3);
  });

  it('still compares a candidate made only of common words', () => {
    const common = Array.from({ length: 120 }, (_, i) => ({
      id: `c${i}`,
      text: `the pod is the pod ${i}`,
      split: 'train' as const,
    }));
    const f = new NoveltyFilter(common, 0.6);
    expect(f.check('the pod is the pod')).toMatchObject({ novel: false, reason: 'near-duplicate' });
  });
});
