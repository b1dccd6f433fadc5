/**
 * XSD validation with libxml2-wasm. Each schema set is compiled once, on first use, and cached;
 * its imports are served from the `schemas/` folder only (no network, no other file). Documents
 * reach libxml2 only after the guard (no DOCTYPE, size limit, UTF-8) and are parsed without
 * entity substitution (NOENT) and without loading external DTDs or entities.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ParseOption,
  XmlDocument,
  XmlParseError,
  XmlValidateError,
  XsdValidator,
  xmlRegisterInputProvider,
} from 'libxml2-wasm';
import type { ErrorDetail } from 'libxml2-wasm';
import { AmtError } from '../errors.js';
import { DEFAULT_XML_LIMITS, decodeXml } from './guard.js';
import type { XmlLimits } from './guard.js';
import { isInsideSchemaRoot, loadSchemaCatalog, schemaSet, schemaSetForNamespace } from './schema-catalog.js';
import type { SchemaSet } from './schema-catalog.js';

export interface XsdValidationError {
  readonly line: number;
  readonly column?: number;
  /** XPath of the offending node, when libxml2 reports one. */
  readonly path?: string;
  readonly message: string;
}

export interface XsdValidationResult {
  readonly valid: boolean;
  readonly schemaSet: string;
  readonly errors: readonly XsdValidationError[];
}

export interface ValidateXmlOptions {
  readonly limits?: Partial<XmlLimits>;
  /** Name for the document in messages (file name, message id). */
  readonly source?: string;
}

/**
 * The only options documents are parsed with. NOENT (entity substitution), DTDLOAD, DTDATTR and
 * DTDVALID are never set; NO_XXE and NONET make sure nothing external is fetched even if a
 * document slipped past the guard.
 */
export const DOCUMENT_PARSE_OPTIONS: number =
  ParseOption.XML_PARSE_NONET |
  ParseOption.XML_PARSE_NO_XXE |
  ParseOption.XML_PARSE_BIG_LINES |
  ParseOption.XML_PARSE_COMPACT;

/** Schemas are our own files, but the same rule holds: no entity substitution, no network. */
const SCHEMA_PARSE_OPTIONS: number = ParseOption.XML_PARSE_NONET | ParseOption.XML_PARSE_NO_XXE;

interface CompiledSet {
  readonly set: SchemaSet;
  readonly validator: XsdValidator;
}

const compiled = new Map<string, CompiledSet>();

/**
 * Validates a document against a schema set (by name, or chosen by the root element's
 * namespace). Returns every validation error with line and XPath. Throws AmtError for input
 * that is refused before validation (`AMT_XML_TOO_LARGE`, `AMT_XML_ENCODING_INVALID`,
 * `AMT_XML_DOCTYPE_FORBIDDEN`), not well-formed (`AMT_XML_MALFORMED`, `AMT_XML_TOO_DEEP`) or
 * for an unknown schema set (`AMT_SCHEMA_SET_UNKNOWN`).
 */
export function validateXml(
  xml: string | Uint8Array,
  schemaSetName?: string,
  options: ValidateXmlOptions = {},
): XsdValidationResult {
  if (typeof xml === 'string') return validateXmlText(xml, schemaSetName, options).validation;
  const text = decodeXml(xml, { ...DEFAULT_XML_LIMITS, ...options.limits });
  return validateBytes(hasBom(xml) ? Buffer.from(text, 'utf8') : xml, schemaSetName, options);
}

/**
 * As `validateXml` for a document held as text, and hands back its UTF-8 encoding as well, so
 * that a caller sending the document on (a mapping's output) does not encode it a second time.
 */
export function validateXmlText(
  xml: string,
  schemaSetName?: string,
  options: ValidateXmlOptions = {},
): { readonly validation: XsdValidationResult; readonly bytes: Buffer } {
  const limits: XmlLimits = { ...DEFAULT_XML_LIMITS, ...options.limits };
  // Refuse an oversized string before encoding it; otherwise encode once and reuse the size.
  if (xml.length > limits.maxBytes) decodeXml(xml, limits);
  const bytes = Buffer.from(xml, 'utf8');
  decodeXml(xml, limits, bytes.byteLength);
  return { validation: validateBytes(bytes, schemaSetName, options), bytes };
}

function validateBytes(
  bytes: Uint8Array,
  schemaSetName: string | undefined,
  options: ValidateXmlOptions,
): XsdValidationResult {
  const source = options.source ?? 'document.xml';
  const doc = parseDocument(bytes, source);
  try {
    const set =
      schemaSetName !== undefined ? schemaSet(schemaSetName) : schemaSetForNamespace(doc.root.namespaceUri);
    const { validator } = compiledSet(set);
    try {
      validator.validate(doc);
      return { valid: true, schemaSet: set.name, errors: [] };
    } catch (err) {
      if (!(err instanceof XmlValidateError)) throw err;
      return { valid: false, schemaSet: set.name, errors: err.details.map(toValidationError) };
    }
  } finally {
    doc.dispose();
  }
}

/** Compiles a schema set now (otherwise it happens on first validation). */
export function preloadSchemaSet(name: string): void {
  compiledSet(schemaSet(name));
}

function parseDocument(bytes: Uint8Array, source: string): XmlDocument {
  try {
    return XmlDocument.fromBuffer(bytes, { option: DOCUMENT_PARSE_OPTIONS, url: source });
  } catch (err) {
    if (!(err instanceof XmlParseError)) throw err;
    const errors = err.details.map(toValidationError);
    const tooDeep = errors.some((e) => /depth/i.test(e.message));
    const first = errors[0];
    const where = first === undefined ? '' : `:${first.line}`;
    throw new AmtError(
      tooDeep ? 'AMT_XML_TOO_DEEP' : 'AMT_XML_MALFORMED',
      `${source}${where}: ${first?.message ?? err.message}`,
      { problems: errors.map((e) => ({ path: `line ${e.line}`, message: e.message })), cause: err },
    );
  }
}

function toValidationError(detail: ErrorDetail): XsdValidationError {
  const message = detail.message.trim();
  return {
    line: detail.line,
    ...(detail.col > 0 ? { column: detail.col } : {}),
    ...(detail.xpath !== undefined && detail.xpath !== '' ? { path: detail.xpath } : {}),
    message,
  };
}

function hasBom(bytes: Uint8Array): boolean {
  return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

function compiledSet(set: SchemaSet): CompiledSet {
  const known = compiled.get(set.name);
  if (known !== undefined) return known;
  registerSchemaInputProvider();
  const entry = set.entries.length === 1 ? set.entries[0]! : driverSchema(set);
  let schemaDoc: XmlDocument | undefined;
  try {
    schemaDoc = XmlDocument.fromBuffer(schemaFile(entry), { url: entry, option: SCHEMA_PARSE_OPTIONS });
    const validator = XsdValidator.fromDoc(schemaDoc);
    const result = { set, validator };
    compiled.set(set.name, result);
    return result;
  } catch (err) {
    const details: ErrorDetail[] =
      err instanceof XmlValidateError || err instanceof XmlParseError ? err.details : [];
    const root = loadSchemaCatalog().root;
    throw new AmtError(
      'AMT_SCHEMA_UNLOADABLE',
      `schema set ${set.name} does not compile: ${(err as Error).message}`,
      {
        problems: details.map((d) => ({
          path: `${path.relative(root, d.file ?? entry)}:${d.line}`,
          message: d.message.trim(),
        })),
        cause: err,
      },
    );
  } finally {
    // The compiled schema no longer needs the document it was read from.
    schemaDoc?.dispose();
  }
}

// ---- offline schema files -------------------------------------------------------------------

const schemaFiles = new Map<string, Buffer>();
const openFiles = new Map<number, { readonly data: Buffer; offset: number }>();
let nextHandle = 1;
let providerRegistered = false;

function schemaFile(file: string): Buffer {
  let data = schemaFiles.get(file);
  if (data === undefined) {
    data = readFileSync(file);
    schemaFiles.set(file, data);
  }
  return data;
}

function fileFromUrl(name: string): string {
  return name.startsWith('file://') ? decodeURIComponent(new URL(name).pathname) : name;
}

/** libxml2 asks this provider for every include/import; it answers only inside `schemas/`. */
function registerSchemaInputProvider(): void {
  if (providerRegistered) return;
  providerRegistered = true;
  xmlRegisterInputProvider({
    match: (name) => {
      const file = fileFromUrl(name);
      return path.isAbsolute(file) && isInsideSchemaRoot(file);
    },
    open: (name) => {
      try {
        const handle = nextHandle++;
        openFiles.set(handle, { data: schemaFile(path.resolve(fileFromUrl(name))), offset: 0 });
        return handle;
      } catch {
        return undefined;
      }
    },
    read: (handle, buffer) => {
      const file = openFiles.get(handle);
      if (file === undefined) return -1;
      const count = Math.min(buffer.byteLength, file.data.length - file.offset);
      buffer.set(file.data.subarray(file.offset, file.offset + count));
      file.offset += count;
      return count;
    },
    close: (handle) => openFiles.delete(handle),
  });
}

/**
 * A set of several entry schemas is tied together by a generated schema that imports each
 * target namespace once (libxml2 ignores a second import of the same namespace, so entries
 * sharing a namespace are first gathered by a per-namespace schema that includes them all).
 */
function driverSchema(set: SchemaSet): string {
  const root = loadSchemaCatalog().root;
  const byNamespace = new Map<string, string[]>();
  for (const entry of set.entries) {
    const namespace = targetNamespace(schemaFile(entry).toString('utf8'));
    byNamespace.set(namespace, [...(byNamespace.get(namespace) ?? []), entry]);
  }
  const imports: string[] = [];
  let index = 0;
  for (const [namespace, entries] of byNamespace) {
    let location = entries[0]!;
    if (entries.length > 1) {
      location = path.join(root, '.catalog', set.name, `namespace-${index++}.xsd`);
      const includes = entries.map((e) => `<xs:include schemaLocation="${escapeAttribute(e)}"/>`).join('');
      schemaFiles.set(location, Buffer.from(xsdDocument(includes, namespace)));
    }
    imports.push(
      `<xs:import namespace="${escapeAttribute(namespace)}" schemaLocation="${escapeAttribute(location)}"/>`,
    );
  }
  const driver = path.join(root, '.catalog', set.name, 'driver.xsd');
  schemaFiles.set(driver, Buffer.from(xsdDocument(imports.join(''), undefined)));
  return driver;
}

function xsdDocument(body: string, namespace: string | undefined): string {
  const target = namespace === undefined ? '' : ` targetNamespace="${escapeAttribute(namespace)}"`;
  return `<?xml version="1.0" encoding="UTF-8"?><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"${target}>${body}</xs:schema>`;
}

function targetNamespace(xsd: string): string {
  const schemaTag = /<(?:\w+:)?schema\b[^>]*>/.exec(xsd)?.[0] ?? '';
  return /\btargetNamespace\s*=\s*["']([^"']*)["']/.exec(schemaTag)?.[1] ?? '';
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}
