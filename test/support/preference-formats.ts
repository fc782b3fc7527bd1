/**
 * Schemas of the preference dataset formats (REFERENCE.md §3), written from each trainer's
 * documentation rather than from the exporter, so tests check the files against the formats.
 */
import { z } from 'zod';
import type { PreferenceFormat } from '../../core/dataset-formats';

const Message = z.strictObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string().min(1),
});
const Assistant = z.strictObject({ role: z.literal('assistant'), content: z.string().min(1) });

/** OpenAI preference (DPO) fine-tuning, also Together and Fireworks. */
export const OpenAiDpoLine = z.strictObject({
  input: z.strictObject({ messages: z.array(Message).min(1) }),
  preferred_output: z.array(Assistant).length(1),
  non_preferred_output: z.array(Assistant).length(1),
});

/** TRL preference, conversational, with an explicit prompt. */
export const TrlPreferenceLine = z.strictObject({
  prompt: z.array(Message).min(1),
  chosen: z.array(Assistant).min(1),
  rejected: z.array(Assistant).min(1),
});

/** LLaMA-Factory alpaca ranking (dataset_info.json: ranking: true). */
export const LlamaFactoryRankingLine = z.strictObject({
  instruction: z.string().min(1),
  input: z.string(),
  chosen: z.string().min(1),
  rejected: z.string().min(1),
  system: z.string(),
});

export const PREFERENCE_LINE_SCHEMAS = {
  openai: OpenAiDpoLine,
  trl: TrlPreferenceLine,
  llamafactory: LlamaFactoryRankingLine,
} as const satisfies Record<PreferenceFormat, z.ZodType>;

/** The chosen and rejected texts of a line of any of the formats. */
export function chosenRejected(format: PreferenceFormat, raw: unknown): { chosen: string; rejected: string } {
  switch (format) {
    case 'openai': {
      const l = OpenAiDpoLine.parse(raw);
      return { chosen: l.preferred_output[0]!.content, rejected: l.non_preferred_output[0]!.content };
    }
    case 'trl': {
      const l = TrlPreferenceLine.parse(raw);
      return { chosen: l.chosen[0]!.content, rejected: l.rejected[0]!.content };
    }
    case 'llamafactory': {
      const l = LlamaFactoryRankingLine.parse(raw);
      return { chosen: l.chosen, rejected: l.rejected };
    }
  }
}
