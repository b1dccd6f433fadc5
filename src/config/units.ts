const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** `30s` → 30000; a number is taken as milliseconds. The schema has checked the shape. */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value);
  if (!match) throw new Error(`not a duration: ${value}`);
  return Number(match[1]) * DURATION_UNITS[match[2]!]!;
}

/** The longest a Node timer waits: 2^31 − 1 ms, about 24.8 days. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * A duration something waits or times out after (a timeout, a poll interval). Node's timers and
 * `AbortSignal.timeout` take a longer one as 1 ms — a `deliveryTimeout: 30d` would end every
 * delivery at once — so a longer duration counts as the longest a timer waits.
 */
export function parseTimerDuration(value: number | string): number {
  return Math.min(parseDuration(value), MAX_TIMER_MS);
}

/** `10mb` → 10485760; a number is taken as bytes. */
export function parseByteSize(value: number | string): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+)(b|kb|mb|gb)$/.exec(value);
  if (!match) throw new Error(`not a size: ${value}`);
  return Number(match[1]) * SIZE_UNITS[match[2]!]!;
}
