/**
 * `stages.mcts` in the campaign spec: SRA-MCTS (REFERENCE §7) as a stage. Off by default — it costs
 * tens of calls per question (24 at these defaults on the simulator), worth it in reasoning-heavy
 * domains. The search's defaults are the paper's code's (core/search/sra-mcts.ts SRA_MCTS_DEFAULTS).
 */
import { z } from 'zod';
import { SRA_MCTS_DEFAULTS as D } from '../../core/search/sra-mcts';
import { batching, positiveInt, training } from '../options';

/** The paper's code samples proposals at 0.7; reflections and scores stay greedy. */
const PROPOSAL_TEMPERATURE = 0.7;
const STRUCTURED_ATTEMPTS = 3;

export const MctsStageSchema = z
  .strictObject({
    ...batching,
    ...training,
    enabled: z
      .boolean()
      .default(false)
      .describe('Run SRA-MCTS (off by default: tens of calls per question, for reasoning-heavy domains)'),
    // Small: one question is a whole search (tens of sequential calls), so a batch of 4 already
    // keeps an activity busy for a while and a retried batch redoes little.
    batchSize: positiveInt.max(500).default(4).describe('Questions per batch activity'),
    iterations: positiveInt
      .max(20)
      .default(1)
      .describe('Search → fine-tune rounds; each searches with the model the last one made'),
    branch: positiveInt.max(10).default(D.branch).describe('Next steps proposed per expansion (paper: 3)'),
    rollBranch: positiveInt
      .max(10)
      .default(D.rollBranch)
      .describe('Steps proposed per roll-out step, the best-scored kept (paper: 2)'),
    rollForwardSteps: positiveInt
      .max(10)
      .default(D.rollForwardSteps)
      .describe('Steps of a greedy roll-out (paper: 1)'),
    iterationLimit: positiveInt
      .max(50)
      .default(D.iterationLimit)
      .describe(
        'Search rounds (selection, expansion, roll-out, back-propagation) per question at most (paper: 2)',
      ),
    endGate: z
      .number()
      .min(0)
      .max(10)
      .default(D.endGate)
      .describe(
        'A selected node whose self-evaluated value (0–10) reaches this ends the search (paper: 8.8)',
      ),
    explorationConstant: z
      .number()
      .min(0)
      .default(D.explorationConstant)
      .describe('c of UCB, V + c·sqrt(2 ln N_parent / n) (paper: 0.5)'),
    alpha: z
      .number()
      .min(0)
      .max(1)
      .default(D.alpha)
      .describe("Weight of the roll-out's best value in the rolled node's value (paper: 0.5)"),
    seed: z
      .number()
      .int()
      .min(0)
      .default(D.seed)
      .describe("Seeds UCB's tie-breaking draws, so a search resumed after a crash draws the same"),
    proposalTemperature: z
      .number()
      .min(0)
      .max(2)
      .default(PROPOSAL_TEMPERATURE)
      .describe('Sampling temperature of step proposals (paper: 0.7); reflections and scores are greedy'),
    structuredAttempts: positiveInt
      .max(5)
      .default(STRUCTURED_ATTEMPTS)
      .describe('Asks of a reflection or score before it counts as unparseable (no guidance, score 0)'),
  })
  .default({
    enabled: false,
    batchSize: 4,
    iterations: 1,
    branch: D.branch,
    rollBranch: D.rollBranch,
    rollForwardSteps: D.rollForwardSteps,
    iterationLimit: D.iterationLimit,
    endGate: D.endGate,
    explorationConstant: D.explorationConstant,
    alpha: D.alpha,
    seed: D.seed,
    proposalTemperature: PROPOSAL_TEMPERATURE,
    structuredAttempts: STRUCTURED_ATTEMPTS,
  })
  .describe(
    'SRA-MCTS: tree search over reasoning steps, the model its own policy and critic → reasoning SFT',
  );
export type MctsStageSpec = z.infer<typeof MctsStageSchema>;
