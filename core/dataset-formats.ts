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

export const PREFERENCE_FORMATS = ['openai', 'trl', 'llamafactory'] as const;
export type PreferenceFormat = (typeof PREFERENCE_FORMATS)[number];

/** A preference example: the prompt, the output to prefer and the one to avoid. */
export interface PreferenceExample {
  system: string;
  user: string;
  chosen: string;
  rejected: string;
}

export function preferenceLine(format: PreferenceFormat, ex: PreferenceExample): Record<string, unknown> {
  const prompt: ChatMessage[] = [
    { role: 'system', content: ex.system },
    { role: 'user', content: ex.user },
  ];
  const chosen: ChatMessage = { role: 'assistant', content: ex.chosen };
  const rejected: ChatMessage = { role: 'assistant', content: ex.rejected };
  switch (format) {
    case 'openai':
      // OpenAI DPO fine-tuning (also Together and Fireworks preference tuning).
      return { input: { messages: prompt }, preferred_output: [chosen], non_preferred_output: [rejected] };
    case 'trl':
      // TRL preference with an explicit prompt, conversational.
      return { prompt, chosen: [chosen], rejected: [rejected] };
    case 'llamafactory':
      // LLaMA-Factory alpaca ranking format (register with ranking: true in dataset_info.json).
      return { instruction: ex.user, input: '', chosen: ex.chosen, rejected: ex.rejected, system: ex.system };
  }
}
