/**
 * How the simulator finds a known question in a request (infra/sim/questions.ts): by its text,
 * inside a prompt that wraps it, or by word overlap. The simulated models' answers depend on it
 * (what the strong model knows, what an adapter learned), so which entry wins must not change
 * with how the lookup is indexed.
 */
import { describe, expect, it } from 'vitest';
import { QuestionIndex } from '../../infra/sim/questions';

function indexOf(entries: Array<[string, string]>): QuestionIndex<string> {
  const index = new QuestionIndex<string>();
  for (const [key, value] of entries) index.add([key], value);
  return index;
}

describe('QuestionIndex', () => {
  it('finds a question by its normalised text', () => {
    const index = indexOf([['Why is my pod stuck in CrashLoopBackOff?', 'crash']]);
    expect(index.find('why is my POD stuck in crashloopbackoff')).toBe('crash');
  });

  it('finds the longest indexed question a prompt wraps, the first indexed of equals', () => {
    const index = indexOf([
      ['the rollout of my deployment never finishes', 'shorter'],
      ['why the rollout of my deployment never finishes', 'longest'],
      ['my deployment never finishes', 'shortest'],
    ]);
    const prompt =
      'You are an expert. Guidelines: be brief.\n\nQuestion: Why the rollout of my deployment never ' +
      'finishes?\n\nAnswer the question.';
    expect(index.find(prompt)).toBe('longest');
    const equals = indexOf([
      ['alpha rollout of my deployment never ends', 'first'],
      ['bravo rollout of my deployment never ends', 'second'],
    ]);
    expect(
      equals.find('bravo rollout of my deployment never ends and alpha rollout of my deployment never ends'),
    ).toBe('first');
  });

  it('matches whole words only, and no question shorter than 24 characters inside a prompt', () => {
    const index = indexOf([
      ['pods restart every hour on node', 'restart'],
      ['node is not ready', 'short'],
    ]);
    expect(index.find('why do my pods restart every hour on nodes of the pool')).toBeUndefined();
    expect(index.find('context: the node is not ready since monday, what now')).toBeUndefined();
    expect(index.find('context: why do my pods restart every hour on node b')).toBe('restart');
  });

  it('takes a question reworded by a word or two, not one that merely shares words', () => {
    const index = indexOf([['how do I rotate the TLS certificate of the ingress controller', 'tls']]);
    expect(index.find('how do I rotate the TLS certificate of the nginx ingress controller')).toBe('tls');
    expect(index.find('how do I rotate the TLS certificate of a service mesh')).toBeUndefined();
  });

  it('names the nearest question by topic, however far', () => {
    const index = indexOf([
      ['how do I rotate the TLS certificate of the ingress controller', 'tls'],
      ['why is the persistent volume claim pending forever', 'pvc'],
    ]);
    expect(index.nearest('my volume claim stays pending')?.value).toBe('pvc');
    expect(index.nearest('nothing in common here')).toEqual({ value: 'tls', score: 0 });
  });
});
