/**
 * The stages a campaign can run, in the order it runs them — METEOR's (DESIGN §1). This list is
 * the one place a stage is registered: the spec's `stages`, the worker's batch activities, the
 * campaign's plan, the audit, the dataset export and the CLI's `--stage` choices are all read from
 * it. README "Adding a stage" says how to add one.
 *
 * Workflows import only types from here: the campaign plan (activities/campaign.ts) carries what
 * they need of each stage, so no worker-side code enters the workflow bundle.
 */
import { z } from 'zod';
import type { ActivityDeps } from '../activities/context';
import { withRowFilter } from '../activities/row-filter';
import { assessStage } from './assess';
import { contrastStage } from './contrast';
import { distillStage } from './distill';
import { evaluateStage } from './evaluate';
import { evolveStage } from './evolve';
import { mctsStage } from './mcts';
import type { BatchActivity, StageDefinition } from './stage';

/**
 * The registered stages, in the order a campaign runs them. A function, not a constant: stage
 * code imports modules that import this one, and a constant would read the definitions before
 * they exist (each definition reads only hoisted function declarations and its options at load).
 */
export function registeredStages() {
  return [evolveStage, distillStage, assessStage, contrastStage, mctsStage, evaluateStage] as const;
}

type RegisteredStage = ReturnType<typeof registeredStages>[number];
export type StageName = RegisteredStage['name'];
/** Stages that end in a fine-tune and a new model version. */
export type TrainingStage = Extract<RegisteredStage, { dataset: { kind: string } }>['name'];

export function stageNames(): StageName[] {
  return registeredStages().map((s) => s.name);
}

export function trainingStageNames(): TrainingStage[] {
  return registeredStages().flatMap((s) => (s.dataset ? [s.name] : []));
}

export function isStageName(name: string): name is StageName {
  return (stageNames() as string[]).includes(name);
}

/** A registered stage's definition, its options typed loosely (what generic code needs). */
export function stageDefinition<N extends StageName>(name: N): StageDefinition<N> {
  const found = registeredStages().find((s) => s.name === name);
  if (!found) throw new Error(`no stage named "${name}" is registered (stages/registry.ts)`);
  return found as unknown as StageDefinition<N>;
}

/** `stages` of a parsed spec: each registered stage's options, defaults applied. */
export type StagesOptions = { [S in RegisteredStage as S['name']]: z.output<S['options']> };
/** `stages` as a user writes it. */
export type StagesOptionsInput = { [S in RegisteredStage as S['name']]?: z.input<S['options']> };

/** The spec's `stages` object: one key per registered stage, each with its defaults. */
export function stagesOptionsSchema(): z.ZodType<StagesOptions, StagesOptionsInput | undefined> {
  const shape = Object.fromEntries(registeredStages().map((s) => [s.name, s.options]));
  const defaults = Object.fromEntries(registeredStages().map((s) => [s.name, s.options.parse(undefined)]));
  return z.strictObject(shape).default(defaults) as unknown as z.ZodType<
    StagesOptions,
    StagesOptionsInput | undefined
  >;
}

/** Each registered stage's batch activity, `<name>Batch`. */
export type StageActivities = { [S in RegisteredStage as `${S['name']}Batch`]: BatchActivity };

export function stageActivities(deps: ActivityDeps): StageActivities {
  const out: Record<string, BatchActivity> = {};
  for (const s of registeredStages()) {
    const definition = stageDefinition(s.name);
    // A training stage's batch scores its rows afterwards when the spec asks for a row filter.
    for (const [name, batch] of Object.entries<BatchActivity>(definition.activities(deps)))
      out[name] = withRowFilter(deps, definition, batch);
  }
  return out as StageActivities;
}
