import type { RetryPolicy } from '../config/types.js';

/** A peer's Retry-After is honoured even above the policy's cap, but never beyond this. */
const RETRY_AFTER_CEILING_MS = 24 * 3_600_000;

/**
 * Delay before attempt `attempt + 1`: exponential from `initialDelayMs`, capped at `maxDelayMs`,
 * shortened by up to `jitter` (a fraction) so retries of many messages spread out; a peer's
 * `Retry-After` wins when it asks for longer.
 */
export function backoffDelay(
  policy: RetryPolicy,
  attempt: number,
  retryAfterSeconds: number | undefined,
  random: () => number = Math.random,
): number {
  const exponential = policy.initialDelayMs * policy.multiplier ** Math.max(0, attempt - 1);
  const capped = Math.min(policy.maxDelayMs, exponential);
  const jittered = Math.round(capped * (1 - policy.jitter * random()));
  if (retryAfterSeconds === undefined) return jittered;
  return Math.max(jittered, Math.min(retryAfterSeconds * 1000, RETRY_AFTER_CEILING_MS));
}
