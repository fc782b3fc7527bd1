/**
 * Every activity the worker registers, built from explicit dependencies. Workflows import only
 * the type (`Activities`) to make typed proxies.
 */
import { campaignActivities } from './campaign';
import type { ActivityDeps } from './context';
import { datasetActivities } from './datasets';
import { fineTuneActivities } from './finetune';
import { lineActivities } from './lines';
import { modelActivities } from './models';
import { outageActivities } from './outage';
import { providerBatchActivities } from './provider-batches';
import { stageRunActivities } from './stage-runs';
import { stageActivities } from '../stages/registry';

export function createActivities(deps: ActivityDeps) {
  return {
    ...campaignActivities(deps),
    ...stageRunActivities(deps),
    ...stageActivities(deps),
    ...datasetActivities(deps),
    ...fineTuneActivities(deps),
    ...modelActivities(deps),
    ...outageActivities(deps),
    ...providerBatchActivities(deps),
    ...lineActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps } from './context';
