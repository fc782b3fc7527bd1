/** `stages.contrast` in the campaign spec. */
import { z } from 'zod';
import { RSTAR_DEFAULTS } from '../../core/search/rstar';
import { RSTAR_POLICY_DEFAULTS } from '../../core/search/rstar-policy';
import { batching, positiveInt, training } from '../options';

export const PREFERENCE_LOSSES = ['dpo', 'simpo', 'orpo', 'kto', 'margin-ranking'] as const;

/** `stages.contrast.rstar` when left out: rStar's own settings (REFERENCE §7, core/search/rstar.ts). */
export const RSTAR_CONTRAST_DEFAULTS = {
  rollouts: RSTAR_DEFAULTS.rollouts,
  samples: RSTAR_POLICY_DEFAULTS.samples,
  temperature: RSTAR_POLICY_DEFAULTS.temperature,
  explorationConstant: RSTAR_DEFAULTS.explorationConstant,
  maxDepth: RSTAR_DEFAULTS.maxDepth,
  cutFrom: RSTAR_DEFAULTS.cutFrom,
  cutTo: RSTAR_DEFAULTS.cutTo,
  seed: RSTAR_DEFAULTS.seed,
};

const share = z.number().min(0).max(1);

/** rStar's generator search and discriminator (method rstar). */
export const RStarContrastSchema = z
  .strictObject({
    rollouts: positiveInt
      .max(256)
      .default(RSTAR_CONTRAST_DEFAULTS.rollouts)
      .describe('MCTS rollouts of the generator per question (rStar: 16)'),
    samples: positiveInt
      .max(64)
      .default(RSTAR_CONTRAST_DEFAULTS.samples)
      .describe(
        "Completions per generator action (one request's n): a terminal node's confidence is the share of " +
          'them that agree with its answer (the majority vote)',
      ),
    temperature: z
      .number()
      .min(0)
      .max(2)
      .default(RSTAR_CONTRAST_DEFAULTS.temperature)
      .describe('Sampling temperature of the generator actions (the rephrasing, A5, is greedy)'),
    explorationConstant: z
      .number()
      .positive()
      .default(RSTAR_CONTRAST_DEFAULTS.explorationConstant)
      .describe('c of UCT = Q/N + c·sqrt(ln N_parent / N) (rStar: 2)'),
    maxDepth: positiveInt
      .max(16)
      .default(RSTAR_CONTRAST_DEFAULTS.maxDepth)
      .describe('Depth from which a node is terminal (rStar: 5)'),
    cutFrom: share
      .default(RSTAR_CONTRAST_DEFAULTS.cutFrom)
      .describe("Least share of a candidate's steps the discriminator is given (rStar: 0.2)"),
    cutTo: share
      .default(RSTAR_CONTRAST_DEFAULTS.cutTo)
      .describe("Largest share of a candidate's steps the discriminator is given (rStar: 0.5)"),
    seed: z
      .number()
      .int()
      .nonnegative()
      .default(RSTAR_CONTRAST_DEFAULTS.seed)
      .describe('Seed of the random draws (exploration, simulation, cuts): a rerun draws the same'),
  })
  .refine((o) => o.cutFrom <= o.cutTo, { path: ['cutTo'], message: 'at least cutFrom' })
  .default(RSTAR_CONTRAST_DEFAULTS)
  .describe(
    "rStar (method rstar): the generator's MCTS with five actions, then models.discriminator's mutual consistency",
  );

export const ContrastStageSchema = z
  .strictObject({
    ...batching,
    ...training,
    batchSize: positiveInt.max(500).default(10).describe('Questions per batch activity'),
    iterations: positiveInt.max(20).default(1).describe('Contrast → fine-tune rounds'),
    method: z
      .enum(['beam', 'best-of-n', 'rstar'])
      .default('beam')
      .describe(
        "High-compute decode: vLLM beam search, best-of-N sampling ranked by the model's own critique, or " +
          "rStar's search with a discriminator (models.discriminator); the last two need no beam search",
      ),
    beamWidth: positiveInt.max(64).default(10),
    lengthPenalty: z.number().default(1),
    samples: positiveInt.max(64).default(8).describe('N of best-of-N'),
    sampleTemperature: z.number().min(0).max(2).default(0.8),
    rstar: RStarContrastSchema,
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
    rstar: RSTAR_CONTRAST_DEFAULTS,
    maxSimilarity: 0.9,
    requireSelfCritique: false,
    loss: 'dpo',
  })
  .describe('Stage 3: self-improvement by contrasting high-compute and greedy decodes');
export type ContrastStageSpec = z.infer<typeof ContrastStageSchema>;
