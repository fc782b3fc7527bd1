/**
 * Retry policies of activities. Errors a retry cannot fix (bad input, a rejected key, an unknown
 * model) are thrown by activities as these types and fail at once; everything else backs off.
 */
import type { RetryPolicy } from '@temporalio/common';

export const NON_RETRYABLE_ERROR_TYPES = ['UserError', 'LlmFatalError'];

/** Short bookkeeping activities (database reads and writes). */
export const BOOKKEEPING_RETRY: RetryPolicy = {
  initialInterval: '1s',
  maximumInterval: '30s',
  nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
};

/** Activities that wait on outside systems (LLM endpoints, GPU backends). */
export const REMOTE_RETRY: RetryPolicy = {
  initialInterval: '2s',
  backoffCoefficient: 2,
  maximumInterval: '1m',
  nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
};
