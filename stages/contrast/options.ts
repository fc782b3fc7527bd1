/** `stages.contrast` in the campaign spec. */
import { z } from 'zod';
import { batching, positiveInt } from '../options';

export const PREFERENCE_LOSSES = ['dpo', 'simpo', 'orpo', 'kto', 'margin-ranking'] as const;

export const ContrastStageSchema = z
  .strictObject({
    ...batching,
    batchSize: positiveInt.max(500).default(10).describe('Questions per batch activity'),
    iterations: positiveInt.max(20).default(1).describe('Contrast → fine-tune rounds'),
    method: z
      .enum(['beam', 'best-of-n'])
      .default('beam')
      .describe(
        "High-compute decode: vLLM beam search, or best-of-N sampling ranked by the model's own critique",
      ),
    beamWidth: positiveInt.max(64).default(10),
    lengthPenalty: z.number().default(1),
    samples: positiveInt.max(64).default(8).describe('N of best-of-N'),
    sampleTemperature: z.number().min(0).max(2).default(0.8),
    maxSimilarity: z
      .number()
      .min(0)
      .max(1)
      .default(0.9)
      .describe(
        'Pairs whose chosen and rejected outputs are at least this similar (token Jaccard) are dropped',
      ),
    requireSelfCritique: z
      .boolean()
      .default(false)
      .describe("Keep only pairs the model's own critique agrees with (chosen better than rejected)"),
    loss: z
      .enum(PREFERENCE_LOSSES)
      .default('dpo')
      .describe(
        "Preference loss for the trainer: DPO, SimPO, ORPO, KTO, or the official code's margin ranking",
      ),
  })
  .default({
    enabled: true,
    batchSize: 10,
    iterations: 1,
    method: 'beam',
    beamWidth: 10,
    lengthPenalty: 1,
    samples: 8,
    sampleTemperature: 0.8,
    maxSimilarity: 0.9,
    requireSelfCritique: false,
    loss: 'dpo',
  })
  .describe('Stage 3: self-improvement by contrasting high-compute and greedy decodes');
export type ContrastStageSpec = z.infer<typeof ContrastStageSchema>;
