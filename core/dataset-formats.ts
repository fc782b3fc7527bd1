/**
 * Training-data formats (REFERENCE.md §3), one converter per format. A stage produces neutral
 * examples; these turn them into the lines each trainer reads.
 */
import type { ChatMessage } from './llm/types';

export const SFT_FORMATS = ['openai', 'trl', 'llamafactory'] as const;
export type SftFormat = (typeof SFT_FORMATS)[number];

/** A supervised example: the prompt the model will see and the answer it should give. */
export interface SftExample {
  system: string;
  user: string;
  assistant: string;
}

export function sftLine(format: SftFormat, ex: SftExample): Record<string, unknown> {
  const system: ChatMessage = { role: 'system', content: ex.system };
  const user: ChatMessage = { role: 'user', content: ex.user };
  const assistant: ChatMessage = { role: 'assistant', content: ex.assistant };
  switch (format) {
    case 'openai':
      // OpenAI chat fine-tuning, also TRL's conversational "messages" format.
      return { messages: [system, user, assistant] };
    case 'trl':
      // TRL conversational prompt-completion: the loss falls on the completion only.
      return { prompt: [system, user], completion: [assistant] };
    case 'llamafactory':
      // LLaMA-Factory alpaca format (register with formatting: alpaca in dataset_info.json).
      return { instruction: ex.user, input: '', output: ex.assistant, system: ex.system };
  }
}
