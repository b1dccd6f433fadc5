/**
 * Occurrences of a cron schedule in a time zone. node-cron 4 owns the grammar (5 or 6 fields,
 * seconds first when there are 6, names, ranges, steps, `L`, `W`, `#`, nicknames): it validates
 * and parses the expression. The instants are computed here, because node-cron answers only
 * "next run after the real current time" (no controllable clock, no "previous occurrence"), and
 * on DST days it skips a daily 02:30 when the clocks jump forward and the first pass of the
 * repeated hour when they fall back.
 *
 * Daylight saving time, as classic cron does it:
 * - A schedule whose hour field is every hour follows real time: local times that do not exist
 *   are skipped, a repeated local time runs at both instants (every 15 minutes stays every 15
 *   minutes of real time).
 * - Any other schedule follows the wall clock: a local time inside the spring-forward gap runs
 *   once, at the instant the gap ends (02:30 → 03:00 CEST); a repeated local time runs once, at
 *   its first instant (02:30 CEST, not again at 02:30 CET).
 * Day-of-month and day-of-week must both match (node-cron's rule, unlike Vixie cron's "either").
 * A zone is assumed to change its offset at most once within about two days.
 */
import { parse, validate, type ParsedFields } from 'node-cron';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** How far `next`/`previous` look: a Feb 29 that must be a Monday recurs within 28 years. */
const SEARCH_DAYS = 366 * 30;
const DAY_CACHE_SIZE = 8;

interface LocalDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

/** Offsets (ms, local minus UTC) around one local day; `transition` is the instant they change. */
interface DayZone {
  readonly before: number;
  readonly after: number;
  readonly transition: number | undefined;
}

/** True when `expression` is a cron expression node-cron accepts. */
export function isValidCronExpression(expression: string): boolean {
  return validate(expression);
}

/** True when `timezone` is an IANA zone this runtime knows. */
export function isValidTimezone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

export class CronSchedule {
  private readonly seconds: readonly number[];
  private readonly minutes: readonly number[];
  private readonly hours: readonly number[];
  private readonly fields: ParsedFields;
  /** Every hour matches: the schedule follows real time across DST changes. */
  private readonly followsRealTime: boolean;
  private readonly zone: ZoneClock;
  private readonly days = new Map<number, readonly number[]>();

  /** Throws when node-cron rejects the expression or the zone is unknown. */
  constructor(
    readonly expression: string,
    readonly timezone: string,
  ) {
    if (!validate(expression)) throw new Error(`not a cron expression: ${expression}`);
    if (!isValidTimezone(timezone)) throw new Error(`unknown time zone: ${timezone}`);
    this.fields = parse(expression);
    const ascending = (values: readonly (number | string)[]): number[] =>
      [...new Set(values.filter((v): v is number => typeof v === 'number'))].sort((a, b) => a - b);
    this.seconds = ascending(this.fields.second);
    this.minutes = ascending(this.fields.minute);
    this.hours = ascending(this.fields.hour);
    this.followsRealTime = this.hours.length === 24;
    this.zone = ZoneClock.of(timezone);
  }

  /** The first occurrence strictly after `after` (epoch ms), or undefined within the search range. */
  next(after: number): number | undefined {
    let date = this.zone.localDate(after);
    for (let day = 0; day < SEARCH_DAYS; day++) {
      const instants = this.instantsOn(date);
      const i = firstAbove(instants, after);
      if (i < instants.length) return instants[i];
      date = addDays(date, 1);
    }
    return undefined;
  }

  /** The last occurrence at or before `atOrBefore` (epoch ms), or undefined within the search range. */
  previous(atOrBefore: number): number | undefined {
    let date = this.zone.localDate(atOrBefore);
    for (let i = 0; i < SEARCH_DAYS; i++) {
      const instants = this.instantsOn(date);
      const j = firstAbove(instants, atOrBefore) - 1;
      if (j >= 0) return instants[j];
      date = addDays(date, -1);
    }
    return undefined;
  }

  /** Every occurrence whose local date is `date`, ascending. */
  private instantsOn(date: LocalDate): readonly number[] {
    const key = date.year * 10_000 + date.month * 100 + date.day;
    const cached = this.days.get(key);
    if (cached) return cached;
    const instants = this.matchesDay(date) ? this.computeDay(date) : [];
    if (this.days.size >= DAY_CACHE_SIZE) this.days.delete(this.days.keys().next().value!);
    this.days.set(key, instants);
    return instants;
  }

  private computeDay(date: LocalDate): number[] {
    const midnight = Date.UTC(date.year, date.month - 1, date.day);
    const zone = this.zone.around(midnight);
    const found = new Set<number>();
    for (const hour of this.hours) {
      for (const minute of this.minutes) {
        for (const second of this.seconds) {
          const wall = midnight + hour * HOUR + minute * MINUTE + second * SECOND;
          for (const t of this.instantsOf(wall, zone)) found.add(t);
        }
      }
    }
    return [...found].sort((a, b) => a - b);
  }

  /** The instants at which the local time `wall` (as if it were UTC) occurs, by the DST rules above. */
  private instantsOf(wall: number, zone: DayZone): number[] {
    if (zone.transition === undefined) return [wall - zone.before];
    const early = wall - zone.before;
    const late = wall - zone.after;
    const valid = [early < zone.transition ? early : undefined, late >= zone.transition ? late : undefined];
    const exists = valid.filter((t): t is number => t !== undefined).sort((a, b) => a - b);
    if (exists.length === 0) return this.followsRealTime ? [] : [zone.transition];
    return this.followsRealTime ? exists : exists.slice(0, 1);
  }

  private matchesDay({ year, month, day }: LocalDate): boolean {
    const f = this.fields;
    return (
      f.month.includes(month) &&
      f.dayOfMonth.some((v) => dayOfMonthMatches(v, year, month, day)) &&
      f.dayOfWeek.some((v) => dayOfWeekMatches(v, year, month, day))
    );
  }
}

/** Offsets of one zone, read through Intl (the runtime's tz database). */
class ZoneClock {
  private static readonly zones = new Map<string, ZoneClock>();
  private readonly format: Intl.DateTimeFormat;

  private constructor(timezone: string) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  static of(timezone: string): ZoneClock {
    let zone = ZoneClock.zones.get(timezone);
    if (!zone) {
      zone = new ZoneClock(timezone);
      ZoneClock.zones.set(timezone, zone);
    }
    return zone;
  }

  /** The local wall time of `instant` as if it were UTC, to the second. */
  private wall(instant: number): number {
    const parts: Record<string, number> = {};
    for (const p of this.format.formatToParts(new Date(instant))) {
      if (p.type !== 'literal') parts[p.type] = Number(p.value);
    }
    return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  }

  offsetAt(instant: number): number {
    return this.wall(instant) - Math.floor(instant / SECOND) * SECOND;
  }

  localDate(instant: number): LocalDate {
    const d = new Date(this.wall(instant));
    return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
  }

  /** Offsets before and after the local day starting at `midnight` (a wall time), and the change between. */
  around(midnight: number): DayZone {
    // Real offsets lie within ±14 h: these two instants bracket the whole local day.
    let lo = midnight - 14 * HOUR;
    let hi = midnight + DAY + 14 * HOUR;
    const before = this.offsetAt(lo);
    const after = this.offsetAt(hi);
    if (before === after) return { before, after, transition: undefined };
    while (hi - lo > SECOND) {
      const mid = lo + Math.floor((hi - lo) / 2 / SECOND) * SECOND;
      if (this.offsetAt(mid) === before) lo = mid;
      else hi = mid;
    }
    return { before, after, transition: hi };
  }
}

/** Index of the first element greater than `value` in an ascending list (its length when none is). */
function firstAbove(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function addDays(date: LocalDate, days: number): LocalDate {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

function lastDayOfMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function weekdayOf(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay();
}

/** The weekday nearest to `target` within the month (cron's `W`). */
function nearestWeekday(year: number, month: number, target: number): number {
  const last = lastDayOfMonth(year, month);
  if (target < 1 || target > last) return -1;
  const weekday = weekdayOf(year, month, target);
  if (weekday === 6) return target === 1 ? target + 2 : target - 1;
  if (weekday === 0) return target === last ? target - 2 : target + 1;
  return target;
}

/** One value of node-cron's parsed day-of-month field: a day, `L`, `15W`, `LW` or `L-3`. */
function dayOfMonthMatches(value: number | string, year: number, month: number, day: number): boolean {
  if (typeof value === 'number') return value === day;
  const last = lastDayOfMonth(year, month);
  if (value === 'L') return day === last;
  const weekday = /^(\d{1,2}|L)W$/.exec(value);
  if (weekday) {
    const target = weekday[1] === 'L' ? last : Number(weekday[1]);
    return nearestWeekday(year, month, target) === day;
  }
  const offset = /^L-(\d{1,2})$/.exec(value);
  if (offset) return last - Number(offset[1]) === day;
  return false;
}

/** One value of node-cron's parsed day-of-week field: 0–6 (Sunday 0), `5L` (last Friday) or `2#3`. */
function dayOfWeekMatches(value: number | string, year: number, month: number, day: number): boolean {
  const weekday = weekdayOf(year, month, day);
  if (typeof value === 'number') return value % 7 === weekday;
  const nth = /^([0-7])#([1-5])$/.exec(value);
  if (nth) return Number(nth[1]) % 7 === weekday && Math.floor((day - 1) / 7) + 1 === Number(nth[2]);
  const last = /^([0-7])L$/i.exec(value);
  if (last) return Number(last[1]) % 7 === weekday && day + 7 > lastDayOfMonth(year, month);
  return false;
}
