/** Every workflow the worker registers. Deterministic code only (see DESIGN §2). */
export { campaignWorkflow } from './campaign';
export { stageWorkflow } from './stage';
export { fineTuneWorkflow } from './finetune';
export { lineIterationWorkflow } from './line';
