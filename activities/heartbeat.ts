/**
 * Long activities heartbeat on a timer (not only when an item finishes), so a dead worker is
 * noticed within the heartbeat timeout even while LLM calls are slow, and so cancellation —
 * which activities learn of only through heartbeats — reaches in-flight requests.
 */
import { setMaxListeners } from 'node:events';
import type { Context } from '@temporalio/activity';

const HEARTBEAT_EVERY_MS = 2_000;

export async function runWithHeartbeat<T>(
  ctx: Context,
  details: () => unknown,
  fn: (controller: AbortController) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  // Every in-flight request of the batch listens on this signal; dozens is expected, not a leak.
  setMaxListeners(0, controller.signal);
  const onCancel = () => controller.abort(ctx.cancellationSignal.reason);
  ctx.cancellationSignal.addEventListener('abort', onCancel, { once: true });
  ctx.heartbeat(details());
  const timer = setInterval(() => ctx.heartbeat(details()), HEARTBEAT_EVERY_MS);
  try {
    return await fn(controller);
  } finally {
    clearInterval(timer);
    ctx.cancellationSignal.removeEventListener('abort', onCancel);
    ctx.heartbeat(details());
  }
}

/**
 * Runs every task at once (the endpoint limiters bound the real concurrency). The first failure
 * aborts the others, and is what this throws once all have settled — so no task is still
 * writing when the activity reports its result.
 */
export async function settleAll(
  tasks: Array<() => Promise<void>>,
  controller: AbortController,
): Promise<void> {
  let first: unknown = null;
  await Promise.all(
    tasks.map((task) =>
      task().catch((err: unknown) => {
        if (first === null) {
          first = err;
          controller.abort(err);
        }
      }),
    ),
  );
  if (first !== null) throw first;
}
