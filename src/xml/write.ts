/**
 * XML writing. The tree already carries qualified names and the namespace declarations the
 * writer needs; element order is the order of the children, which is how a mapping puts
 * elements into the order the XSD sequence demands.
 *
 * Two writers produce the same XML: `writeXml` serialises the tree directly, and
 * `writeXmlWithBuilder` goes through fast-xml-parser's XMLBuilder. The direct one is the
 * default because the builder (path matching, per-entity regex passes) costs ~200 µs on a
 * 6 KB message — as much as mapping and XSD validation together (see bench/mapping.ts).
 */
import { XMLBuilder } from 'fast-xml-parser';
import { AmtError } from '../errors.js';
import type { XmlElement, XmlNode } from './tree.js';

export interface WriteXmlOptions {
  /** Emit `<?xml version="1.0" encoding="UTF-8"?>` first (default true). */
  readonly declaration?: boolean;
  /** Indent with two spaces (default false: compact, as sent on the wire). */
  readonly indent?: boolean;
}

const TEXT = '#text';
const ATTRIBUTES = ':@';
const ATTRIBUTE_PREFIX = '@_';
const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';
// Characters XML 1.0 cannot carry at all, escaped or not, and unpaired surrogates.
const NOT_XML_CHAR =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const compactBuilder = new XMLBuilder(builderOptions(false));
const indentingBuilder = new XMLBuilder(builderOptions(true));

function builderOptions(format: boolean): ConstructorParameters<typeof XMLBuilder>[0] {
  return {
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: ATTRIBUTE_PREFIX,
    textNodeName: TEXT,
    suppressEmptyNode: true,
    processEntities: true,
    format,
    indentBy: '  ',
  };
}

/** Serialises a tree. Throws AmtError `AMT_XML_MALFORMED` for text XML cannot carry. */
export function writeXml(root: XmlElement, options: WriteXmlOptions = {}): string {
  const indent = options.indent === true;
  const trail: string[] = [];
  const body = element(root, indent ? '\n' : '', trail);
  if (options.declaration === false) return indent ? body.slice(1) : body;
  return DECLARATION + body;
}

/** `trail` holds the names down to the current element, joined only for an error message. */
function element(node: XmlElement, newline: string, trail: string[]): string {
  trail.push(node.name);
  let out = `${newline}<${node.name}`;
  for (const prefix in node.declarations) {
    out += ` ${prefix === '' ? 'xmlns' : `xmlns:${prefix}`}="${escapeAttribute(node.declarations[prefix]!, trail)}"`;
  }
  for (const attribute of node.attributes) {
    out += ` ${attribute.name}="${escapeAttribute(attribute.value, trail, attribute.name)}"`;
  }
  const children = node.children;
  if (children.length === 0) {
    trail.pop();
    return `${out}/>`;
  }
  out += '>';
  // Indentation only where it cannot change a value: between elements, never beside text.
  let mixed = false;
  for (const child of children) if (child.kind === 'text') mixed = true;
  const inner = newline === '' || mixed ? '' : `${newline}  `;
  for (const child of children) {
    out += child.kind === 'text' ? escapeText(child.value, trail) : element(child, inner, trail);
  }
  trail.pop();
  return `${out}${inner === '' ? '' : newline}</${node.name}>`;
}

const TEXT_SPECIAL = /[&<>\r]/;
const ATTRIBUTE_SPECIAL = /[&<>"\t\n\r]/;
const MAYBE_NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/;

function escapeText(value: string, trail: readonly string[]): string {
  if (MAYBE_NOT_XML.test(value)) checkChars(value, `/${trail.join('/')}`);
  if (!TEXT_SPECIAL.test(value)) return value;
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

function escapeAttribute(value: string, trail: readonly string[], name?: string): string {
  if (MAYBE_NOT_XML.test(value))
    checkChars(value, `/${trail.join('/')}${name === undefined ? '' : `/@${name}`}`);
  if (!ATTRIBUTE_SPECIAL.test(value)) return value;
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/\t/g, '&#9;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;');
}

/** The same XML through fast-xml-parser's XMLBuilder (slower; kept for comparison). */
export function writeXmlWithBuilder(root: XmlElement, options: WriteXmlOptions = {}): string {
  const builder = options.indent === true ? indentingBuilder : compactBuilder;
  const body = builder.build([toOrdered(root, root.name)]) as string;
  if (options.declaration === false) return body;
  return options.indent === true ? `${DECLARATION}\n${body.replace(/^\n/, '')}` : DECLARATION + body;
}

type Ordered = Record<string, unknown>;

function toOrdered(element: XmlElement, path: string): Ordered {
  const children: Ordered[] = [];
  for (const child of element.children) children.push(nodeToOrdered(child, path));
  const node: Ordered = { [element.name]: children };
  let attributes: Record<string, string> | undefined;
  for (const prefix of Object.keys(element.declarations)) {
    attributes ??= {};
    attributes[ATTRIBUTE_PREFIX + (prefix === '' ? 'xmlns' : `xmlns:${prefix}`)] =
      element.declarations[prefix]!;
  }
  for (const attribute of element.attributes) {
    checkChars(attribute.value, `${path}/@${attribute.name}`);
    attributes ??= {};
    attributes[ATTRIBUTE_PREFIX + attribute.name] = attribute.value;
  }
  if (attributes !== undefined) node[ATTRIBUTES] = attributes;
  return node;
}

function nodeToOrdered(node: XmlNode, path: string): Ordered {
  if (node.kind === 'element') return toOrdered(node, `${path}/${node.name}`);
  checkChars(node.value, path);
  return { [TEXT]: node.value };
}

function checkChars(value: string, path: string): void {
  const bad = NOT_XML_CHAR.exec(value);
  if (bad === null) return;
  const codePoint = `U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  throw new AmtError('AMT_XML_MALFORMED', `${path}: ${codePoint} cannot be written in XML 1.0`, {
    problems: [{ path, message: `character ${codePoint} is not allowed in XML 1.0` }],
  });
}
