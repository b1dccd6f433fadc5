/**
 * Source and target paths of mapping rules, compiled once into small accessor functions.
 *
 * JSON source paths: `application.applicant.familyName`, `attachments[0].filename`.
 * XML source paths:  `g2g:nachrichtenkopf.g2g/g2g:identifikation.nachricht/g2g:nachrichtenUUID`,
 *                    `b:anlage/@listURI`, `code` (an unprefixed step is in no namespace).
 * Everywhere:        `$` the current item of a repeating group, `$index` / `$position` its
 *                    0/1-based position, `$.x` from the source root, `$message.x` and
 *                    `$attachments` the message meta of the MappingInput.
 */
import { findChildren, textOf } from '../xml/tree.js';
import type { XmlElement } from '../xml/tree.js';

export class PathSpecError extends Error {
  override readonly name = 'PathSpecError';
}

export interface Scope {
  /** The source root: the parsed application JSON / MappingInput, or the XML root element. */
  readonly root: unknown;
  /** The MappingInput (for `$message`, `$attachments`). */
  readonly input: unknown;
  /** The current item (the root outside repeating groups). */
  readonly item: unknown;
  readonly index: number;
  /** `attachments[2]`-style trail for messages. */
  readonly trail: string;
}

/** Reads one value (the first match) from the scope. */
export type ValueReader = (scope: Scope) => unknown;
/** Reads every match (for `each`). */
export type ItemsReader = (scope: Scope) => unknown[];

export interface CompiledSourcePath {
  readonly text: string;
  readonly value: ValueReader;
  readonly items: ItemsReader;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);
const JSON_SEGMENT = /^[^.[\]]+$/;

/** How source paths are read: the source format, its prefixes, and the group's `at` base. */
export interface SourceContext {
  readonly format: 'json' | 'xml';
  /** XML: prefix → namespace URI. */
  readonly namespaces: Readonly<Record<string, string>>;
  /** A group's `at:` path that relative paths inside the group start from. */
  readonly base?: string | undefined;
}

/** A relative path inside an `at:` group, made absolute (relative to the current item). */
export function withBase(text: string, source: SourceContext): string {
  const trimmed = text.trim();
  if (source.base === undefined || source.base === '') return trimmed;
  if (trimmed === '$') return source.base;
  if (trimmed.startsWith('$')) return trimmed;
  return `${source.base}${source.format === 'json' ? '.' : '/'}${trimmed}`;
}

/** Compiles a source path for a JSON or XML source. */
export function compileSourcePath(text: string, source: SourceContext): CompiledSourcePath {
  const { format, namespaces } = source;
  const trimmed = withBase(text, source);
  if (trimmed === '') throw new PathSpecError('empty path');
  if (trimmed === '$') return fixed(trimmed, (s) => s.item);
  if (trimmed === '$index') return fixed(trimmed, (s) => s.index);
  if (trimmed === '$position') return fixed(trimmed, (s) => s.index + 1);
  if (trimmed === '$message' || trimmed.startsWith('$message.')) {
    return jsonPath(trimmed, trimmed.slice(1), (s) => s.input);
  }
  if (
    trimmed === '$attachments' ||
    trimmed.startsWith('$attachments.') ||
    trimmed.startsWith('$attachments[')
  ) {
    return jsonPath(trimmed, trimmed.slice(1), (s) => s.input);
  }
  const fromRoot = trimmed.startsWith('$.');
  const rest = fromRoot ? trimmed.slice(2) : trimmed;
  const base = fromRoot ? (s: Scope) => s.root : (s: Scope) => s.item;
  if (rest.startsWith('$'))
    throw new PathSpecError(
      `unknown variable in path "${text}" ($, $index, $position, $., $message, $attachments)`,
    );
  return format === 'json' ? jsonPath(trimmed, rest, base) : xmlPath(trimmed, rest, namespaces, base);
}

function fixed(text: string, read: ValueReader): CompiledSourcePath {
  return { text, value: read, items: (s) => toItems(read(s)) };
}

function toItems(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** Splits `a.b[0].c` into `['a', 'b', 0, 'c']`. */
export function parseJsonPath(text: string): (string | number)[] {
  const segments: (string | number)[] = [];
  for (const part of text.split('.')) {
    const match = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (match === null) throw new PathSpecError(`bad path segment "${part}" in "${text}"`);
    const name = match[1]!;
    if (name !== '') {
      if (!JSON_SEGMENT.test(name) || FORBIDDEN_KEYS.has(name))
        throw new PathSpecError(`bad path segment "${name}" in "${text}"`);
      segments.push(name);
    } else if (match[2] === '') {
      throw new PathSpecError(`empty segment in "${text}"`);
    }
    for (const index of match[2]!.matchAll(/\[(\d+)\]/g)) segments.push(Number(index[1]));
  }
  return segments;
}

function jsonPath(text: string, path: string, base: (s: Scope) => unknown): CompiledSourcePath {
  const segments = parseJsonPath(path);
  const read = (scope: Scope): unknown => {
    let value = base(scope);
    for (const segment of segments) {
      if (value === null || typeof value !== 'object') return undefined;
      // Own properties only: a path never reaches into prototypes.
      value = Object.hasOwn(value, segment)
        ? (value as Record<string | number, unknown>)[segment]
        : undefined;
    }
    return value;
  };
  return { text, value: read, items: (s) => toItems(read(s)) };
}

interface XmlStep {
  readonly attribute: boolean;
  readonly ns: string;
  readonly local: string;
}

function xmlPath(
  text: string,
  path: string,
  namespaces: Readonly<Record<string, string>>,
  base: (s: Scope) => unknown,
): CompiledSourcePath {
  const steps = path === '.' ? [] : path.split('/').map((step) => parseXmlStep(step, namespaces, text));
  steps.forEach((step, i) => {
    if (step.attribute && i !== steps.length - 1)
      throw new PathSpecError(`an attribute must be the last step in "${text}"`);
  });
  const matches = (scope: Scope): unknown[] => {
    const start = base(scope);
    if (!isElement(start)) return [];
    let current: XmlElement[] = [start];
    for (const step of steps) {
      if (step.attribute) {
        const values: string[] = [];
        for (const element of current) {
          for (const attribute of element.attributes) {
            if (attribute.local === step.local && attribute.ns === step.ns) values.push(attribute.value);
          }
        }
        return values;
      }
      const next: XmlElement[] = [];
      for (const element of current) next.push(...findChildren(element, step.ns, step.local));
      current = next;
      if (current.length === 0) return [];
    }
    return current;
  };
  return {
    text,
    value: (scope) => {
      const first = matches(scope)[0];
      return isElement(first) ? textOf(first) : first;
    },
    items: matches,
  };
}

function parseXmlStep(step: string, namespaces: Readonly<Record<string, string>>, text: string): XmlStep {
  const attribute = step.startsWith('@');
  const name = attribute ? step.slice(1) : step;
  if (!/^[A-Za-z_][\w.-]*(:[A-Za-z_][\w.-]*)?$/.test(name))
    throw new PathSpecError(`bad step "${step}" in "${text}"`);
  const colon = name.indexOf(':');
  if (colon < 0) return { attribute, ns: '', local: name };
  const prefix = name.slice(0, colon);
  const ns = namespaces[prefix];
  if (ns === undefined)
    throw new PathSpecError(`prefix "${prefix}" in "${text}" is not declared in namespaces`);
  return { attribute, ns, local: name.slice(colon + 1) };
}

function isElement(value: unknown): value is XmlElement {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'element';
}

// ---- target paths ---------------------------------------------------------------------------

export interface TargetStep {
  /** As written, without an instance suffix: `xdomea:Kopf`, `code`, `listURI`, or a JSON key. */
  readonly name: string;
  readonly ns: string;
  readonly local: string;
  readonly attribute: boolean;
  /** `xdomea:Feld[2]`: the second of several sibling elements filled by separate rules. */
  readonly instance: number | undefined;
}

const INSTANCE = /^(.*)\[(\d+)\]$/;

function splitInstance(step: string, text: string): { name: string; instance: number | undefined } {
  const match = INSTANCE.exec(step);
  if (match === null) return { name: step, instance: undefined };
  const instance = Number(match[2]);
  if (instance < 1) throw new PathSpecError(`instance numbers start at 1 in "${text}"`);
  return { name: match[1]!, instance };
}

/** XML targets: `/`-separated qualified names, `@attr` last; JSON targets: dot-separated keys. */
export function parseTargetPath(
  text: string,
  format: 'json' | 'xml',
  namespaces: Readonly<Record<string, string>>,
): TargetStep[] {
  const trimmed = text.trim();
  if (format === 'json') {
    if (trimmed === '' || trimmed === '.') return [];
    return trimmed.split('.').map((raw) => {
      const { name: key, instance } = splitInstance(raw, text);
      if (key === '' || FORBIDDEN_KEYS.has(key)) throw new PathSpecError(`bad key "${key}" in "${text}"`);
      return { name: key, ns: '', local: key, attribute: false, instance };
    });
  }
  if (trimmed === '' || trimmed === '.') return [];
  const steps = trimmed.split('/').map((raw) => {
    const { name: step, instance } = splitInstance(raw, text);
    const parsed = parseXmlStep(step, namespaces, text);
    if (parsed.attribute && instance !== undefined)
      throw new PathSpecError(`an attribute has no instances in "${text}"`);
    return { name: step.startsWith('@') ? step.slice(1) : step, ...parsed, instance };
  });
  steps.forEach((step, i) => {
    if (step.attribute && i !== steps.length - 1)
      throw new PathSpecError(`an attribute must be the last step in "${text}"`);
  });
  return steps;
}
