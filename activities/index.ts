/**
 * Every activity the worker registers, built from explicit dependencies. Workflows import only
 * the type (`Activities`) to make typed proxies.
 */
import { assessActivities } from './assess';
import { campaignActivities } from './campaign';
import { contrastActivities } from './contrast';
import type { ActivityDeps } from './context';
import { datasetActivities } from './datasets';
import { distillActivities } from './distill';
import { evaluateActivities } from './evaluate';
import { fineTuneActivities } from './finetune';
import { lineActivities } from './lines';
import { modelActivities } from './models';
import { outageActivities } from './outage';
import { stageRunActivities } from './stage-runs';

export function createActivities(deps: ActivityDeps) {
  return {
    ...campaignActivities(deps),
    ...stageRunActivities(deps),
    ...distillActivities(deps),
    ...assessActivities(deps),
    ...contrastActivities(deps),
    ...evaluateActivities(deps),
    ...datasetActivities(deps),
    ...fineTuneActivities(deps),
    ...modelActivities(deps),
    ...outageActivities(deps),
    ...lineActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps } from './context';
