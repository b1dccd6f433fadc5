/**
 * YAML with positions: the plain value of a mapping or test file plus the line of every object
 * and of every key, so a compile error can say `file:line`.
 */
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import { AmtError } from '../errors.js';

export interface Located {
  readonly line: number;
  readonly keys: Readonly<Record<string, number>>;
}

export interface YamlSource {
  readonly file: string;
  readonly value: unknown;
  /** Line of an object or array taken from `value` (0 when unknown). */
  lineOf(node: unknown, key?: string): number;
}

/**
 * `failsafe` reads every scalar as a string — used for mapping files, where `0604` or an ARS
 * must never become a number. `core` gives JSON-like types — used for test inputs.
 */
export function parseYamlSource(
  text: string,
  file: string,
  schema: 'failsafe' | 'core' = 'failsafe',
): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, schema });
  if (doc.errors.length > 0) {
    throw new AmtError('AMT_MAPPING_COMPILE_FAILED', `${file} is not valid YAML`, {
      problems: doc.errors.map((e) => ({
        path: `${file}:${e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line}`,
        message: e.message.split('\n')[0] ?? e.message,
      })),
    });
  }
  const positions = new WeakMap<object, Located>();
  const line = (node: YamlNode | null | undefined): number =>
    node?.range ? lineCounter.linePos(node.range[0]).line : 0;

  const convert = (node: unknown, depth: number): unknown => {
    if (depth > 64) {
      throw new AmtError('AMT_MAPPING_COMPILE_FAILED', `${file}: nesting deeper than 64 levels`);
    }
    if (isAlias(node)) {
      throw new AmtError(
        'AMT_MAPPING_COMPILE_FAILED',
        `${file}:${line(node)}: YAML aliases are not supported here`,
        {
          problems: [{ path: `${file}:${line(node)}`, message: 'YAML aliases (*name) are not supported' }],
        },
      );
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      const keys: Record<string, number> = {};
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const keyNode = pair.key;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
        keys[key] = line(keyNode as YamlNode);
        Object.defineProperty(out, key, {
          value: convert(pair.value, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      positions.set(out, { line: line(node), keys });
      return out;
    }
    if (isSeq(node)) {
      const out = node.items.map((item) => convert(item, depth + 1));
      positions.set(out, { line: line(node), keys: {} });
      return out;
    }
    if (isScalar(node)) return node.value;
    return node ?? null;
  };

  const value = convert(doc.contents, 0);
  return {
    file,
    value,
    lineOf(node: unknown, key?: string): number {
      if (typeof node !== 'object' || node === null) return 0;
      const located = positions.get(node);
      if (located === undefined) return 0;
      return key !== undefined ? (located.keys[key] ?? located.line) : located.line;
    },
  };
}
