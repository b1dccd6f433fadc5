/**
 * The schema catalog: which XSD sets the project ships (`schemas/catalog.yaml`), where their
 * files are, and which root namespace selects which set.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { AmtError } from '../errors.js';

export interface SchemaSet {
  readonly name: string;
  readonly description: string;
  /** Absolute paths of the XSD files compiled together. */
  readonly entries: readonly string[];
  readonly namespaces: readonly string[];
}

export interface SchemaCatalog {
  /** Absolute path of the `schemas/` folder; nothing outside it is ever read for a schema. */
  readonly root: string;
  readonly sets: ReadonlyMap<string, SchemaSet>;
}

const CATALOG_FILE = 'catalog.yaml';
let cached: SchemaCatalog | undefined;

/** The `schemas/` folder: `AMTSBOTE_SCHEMAS_DIR`, else found upwards from this module. */
export function schemaRoot(): string {
  const fromEnv = process.env['AMTSBOTE_SCHEMAS_DIR'];
  if (fromEnv !== undefined && fromEnv !== '') return path.resolve(fromEnv);
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'schemas');
    if (existsSync(path.join(candidate, CATALOG_FILE))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new AmtError('AMT_SCHEMA_UNLOADABLE', 'cannot find the schemas/ folder with catalog.yaml');
    }
    dir = parent;
  }
}

export function loadSchemaCatalog(): SchemaCatalog {
  if (cached !== undefined) return cached;
  const root = schemaRoot();
  const file = path.join(root, CATALOG_FILE);
  const raw = parseYaml(readFileSync(file, 'utf8')) as unknown;
  const setsRaw = isRecord(raw) && isRecord(raw['sets']) ? raw['sets'] : undefined;
  if (setsRaw === undefined) throw new AmtError('AMT_SCHEMA_UNLOADABLE', `${file}: no "sets" mapping`);
  const sets = new Map<string, SchemaSet>();
  for (const [name, value] of Object.entries(setsRaw)) {
    if (!isRecord(value) || !isStringArray(value['entries']) || !isStringArray(value['namespaces'])) {
      throw new AmtError(
        'AMT_SCHEMA_UNLOADABLE',
        `${file}: set ${name} needs "entries" and "namespaces" lists`,
      );
    }
    const entries = value['entries'].map((entry) => resolveInside(root, entry, file));
    sets.set(name, {
      name,
      description: typeof value['description'] === 'string' ? value['description'] : '',
      entries,
      namespaces: value['namespaces'],
    });
  }
  cached = { root, sets };
  return cached;
}

export function schemaSet(name: string): SchemaSet {
  const set = loadSchemaCatalog().sets.get(name);
  if (set === undefined) {
    const known = [...loadSchemaCatalog().sets.keys()].join(', ');
    throw new AmtError('AMT_SCHEMA_SET_UNKNOWN', `no schema set "${name}" (known: ${known})`, {
      problems: [{ path: 'schemaSet', message: `unknown schema set ${name}` }],
    });
  }
  return set;
}

/** The set whose namespaces include the root element's namespace. */
export function schemaSetForNamespace(namespace: string): SchemaSet {
  for (const set of loadSchemaCatalog().sets.values()) {
    if (set.namespaces.includes(namespace)) return set;
  }
  throw new AmtError('AMT_SCHEMA_SET_UNKNOWN', `no schema set for root namespace "${namespace}"`, {
    problems: [{ path: '/', message: `no schema set covers namespace ${namespace || '(none)'}` }],
  });
}

/** True when `file` lies inside the schemas folder (the only place XSDs are read from). */
export function isInsideSchemaRoot(file: string): boolean {
  const root = loadSchemaCatalog().root;
  const relative = path.relative(root, path.resolve(file));
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

function resolveInside(root: string, entry: string, file: string): string {
  const absolute = path.resolve(root, entry);
  const relative = path.relative(root, absolute);
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new AmtError('AMT_SCHEMA_UNLOADABLE', `${file}: entry ${entry} lies outside the schemas folder`);
  }
  return absolute;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
