/**
 * The transform library of mapping files. Each transform is compiled once from its YAML spec
 * into a plain function; a value that cannot be transformed throws `MappingValueError`, which the
 * engine reports with the rule's file, line and target path. Missing values (undefined, null,
 * '') pass through untouched so that `default` and `required` can deal with them.
 */

import type { CodeList } from './codelists.js';
import { nameBasedUuid } from './uuid.js';

export type Transform = (value: unknown) => unknown;

/** A value a rule cannot map (bad date, unknown lookup key …) — a permanent mapping failure. */
export class MappingValueError extends Error {
  override readonly name = 'MappingValueError';
}

/** Raised at compile time with a message naming the problem; the compiler adds file:line. */
export class TransformSpecError extends Error {
  override readonly name = 'TransformSpecError';
}

export interface TransformEnvironment {
  readonly lookups: ReadonlyMap<string, ReadonlyMap<string, string>>;
  readonly codelists: ReadonlyMap<string, CodeList>;
}

export function isMissing(value: unknown): boolean {
  return (
    value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)
  );
}

const GERMAN_DATE = /^(\d{1,2})\.(\d{1,2})\.(\d{4})$/;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_DATE_PREFIX = /^(\d{4})-(\d{2})-(\d{2})T/;
const BERLIN_DATE = new Intl.DateTimeFormat('en-CA', {
  timeZone: 'Europe/Berlin',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

function text(value: unknown, name: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  throw new MappingValueError(`${name} needs a text value, got ${describe(value)}`);
}

export function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return JSON.stringify(value) ?? String(value);
}

function isRealDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return day <= days;
}

/** `TT.MM.JJJJ` → `JJJJ-MM-TT`; an ISO date passes unchanged. Rejects 31.02.2024. */
export function germanDateToIso(value: unknown): unknown {
  if (isMissing(value)) return value;
  const input = text(value, 'dateDeToIso').trim();
  const iso = ISO_DATE.exec(input);
  if (iso !== null && isRealDate(Number(iso[1]), Number(iso[2]), Number(iso[3]))) return input;
  const match = GERMAN_DATE.exec(input);
  if (match === null) throw new MappingValueError(`expected a date TT.MM.JJJJ, got ${JSON.stringify(input)}`);
  const [day, month, year] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (!isRealDate(year, month, day))
    throw new MappingValueError(`${JSON.stringify(input)} is not a calendar date`);
  return `${match[3]}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** `JJJJ-MM-TT` (or an ISO timestamp, taken as its date in Berlin) → `TT.MM.JJJJ`. */
export function isoDateToGerman(value: unknown): unknown {
  if (isMissing(value)) return value;
  const input = text(value, 'dateIsoToDe').trim();
  let iso = ISO_DATE.exec(input);
  if (iso === null && ISO_DATE_PREFIX.test(input)) {
    const parsed = Date.parse(input);
    if (!Number.isNaN(parsed)) iso = ISO_DATE.exec(berlinDay(parsed));
  }
  if (iso === null || !isRealDate(Number(iso[1]), Number(iso[2]), Number(iso[3]))) {
    throw new MappingValueError(`expected an ISO date JJJJ-MM-TT, got ${JSON.stringify(input)}`);
  }
  return `${iso[3]}.${iso[2]}.${iso[1]}`;
}

function instant(value: unknown, name: string): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (value instanceof Date) return value.getTime();
  const input = text(value, name).trim();
  if (/^\d+$/.test(input)) return Number(input);
  const parsed = Date.parse(input);
  if (Number.isNaN(parsed))
    throw new MappingValueError(`expected a point in time, got ${JSON.stringify(input)}`);
  return parsed;
}

/** Epoch milliseconds or an ISO timestamp → `xs:dateTime` in UTC without fractions. */
export function toXsDateTime(value: unknown): unknown {
  if (isMissing(value)) return value;
  return new Date(instant(value, 'dateTime')).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Epoch milliseconds or an ISO timestamp → the calendar date in Berlin, `JJJJ-MM-TT`. */
export function toBerlinDate(value: unknown): unknown {
  if (isMissing(value)) return value;
  return berlinDay(instant(value, 'date'));
}

// Berlin's offset is whole hours, so the day can only change on an hour: remember the last hour.
let lastHour = NaN;
let lastDay = '';

function berlinDay(ms: number): string {
  const hour = Math.floor(ms / 3_600_000);
  if (hour !== lastHour) {
    lastDay = BERLIN_DATE.format(ms);
    lastHour = hour;
  }
  return lastDay;
}

type SplitPart = 'first' | 'last' | 'rest' | 'allButLast' | number;

function splitter(separator: string, part: SplitPart): Transform {
  return (value) => {
    if (isMissing(value)) return value;
    const parts = text(value, 'split')
      .split(separator)
      .map((p) => p.trim())
      .filter((p) => p !== '');
    if (parts.length === 0) return undefined;
    switch (part) {
      case 'first':
        return parts[0];
      case 'last':
        return parts[parts.length - 1];
      case 'rest':
        return parts.length > 1 ? parts.slice(1).join(separator) : undefined;
      case 'allButLast':
        return parts.length > 1 ? parts.slice(0, -1).join(separator) : undefined;
      default:
        return parts[part < 0 ? parts.length + part : part];
    }
  };
}

function toBoolean(value: unknown): unknown {
  if (isMissing(value) || typeof value === 'boolean') return value;
  const input = text(value, 'boolean').trim().toLowerCase();
  if (['true', '1', 'ja', 'yes', 'j'].includes(input)) return true;
  if (['false', '0', 'nein', 'no', 'n'].includes(input)) return false;
  throw new MappingValueError(`expected a yes/no value, got ${JSON.stringify(input)}`);
}

function toNumber(value: unknown): unknown {
  if (isMissing(value) || typeof value === 'number') return value;
  const input = text(value, 'number').trim().replace(',', '.');
  const parsed = Number(input);
  if (input === '' || !Number.isFinite(parsed))
    throw new MappingValueError(`expected a number, got ${JSON.stringify(input)}`);
  return parsed;
}

const simple: Readonly<Record<string, Transform>> = {
  trim: (v) => (typeof v === 'string' ? v.trim() : v),
  upper: (v) => (typeof v === 'string' ? v.toLocaleUpperCase('de-DE') : v),
  lower: (v) => (typeof v === 'string' ? v.toLocaleLowerCase('de-DE') : v),
  collapseSpaces: (v) => (typeof v === 'string' ? v.replace(/\s+/g, ' ').trim() : v),
  dateDeToIso: germanDateToIso,
  dateIsoToDe: isoDateToGerman,
  dateTime: toXsDateTime,
  date: toBerlinDate,
  string: (v) => (isMissing(v) ? v : text(v, 'string')),
  number: toNumber,
  boolean: toBoolean,
  join: join(' '),
  uuid: uuidOf(''),
  // `from: [a, b]` + `first`: the first of several sources that has a value
  first: (v) => (Array.isArray(v) ? v.find((item) => !isMissing(item)) : v),
};

/** A name-based UUID of the value (the same value always gives the same UUID). */
function uuidOf(name: string): Transform {
  return (value) => {
    if (isMissing(value)) return value;
    const base = Array.isArray(value) ? value.map((v) => text(v, 'uuid')).join(':') : text(value, 'uuid');
    return nameBasedUuid(name === '' ? base : `${name}:${base}`);
  };
}

function join(separator: string): Transform {
  return (value) => {
    if (!Array.isArray(value)) return value;
    const parts = value.filter((v) => !isMissing(v)).map((v) => text(v, 'join'));
    return parts.length === 0 ? undefined : parts.join(separator);
  };
}

/** The names a mapping file may use, for "did you mean" messages. */
export const TRANSFORM_NAMES: readonly string[] = [
  ...Object.keys(simple),
  'split',
  'lookup',
  'replace',
  'truncate',
  'prefix',
  'suffix',
  'codeName',
];

/**
 * Compiles one transform spec: a name (`trim`) or a one-key map (`{ lookup: kfz }`,
 * `{ split: { separator: ' ', part: last } }`, `{ join: ', ' }`, `{ replace: { pattern, with } }`,
 * `{ truncate: 60 }`, `{ prefix: 'DE-' }`).
 */
export function compileTransform(spec: unknown, env: TransformEnvironment): Transform {
  if (typeof spec === 'string') {
    const found = simple[spec];
    if (found !== undefined) return found;
    throw new TransformSpecError(`unknown transform "${spec}"${suggest(spec)}`);
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec) || Object.keys(spec).length !== 1) {
    throw new TransformSpecError('a transform is a name or a map with exactly one key');
  }
  const [name, arg] = Object.entries(spec)[0]!;
  switch (name) {
    case 'join':
      return join(typeof arg === 'string' ? arg : ' ');
    case 'split': {
      const options = typeof arg === 'object' && arg !== null ? (arg as Record<string, unknown>) : {};
      const separator = typeof options['separator'] === 'string' ? options['separator'] : ' ';
      return splitter(separator, splitPart(options['part']));
    }
    case 'lookup':
      return lookup(arg, env);
    case 'codeName':
      return codeName(arg, env);
    case 'uuid':
      return uuidOf(typeof arg === 'string' ? arg : '');
    case 'replace': {
      const options = typeof arg === 'object' && arg !== null ? (arg as Record<string, unknown>) : {};
      if (typeof options['pattern'] !== 'string') throw new TransformSpecError('replace needs a pattern');
      let re: RegExp;
      try {
        re = new RegExp(options['pattern'], 'gu');
      } catch (err) {
        throw new TransformSpecError(`replace: invalid pattern: ${(err as Error).message}`);
      }
      const replacement = typeof options['with'] === 'string' ? options['with'] : '';
      return (v) => (isMissing(v) ? v : text(v, 'replace').replace(re, replacement));
    }
    case 'truncate': {
      const max = Number(arg);
      if (!Number.isInteger(max) || max < 1) throw new TransformSpecError('truncate needs a positive length');
      return (v) => (isMissing(v) ? v : [...text(v, 'truncate')].slice(0, max).join(''));
    }
    case 'prefix':
    case 'suffix': {
      if (typeof arg !== 'string') throw new TransformSpecError(`${name} needs a text`);
      return name === 'prefix'
        ? (v) => (isMissing(v) ? v : arg + text(v, name))
        : (v) => (isMissing(v) ? v : text(v, name) + arg);
    }
    default: {
      if (simple[name] !== undefined) throw new TransformSpecError(`transform "${name}" takes no argument`);
      throw new TransformSpecError(`unknown transform "${name}"${suggest(name)}`);
    }
  }
}

function splitPart(part: unknown): SplitPart {
  if (part === undefined) return 'first';
  if (part === 'first' || part === 'last' || part === 'rest' || part === 'allButLast') return part;
  const index = Number(part);
  if (Number.isInteger(index)) return index;
  throw new TransformSpecError(
    `split: part must be first, last, rest, allButLast or an index, not ${String(part)}`,
  );
}

function lookup(arg: unknown, env: TransformEnvironment): Transform {
  const options: Record<string, unknown> =
    typeof arg === 'string'
      ? { table: arg }
      : typeof arg === 'object' && arg !== null
        ? (arg as Record<string, unknown>)
        : {};
  const tableName = options['table'];
  if (typeof tableName !== 'string') throw new TransformSpecError('lookup needs a table name');
  const table = env.lookups.get(tableName);
  if (table === undefined) {
    const known = [...env.lookups.keys()].join(', ') || 'none';
    throw new TransformSpecError(`lookup table "${tableName}" is not defined (lookups: ${known})`);
  }
  const hasOtherwise = Object.hasOwn(options, 'otherwise');
  const otherwise = options['otherwise'];
  return (value) => {
    if (isMissing(value)) return value;
    const key = text(value, 'lookup');
    const found = table.get(key);
    if (found !== undefined) return found;
    if (!hasOtherwise)
      throw new MappingValueError(`${JSON.stringify(key)} is not in lookup table "${tableName}"`);
    return otherwise === 'keep' ? value : otherwise;
  };
}

/** A code → its name in a declared code list (for readable JSON from code-typed XML). */
function codeName(arg: unknown, env: TransformEnvironment): Transform {
  const list = typeof arg === 'string' ? env.codelists.get(arg) : undefined;
  if (list === undefined)
    throw new TransformSpecError(`codeName needs a declared code list, not ${String(arg)}`);
  const codes = list.codes;
  if (codes === undefined) throw new TransformSpecError(`code list ${list.name} has no codes to name`);
  return (value) => {
    if (isMissing(value)) return value;
    const name = codes.get(text(value, 'codeName').trim());
    if (name === undefined)
      throw new MappingValueError(`code ${JSON.stringify(value)} is not in code list ${list.name}`);
    return name;
  };
}

function suggest(name: string): string {
  const close = TRANSFORM_NAMES.filter((known) => editDistance(known.toLowerCase(), name.toLowerCase()) <= 2);
  return close.length > 0
    ? ` (did you mean ${close.join(' or ')}?)`
    : ` (known: ${TRANSFORM_NAMES.join(', ')})`;
}

export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
