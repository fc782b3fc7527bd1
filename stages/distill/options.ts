/** `stages.distill` in the campaign spec. */
import { z } from 'zod';
import { batching, training } from '../options';

export const DistillStageSchema = z
  .strictObject({
    ...batching,
    ...training,
    includeGuidelineInSft: z
      .boolean()
      .default(false)
      .describe("Put the guideline in the SFT prompt (default: question → answer, as the paper's code)"),
  })
  .default({ enabled: true, batchSize: 100, includeGuidelineInSft: false })
  .describe('Stage 1: weak-to-strong guideline distillation');
export type DistillStageSpec = z.infer<typeof DistillStageSchema>;
