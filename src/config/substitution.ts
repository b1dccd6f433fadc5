/**
 * `${VAR}` and `${file:path}` in gateway.yaml: replaced in the parsed YAML document before it
 * becomes data, and — where the schema asks for a number or a boolean — read back as one.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ErrorObject } from 'ajv/dist/2020.js';
import { isScalar, visit, type parseDocument } from 'yaml';
import type { Problem } from '../errors.js';
import { jsonPointer } from '../json-text.js';

/**
 * Replaces `${VAR}` and `${file:path}` inside string scalars; `$${` escapes a literal `${`. A
 * relative secret file path is relative to the configuration file, like every path in it.
 * Returns the paths of the scalars that were one reference and nothing else (`port: ${PORT}`):
 * where the schema asks for a number or a boolean, their text is read as one (see
 * `validateConfig`), as if it had been written there; everywhere else it stays text.
 */
export function substituteSecrets(
  doc: ReturnType<typeof parseDocument>,
  env: NodeJS.ProcessEnv,
  baseDir: string,
  problems: Problem[],
): Set<string> {
  const whole = new Set<string>();
  visit(doc, {
    Scalar(_key, node, ancestors) {
      if (!isScalar(node) || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const where = yamlPath(ancestors);
      if (/^\$\{[^}]+\}$/.test(node.value)) whole.add(where);
      node.value = node.value.replace(
        /(\$?)\$\{(file:)?([^}]+)\}/g,
        (whole, escape: string, isFile, name: string) => {
          if (escape === '$') return whole.slice(1);
          if (isFile) {
            const file = path.resolve(baseDir, name.trim());
            try {
              return readFileSync(file, 'utf8').trim();
            } catch {
              problems.push({ path: where, message: `secret file ${file} cannot be read` });
              return '';
            }
          }
          const value = env[name.trim()];
          if (value === undefined) {
            problems.push({ path: where, message: `environment variable ${name.trim()} is not set` });
            return '';
          }
          return value;
        },
      );
    },
  });
  return whole;
}

/** The JSON pointer of a scalar, escaped as ajv's `instancePath` is, so the two compare. */
function yamlPath(ancestors: readonly unknown[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ancestors.length; i++) {
    const node = ancestors[i] as { key?: { value?: unknown }; items?: unknown[] };
    const next = ancestors[i + 1];
    if (node && typeof node === 'object' && 'key' in node && node.key && typeof node.key === 'object') {
      parts.push(String((node.key as { value?: unknown }).value));
    } else if (Array.isArray(node.items) && next !== undefined && !('key' in (next as object))) {
      parts.push(String(node.items.indexOf(next)));
    }
  }
  return jsonPointer(parts) || '/';
}

/**
 * Where the schema wants a number, an integer or a boolean and finds the text of a whole `${…}`
 * substitution (environment variables are text), reads that text as the value it spells, as YAML
 * would have read it written in place. True when something was read, so validation runs again.
 */
export function readSubstitutedAsTyped(
  data: Record<string, unknown>,
  errors: readonly ErrorObject[],
  substituted: ReadonlySet<string>,
): boolean {
  let changed = false;
  for (const e of errors) {
    if (e.keyword !== 'type' || !substituted.has(e.instancePath)) continue;
    const wanted = [(e.params as { type: string | string[] }).type].flat();
    const keys = e.instancePath
      .split('/')
      .slice(1)
      .map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = keys.pop();
    let parent: unknown = data;
    for (const key of keys) parent = (parent as Record<string, unknown> | undefined)?.[key];
    if (last === undefined || typeof parent !== 'object' || parent === null || !Object.hasOwn(parent, last))
      continue;
    const text = (parent as Record<string, unknown>)[last];
    if (typeof text !== 'string') continue;
    let value: number | boolean | undefined;
    if (wanted.includes('integer') && /^-?\d+$/.test(text)) value = Number(text);
    else if (wanted.includes('number') && /^-?\d+(\.\d+)?$/.test(text)) value = Number(text);
    else if (wanted.includes('boolean') && (text === 'true' || text === 'false')) value = text === 'true';
    if (value === undefined) continue;
    (parent as Record<string, unknown>)[last] = value;
    changed = true;
  }
  return changed;
}
