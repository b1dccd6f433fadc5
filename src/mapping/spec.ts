/**
 * The `source:` and `target:` sections of a mapping file: formats, namespace prefixes, root
 * element and schema set, each problem located at its line.
 */
import type { Problem } from '../errors.js';
import { schemaSet } from '../xml/schema-catalog.js';
import { parseTargetPath, PathSpecError } from './paths.js';
import type { TargetStep } from './paths.js';
import { editDistance } from './transforms.js';
import type { YamlSource } from './yaml-source.js';

export interface SourceSpec {
  readonly format: 'json' | 'xml';
  /** XML: expected root element (`prefix:local`). */
  readonly root: { readonly ns: string; readonly local: string; readonly name: string } | undefined;
  readonly namespaces: Readonly<Record<string, string>>;
  /** XML: validate the input against this schema set before mapping. */
  readonly schemaSet: string | undefined;
}

export interface TargetSpec {
  readonly format: 'json' | 'xml';
  readonly namespaces: Readonly<Record<string, string>>;
  /** XML: validate the output against this schema set. */
  readonly schemaSet: string | undefined;
  readonly indent: boolean;
}

export function sourceSpec(raw: unknown, yaml: YamlSource, problems: Problem[], file: string): SourceSpec {
  const at = (key?: string): string => `${file}:${yaml.lineOf(raw, key)}`;
  if (!isRecord(raw)) {
    problems.push({
      path: `${file}:1`,
      message: 'source is required: { format: json } or { format: xml, namespaces, root }',
    });
    return { format: 'json', root: undefined, namespaces: {}, schemaSet: undefined };
  }
  checkKeys(raw, ['format', 'root', 'namespaces', 'schemaSet'], 'source', yaml, problems, file);
  const format = raw['format'] === 'xml' ? 'xml' : 'json';
  if (raw['format'] !== 'xml' && raw['format'] !== 'json')
    problems.push({ path: at('format'), message: 'source.format is json or xml' });
  const namespaces = namespaceMap(raw['namespaces'], 'source', yaml, problems, file);
  let root: SourceSpec['root'];
  if (typeof raw['root'] === 'string') {
    try {
      const [step] = parseTargetPath(raw['root'], 'xml', namespaces);
      if (step !== undefined) root = { ns: step.ns, local: step.local, name: step.name };
    } catch (err) {
      problems.push({ path: at('root'), message: `source.root: ${(err as Error).message}` });
    }
  }
  const set = typeof raw['schemaSet'] === 'string' ? raw['schemaSet'] : undefined;
  if (set !== undefined) knownSchemaSet(set, at('schemaSet'), problems);
  return { format, root, namespaces, schemaSet: set };
}

export function targetSpec(raw: unknown, yaml: YamlSource, problems: Problem[], file: string): TargetSpec {
  const at = (key?: string): string => `${file}:${yaml.lineOf(raw, key)}`;
  if (!isRecord(raw)) {
    problems.push({
      path: `${file}:1`,
      message: 'target is required: { format: json } or { format: xml, root, namespaces }',
    });
    return { format: 'json', namespaces: {}, schemaSet: undefined, indent: false };
  }
  checkKeys(raw, ['format', 'root', 'namespaces', 'schemaSet', 'indent'], 'target', yaml, problems, file);
  const format = raw['format'] === 'xml' ? 'xml' : 'json';
  if (raw['format'] !== 'xml' && raw['format'] !== 'json')
    problems.push({ path: at('format'), message: 'target.format is json or xml' });
  const namespaces = namespaceMap(raw['namespaces'], 'target', yaml, problems, file);
  const set = typeof raw['schemaSet'] === 'string' ? raw['schemaSet'] : undefined;
  if (set !== undefined) knownSchemaSet(set, at('schemaSet'), problems);
  if (format === 'json' && set !== undefined)
    problems.push({ path: at('schemaSet'), message: 'schemaSet needs an XML target' });
  return { format, namespaces, schemaSet: set, indent: raw['indent'] === 'true' || raw['indent'] === true };
}

export function targetRootStep(
  raw: unknown,
  target: TargetSpec,
  yaml: YamlSource,
  problems: Problem[],
  file: string,
): TargetStep {
  if (target.format === 'json') return { name: '', ns: '', local: '', attribute: false, instance: undefined };
  const rootName = isRecord(raw) ? raw['root'] : undefined;
  if (typeof rootName !== 'string') {
    problems.push({
      path: `${file}:${yaml.lineOf(raw)}`,
      message: 'target.root (the root element, prefix:name) is required for XML',
    });
    return { name: 'root', ns: '', local: 'root', attribute: false, instance: undefined };
  }
  try {
    const steps = parseTargetPath(rootName, 'xml', target.namespaces);
    if (steps.length !== 1 || steps[0]!.attribute) throw new PathSpecError('target.root is one element name');
    return steps[0]!;
  } catch (err) {
    problems.push({ path: `${file}:${yaml.lineOf(raw, 'root')}`, message: (err as Error).message });
    return { name: 'root', ns: '', local: 'root', attribute: false, instance: undefined };
  }
}

function namespaceMap(
  raw: unknown,
  where: string,
  yaml: YamlSource,
  problems: Problem[],
  file: string,
): Record<string, string> {
  if (raw === undefined) return {};
  if (!isRecord(raw)) {
    problems.push({
      path: `${file}:${yaml.lineOf(raw)}`,
      message: `${where}.namespaces maps prefixes to namespace URIs`,
    });
    return {};
  }
  const out: Record<string, string> = {};
  for (const [prefix, uri] of Object.entries(raw)) {
    if (
      !/^[A-Za-z_][\w.-]*$/.test(prefix) ||
      prefix.toLowerCase().startsWith('xml') ||
      typeof uri !== 'string' ||
      uri === ''
    ) {
      problems.push({
        path: `${file}:${yaml.lineOf(raw, prefix)}`,
        message: `${where}.namespaces: bad prefix or URI "${prefix}"`,
      });
      continue;
    }
    out[prefix] = uri;
  }
  return out;
}

function knownSchemaSet(name: string, where: string, problems: Problem[]): void {
  try {
    schemaSet(name);
  } catch (err) {
    problems.push({ path: where, message: (err as Error).message });
  }
}

export function checkKeys(
  raw: Record<string, unknown>,
  allowed: readonly string[],
  where: string,
  yaml: YamlSource,
  problems: Problem[],
  file: string,
): void {
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) {
      problems.push({
        path: `${file}:${yaml.lineOf(raw, key)}`,
        message: `${where}: unknown key "${key}"${didYouMean(key, allowed)}`,
      });
    }
  }
}

export function didYouMean(name: string, known: readonly string[]): string {
  const close = known.filter((k) => editDistance(k.toLowerCase(), name.toLowerCase()) <= 2);
  return close.length > 0 ? ` (did you mean ${close.join(' or ')}?)` : '';
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
