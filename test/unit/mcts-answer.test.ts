/**
 * How the `mcts` stage turns a chosen path into its final answer and its SFT completion
 * (stages/mcts/prompts.ts): a last step that states the answer is the answer; otherwise the steps are.
 */
import { describe, expect, it } from 'vitest';
import { mctsFinalAnswer, mctsSftCompletion } from '../../stages/mcts/prompts';

describe('mcts final answer', () => {
  it('is the steps, one per line, when no step states the answer', () => {
    const steps = ['Check the pod events. ', 'Then read the container logs.'];
    expect(mctsFinalAnswer(steps)).toBe('Check the pod events.\nThen read the container logs.');
    expect(mctsSftCompletion(steps, mctsFinalAnswer(steps))).toBe(
      'Reasoning:\n1. Check the pod events.\n2. Then read the container logs.\n\n' +
        'Final answer:\nCheck the pod events.\nThen read the container logs.',
    );
  });

  it("is a last step's stated answer, which then is not repeated in the reasoning", () => {
    const steps = ['The image tag does not exist.', 'Final answer: fix the tag and redeploy.'];
    expect(mctsFinalAnswer(steps)).toBe('fix the tag and redeploy.');
    expect(mctsSftCompletion(steps, mctsFinalAnswer(steps))).toBe(
      'Reasoning:\n1. The image tag does not exist.\n\nFinal answer:\nfix the tag and redeploy.',
    );
    expect(mctsFinalAnswer(['answer：  restart it'])).toBe('restart it');
    expect(mctsSftCompletion(['Answer: restart it'], 'restart it')).toBe('Final answer:\nrestart it');
  });

  it('is empty for a path without steps; a step merely mentioning an answer is a step', () => {
    expect(mctsFinalAnswer([])).toBe('');
    expect(mctsFinalAnswer(['The answer depends on the node.'])).toBe('The answer depends on the node.');
  });
});
