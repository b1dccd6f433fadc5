/**
 * Mapping tests: a `NAME.test.yaml` beside `NAME.mapping.yaml` lists cases (input → expected
 * output and validation result). The same runner serves mocha (`mappings/mappings.test.ts`)
 * and `amtsbote mapping test`.
 *
 *   mapping: NAME.mapping.yaml        # default: the sibling NAME.mapping.yaml
 *   now: '2024-05-02T08:15:03Z'       # the clock of the run (random UUIDs count up from …0001)
 *   input: { message: …, attachments: … }   # defaults, deep-merged into every case's input
 *   cases:
 *     - name: complete application
 *       input: { application: { $file: sample-application.json } }
 *       patch: { application.applicant.title: null }   # set (or, with null, remove) single values
 *       expect:
 *         xml: { $file: expected.xml }  # compared canonically (prefixes, whitespace ignored)
 *         json: { … }                   # for JSON targets
 *         contains: [ '…' ]             # texts that must appear in the canonical output
 *         excludes: [ '…' ]             # texts that must not
 *         valid: true                   # XSD result (default: true when the mapping validates)
 *         error: AMT_MAPPING_FAILED     # the run must fail with this code …
 *         problems: [ 'Familienname' ]  # … and problems mentioning these texts
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { isAmtError } from '../errors.js';
import type { MappingInput } from '../pipeline/mapping-step.js';
import { canonicalForm } from '../xml/canonical.js';
import { readXml } from '../xml/read.js';
import { lineDiff } from './diff.js';
import { loadMapping } from './index.js';
import { parseJsonPath } from './paths.js';
import type { MappingResult } from './run.js';
import { parseYamlSource } from './yaml-source.js';

export interface MappingTestCase {
  readonly name: string;
  readonly line: number;
  readonly input: MappingInput;
  readonly expect: Record<string, unknown>;
}

export interface MappingTestSuite {
  readonly file: string;
  readonly mappingFile: string;
  readonly now: Date;
  readonly cases: readonly MappingTestCase[];
}

export interface MappingTestResult {
  readonly suite: MappingTestSuite;
  readonly testCase: MappingTestCase;
  readonly passed: boolean;
  /** Why it failed: each entry a paragraph (diffs are multi-line). */
  readonly failures: readonly string[];
}

const DEFAULT_NOW = '2024-01-01T00:00:00Z';
const EXPECT_KEYS = ['xml', 'json', 'contains', 'excludes', 'valid', 'validationErrors', 'error', 'problems'];

/** Every `*.test.yaml` below the given files or folders, sorted. */
export function discoverMappingTests(paths: readonly string[]): string[] {
  const found: string[] = [];
  const visit = (entry: string): void => {
    const stat = statSync(entry);
    if (stat.isDirectory()) {
      for (const name of readdirSync(entry)) {
        if (name === 'node_modules' || name.startsWith('.')) continue;
        visit(path.join(entry, name));
      }
    } else if (/\.test\.ya?ml$/.test(entry)) {
      found.push(path.resolve(entry));
    }
  };
  for (const entry of paths) visit(entry);
  return found.sort();
}

export function loadMappingTestSuite(file: string): MappingTestSuite {
  const absolute = path.resolve(file);
  const source = parseYamlSource(readFileSync(absolute, 'utf8'), absolute, 'core');
  const doc = source.value;
  if (!isRecord(doc) || !Array.isArray(doc['cases']))
    throw new Error(`${absolute}: a mapping test file needs cases: [ … ]`);
  const dir = path.dirname(absolute);
  const mappingFile = path.resolve(
    dir,
    typeof doc['mapping'] === 'string'
      ? doc['mapping']
      : path.basename(absolute).replace(/\.test\.ya?ml$/, '.mapping.yaml'),
  );
  const now = new Date(typeof doc['now'] === 'string' ? doc['now'] : DEFAULT_NOW);
  if (Number.isNaN(now.getTime())) throw new Error(`${absolute}: now is not a timestamp`);
  const defaults = resolveFiles(doc['input'] ?? {}, dir);
  const cases = doc['cases'].map((raw, index): MappingTestCase => {
    const line = source.lineOf(raw);
    if (!isRecord(raw) || typeof raw['name'] !== 'string' || !isRecord(raw['expect'])) {
      throw new Error(`${absolute}:${line}: case ${index} needs name and expect`);
    }
    const unknown = Object.keys(raw['expect']).filter((k) => !EXPECT_KEYS.includes(k));
    if (unknown.length > 0)
      throw new Error(`${absolute}:${line}: unknown expect key(s) ${unknown.join(', ')}`);
    let input = deepMerge(defaults, resolveFiles(raw['input'] ?? {}, dir));
    if (isRecord(raw['patch'])) input = applyPatch(input, raw['patch']);
    return {
      name: raw['name'],
      line,
      input: input as unknown as MappingInput,
      expect: raw['expect'],
    };
  });
  return { file: absolute, mappingFile, now, cases };
}

function expectations(
  suite: MappingTestSuite,
  testCase: MappingTestCase,
  failures: string[],
): Record<string, unknown> {
  try {
    return resolveFiles(testCase.expect, path.dirname(suite.file)) as Record<string, unknown>;
  } catch (err) {
    failures.push(`cannot read an expected file: ${(err as Error).message}`);
    return {};
  }
}

export async function runMappingTestCase(
  suite: MappingTestSuite,
  testCase: MappingTestCase,
): Promise<MappingTestResult> {
  const failures: string[] = [];
  const done = (): MappingTestResult => ({ suite, testCase, passed: failures.length === 0, failures });
  const expect = expectations(suite, testCase, failures);
  if (failures.length > 0) return done();
  let counter = 0;
  const options = {
    now: () => new Date(suite.now.getTime()),
    randomUuid: () => `00000000-0000-4000-8000-${String(++counter).padStart(12, '0')}`,
  };

  const mapping = await loadMapping(suite.mappingFile).catch((err: unknown) => err);
  if (mapping instanceof Error) {
    failures.push(`the mapping does not compile: ${describeError(mapping)}`);
    return done();
  }
  const compiled = mapping as Awaited<ReturnType<typeof loadMapping>>;
  let result: MappingResult | undefined;
  let error: unknown;
  try {
    result = await compiled.map(testCase.input, options);
  } catch (err) {
    error = err;
  }

  if (expect['error'] !== undefined) {
    if (error === undefined) failures.push(`expected ${String(expect['error'])}, but the mapping succeeded`);
    else checkError(error, expect, failures);
    return done();
  }
  if (error !== undefined || result === undefined) {
    failures.push(`the mapping failed: ${describeError(error)}`);
    return done();
  }

  const validation = compiled.validate(result);
  const expectedValid = expect['valid'] ?? (validation === undefined ? undefined : true);
  if (expectedValid !== undefined) {
    if (validation === undefined) failures.push('expect.valid is given, but the mapping names no schemaSet');
    else if (validation.valid !== expectedValid) {
      const errors = validation.errors.map(
        (e) => `  line ${e.line}${e.path ? ` ${e.path}` : ''}: ${e.message}`,
      );
      failures.push(
        `expected ${expectedValid ? 'valid' : 'invalid'} XML against ${validation.schemaSet}, got ${validation.valid ? 'valid' : `invalid:\n${errors.join('\n')}`}`,
      );
    }
    for (const text of asStrings(expect['validationErrors'])) {
      if (!validation?.errors.some((e) => e.message.includes(text) || (e.path ?? '').includes(text))) {
        failures.push(`no validation error mentions ${JSON.stringify(text)}`);
      }
    }
  }

  // Names are shown with the mapping's own prefixes; the comparison ignores the document's.
  const prefixes = Object.fromEntries(
    Object.entries(compiled.definition.target.namespaces).map(([p, uri]) => [uri, p]),
  );
  let canonicalActual: string | undefined;
  if (result.xml !== undefined) canonicalActual = canonicalForm(readXml(result.content), prefixes);
  if (expect['xml'] !== undefined) {
    if (canonicalActual === undefined) failures.push('expect.xml is given, but the mapping writes JSON');
    else {
      const expected = canonicalForm(readXml(String(expect['xml'])), prefixes);
      if (expected !== canonicalActual)
        failures.push(`the XML differs (- expected, + actual):\n${lineDiff(expected, canonicalActual)}`);
    }
  }
  if (expect['json'] !== undefined) {
    if (!isDeepStrictEqual(result.json, expect['json'])) {
      const expected = JSON.stringify(expect['json'], null, 2);
      const actual = JSON.stringify(result.json, null, 2);
      failures.push(`the JSON differs (- expected, + actual):\n${lineDiff(expected, actual)}`);
    }
  }
  const text = canonicalActual ?? JSON.stringify(result.json, null, 2);
  for (const wanted of asStrings(expect['contains'])) {
    if (!text.includes(wanted)) failures.push(`the output does not contain ${JSON.stringify(wanted)}`);
  }
  for (const unwanted of asStrings(expect['excludes'])) {
    if (text.includes(unwanted)) failures.push(`the output contains ${JSON.stringify(unwanted)}`);
  }
  return done();
}

/** Runs every case of every suite; for the CLI. */
export async function runMappingTests(files: readonly string[]): Promise<MappingTestResult[]> {
  const results: MappingTestResult[] = [];
  for (const file of files) {
    const suite = loadMappingTestSuite(file);
    for (const testCase of suite.cases) results.push(await runMappingTestCase(suite, testCase));
  }
  return results;
}

function checkError(error: unknown, expect: Record<string, unknown>, failures: string[]): void {
  if (!isAmtError(error)) {
    failures.push(`expected ${String(expect['error'])}, got ${describeError(error)}`);
    return;
  }
  if (error.code !== expect['error'])
    failures.push(`expected ${String(expect['error'])}, got ${describeError(error)}`);
  const said = error.problems.map((p) => `${p.path}: ${p.message}`);
  for (const text of asStrings(expect['problems'])) {
    if (!said.some((line) => line.includes(text))) {
      failures.push(
        `no problem mentions ${JSON.stringify(text)}; problems:\n${said.map((s) => `  ${s}`).join('\n')}`,
      );
    }
  }
}

export function describeError(error: unknown): string {
  if (isAmtError(error)) {
    const problems = error.problems.map((p) => `\n  ${p.path}: ${p.message}`).join('');
    return `${error.code}: ${error.message}${problems}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function asStrings(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/** `{ $file: name }` anywhere → the file's content (JSON parsed, anything else as text). */
function resolveFiles(value: unknown, dir: string): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveFiles(v, dir));
  if (!isRecord(value)) return value;
  if (Object.keys(value).length === 1 && typeof value['$file'] === 'string') {
    const file = path.resolve(dir, value['$file']);
    const content = readFileSync(file, 'utf8');
    return file.endsWith('.json') ? (JSON.parse(content) as unknown) : content;
  }
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) out[key] = resolveFiles(inner, dir);
  return out;
}

function deepMerge(base: unknown, over: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = isRecord(base) ? { ...base } : {};
  if (!isRecord(over)) return out;
  for (const [key, value] of Object.entries(over)) {
    out[key] = isRecord(value) && isRecord(out[key]) ? deepMerge(out[key], value) : value;
  }
  return out;
}

function applyPatch(input: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(input);
  for (const [pathText, value] of Object.entries(patch)) {
    const segments = parseJsonPath(pathText);
    let parent: Record<string | number, unknown> = copy;
    for (const segment of segments.slice(0, -1)) {
      const next = parent[segment];
      if (typeof next !== 'object' || next === null) parent[segment] = {};
      parent = parent[segment] as Record<string | number, unknown>;
    }
    const last = segments[segments.length - 1]!;
    if (value === null) {
      if (Array.isArray(parent) && typeof last === 'number') parent.splice(last, 1);
      else delete parent[last];
    } else {
      parent[last] = value;
    }
  }
  return copy;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
