/**
 * Every activity the worker registers, built from explicit dependencies. Workflows import only
 * the type (`Activities`) to make typed proxies.
 */
import { campaignActivities } from './campaign';
import type { ActivityDeps } from './context';
import { datasetActivities } from './datasets';
import { distillActivities } from './distill';
import { fineTuneActivities } from './finetune';
import { modelActivities } from './models';

export function createActivities(deps: ActivityDeps) {
  return {
    ...campaignActivities(deps),
    ...distillActivities(deps),
    ...datasetActivities(deps),
    ...fineTuneActivities(deps),
    ...modelActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps } from './context';
