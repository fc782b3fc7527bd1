/**
 * Every prompt the platform sends, one file per stage, each versioned. A prompt change bumps its
 * version, which changes the request hash, so logged LLM calls are never reused across versions.
 */
export * from './common';
export * from './row-score';
export * from '../../stages/distill/prompts';
export * from '../../stages/assess/prompts';
export * from '../../stages/contrast/prompts';
export * from '../../stages/evaluate/prompts';
export * from '../../stages/mcts/prompts';
export * from './rstar';
export * from '../../stages/evolve/prompts';
