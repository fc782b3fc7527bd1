/**
 * The worker's defaults, in a module of their own: clients (meteorctl, the demo) need the task
 * queue's name without loading the worker, its activities and the SDK's native bridge.
 */
export const DEFAULT_TASK_QUEUE = 'meteor';
/** The spec's default `fineTune.queue`. */
export const DEFAULT_FINETUNE_QUEUE = 'meteor-gpu';
/**
 * PostgreSQL connections one worker process opens at most (`--db-pool-max`, METEOR_DB_POOL_MAX).
 * A deployment needs workers × this (+ 4 per meteorctl client) below the server's max_connections.
 */
export const DEFAULT_DB_POOL_MAX = 20;
