/**
 * Code lists for XÖV code-typed values (`<code>` with `listURI` / `listVersionID`). A list is
 * declared inline in the mapping or read from a genericode file shipped under `schemas/`
 * (e.g. `xdomea-3.0.0/code_lists/Nachrichtentyp_2.0.xml`); either way the mapping knows the
 * list's URI, version and — when given — its codes, so an unknown code fails the mapping
 * instead of producing a message the receiver rejects.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readXml } from '../xml/read.js';
import { attributeOf, childElements, textOf } from '../xml/tree.js';
import type { XmlElement } from '../xml/tree.js';
import { schemaRoot } from '../xml/schema-catalog.js';

export interface CodeList {
  readonly name: string;
  readonly listURI: string | undefined;
  readonly listVersionID: string | undefined;
  /** code → display name; undefined when the list's codes are not known (any code accepted). */
  readonly codes: ReadonlyMap<string, string> | undefined;
}

/** The value a code rule produces: what `<code>`, `<name>` and the attributes carry. */
export interface CodeValue {
  readonly code: string;
  readonly name?: string;
  readonly listURI?: string;
  readonly listVersionID?: string;
}

export class CodeListSpecError extends Error {
  override readonly name = 'CodeListSpecError';
}

/**
 * Compiles a code-list declaration: `{ genericode: FILE }` (path below `schemas/`, or relative
 * to the mapping file when it starts with `./`), or inline `{ listURI, listVersionID, codes }`.
 */
export function compileCodeList(name: string, spec: unknown, mappingDir: string): CodeList {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new CodeListSpecError('a code list is a map (genericode: FILE, or listURI/listVersionID/codes)');
  }
  const raw = spec as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!['genericode', 'listURI', 'listVersionID', 'codes'].includes(key)) {
      throw new CodeListSpecError(`unknown key "${key}" (genericode, listURI, listVersionID, codes)`);
    }
  }
  if (typeof raw['genericode'] === 'string') {
    const file = raw['genericode'].startsWith('./')
      ? path.resolve(mappingDir, raw['genericode'])
      : path.resolve(schemaRoot(), raw['genericode']);
    const fromFile = readGenericode(name, file);
    return {
      ...fromFile,
      listURI: optionalString(raw['listURI']) ?? fromFile.listURI,
      listVersionID: optionalString(raw['listVersionID']) ?? fromFile.listVersionID,
    };
  }
  let codes: Map<string, string> | undefined;
  if (raw['codes'] !== undefined) {
    codes = new Map();
    if (Array.isArray(raw['codes'])) {
      for (const code of raw['codes']) codes.set(String(code), '');
    } else if (typeof raw['codes'] === 'object' && raw['codes'] !== null) {
      for (const [code, label] of Object.entries(raw['codes']))
        codes.set(code, label === null ? '' : String(label));
    } else {
      throw new CodeListSpecError('codes is a list of codes or a map code → name');
    }
  }
  return {
    name,
    listURI: optionalString(raw['listURI']),
    listVersionID: optionalString(raw['listVersionID']),
    codes,
  };
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

const GC = 'http://docs.oasis-open.org/codelist/ns/genericode/1.0/';

/** Reads a genericode 1.0 code list: CanonicalUri → listURI, Version → listVersionID, rows. */
export function readGenericode(name: string, file: string): CodeList {
  let root: XmlElement;
  try {
    root = readXml(readFileSync(file), { source: file });
  } catch (err) {
    throw new CodeListSpecError(`cannot read genericode file ${file}: ${(err as Error).message}`);
  }
  if (root.ns !== GC || root.local !== 'CodeList')
    throw new CodeListSpecError(`${file} is not a genericode CodeList`);
  const child = (parent: XmlElement | undefined, local: string): XmlElement | undefined =>
    parent === undefined ? undefined : childElements(parent).find((c) => c.local === local);
  const identification = child(root, 'Identification');
  const listURI = textOf(child(identification, 'CanonicalUri') ?? emptyElement()).trim() || undefined;
  const listVersionID = textOf(child(identification, 'Version') ?? emptyElement()).trim() || undefined;
  const columns = childElements(child(root, 'ColumnSet') ?? emptyElement());
  const columnIds = columns.filter((c) => c.local === 'Column').map((c) => attributeOf(c, '', 'Id') ?? '');
  const keyColumn = columns
    .filter((c) => c.local === 'Key')
    .flatMap((k) => childElements(k))
    .filter((c) => c.local === 'ColumnRef')
    .map((c) => attributeOf(c, '', 'Ref'))[0];
  const codeColumn = keyColumn ?? columnIds.find((id) => id.toLowerCase() === 'code') ?? columnIds[0];
  const others = columnIds.filter((id) => id !== codeColumn);
  const nameColumn = others.find((id) => /name|beschreibung|wert/i.test(id)) ?? others[0];
  const codes = new Map<string, string>();
  for (const row of childElements(child(root, 'SimpleCodeList') ?? emptyElement())) {
    let code: string | undefined;
    let label = '';
    for (const value of childElements(row)) {
      const column = attributeOf(value, '', 'ColumnRef');
      const simpleValue = textOf(child(value, 'SimpleValue') ?? emptyElement()).trim();
      if (column === codeColumn) code = simpleValue;
      else if (column === nameColumn) label = simpleValue;
    }
    if (code !== undefined) codes.set(code, label);
  }
  if (codes.size === 0) throw new CodeListSpecError(`${file} lists no codes`);
  return { name, listURI, listVersionID, codes };
}

function emptyElement(): XmlElement {
  return {
    kind: 'element',
    name: '',
    ns: '',
    local: '',
    attributes: [],
    declarations: {},
    children: [],
    line: 0,
  };
}
