import { describe, expect, it } from 'vitest';
import { sftLine } from '../../core/dataset-formats';

const ex = {
  system: 'You are an expert.',
  user: 'Why is my pod Pending?',
  assistant: 'Check the scheduler events.',
};

describe('sftLine', () => {
  it('writes OpenAI chat fine-tuning lines: messages of system, user, assistant', () => {
    expect(sftLine('openai', ex)).toEqual({
      messages: [
        { role: 'system', content: ex.system },
        { role: 'user', content: ex.user },
        { role: 'assistant', content: ex.assistant },
      ],
    });
  });

  it("writes TRL's conversational prompt-completion lines", () => {
    expect(sftLine('trl', ex)).toEqual({
      prompt: [
        { role: 'system', content: ex.system },
        { role: 'user', content: ex.user },
      ],
      completion: [{ role: 'assistant', content: ex.assistant }],
    });
  });

  it('writes LLaMA-Factory alpaca lines', () => {
    expect(sftLine('llamafactory', ex)).toEqual({
      instruction: ex.user,
      input: '',
      output: ex.assistant,
      system: ex.system,
    });
  });
});
