const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** `30s` → 30000; a number is taken as milliseconds. The schema has checked the shape. */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value);
  if (!match) throw new Error(`not a duration: ${value}`);
  return Number(match[1]) * DURATION_UNITS[match[2]!]!;
}

/** `10mb` → 10485760; a number is taken as bytes. */
export function parseByteSize(value: number | string): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+)(b|kb|mb|gb)$/.exec(value);
  if (!match) throw new Error(`not a size: ${value}`);
  return Number(match[1]) * SIZE_UNITS[match[2]!]!;
}
