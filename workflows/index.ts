/** Every workflow the worker registers. Deterministic code only (see DESIGN §2). */
import { setWorkflowOptions } from '@temporalio/workflow';
import { campaignWorkflow } from './campaign';
import { fineTuneWorkflow } from './finetune';
import { lineIterationWorkflow } from './line';
import { stageWorkflow } from './stage';

// PINNED under Worker Versioning (core/worker-deployment.ts): a run finishes on the build it
// started on, its stage and fine-tune children with it, unless an operator moves it. A change to a
// workflow therefore reaches only runs started after the upgrade; a change that running (or
// unversioned) runs must take still needs a patched() marker.
setWorkflowOptions({ versioningBehavior: 'PINNED' }, campaignWorkflow);
setWorkflowOptions({ versioningBehavior: 'PINNED' }, stageWorkflow);
setWorkflowOptions({ versioningBehavior: 'PINNED' }, fineTuneWorkflow);
setWorkflowOptions({ versioningBehavior: 'PINNED' }, lineIterationWorkflow);

export { campaignWorkflow, stageWorkflow, fineTuneWorkflow, lineIterationWorkflow };
