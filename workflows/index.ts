/** Every workflow the worker registers. Deterministic code only (see DESIGN §2). */
export { campaignWorkflow } from './campaign';
export { distillWorkflow } from './distill';
export { fineTuneWorkflow } from './finetune';
