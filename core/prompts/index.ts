/**
 * Every prompt the platform sends, one file per stage, each versioned. A prompt change bumps its
 * version, which changes the request hash, so logged LLM calls are never reused across versions.
 */
export * from './common';
export * from './distill';
export * from './assess';
export * from './contrast';
export * from './evaluate';
export * from './mcts';
export * from './rstar';
export * from './evolve';
