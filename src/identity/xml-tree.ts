/**
 * A small namespace-aware element tree for reading SAML and metadata documents. SAML senders may
 * use any prefix, so everything here is addressed by namespace URI and local name. DTDs are never
 * processed: a DOCTYPE is refused before the parser sees the text (XXE, entity expansion).
 */
import { SaxesParser } from 'saxes';

export const NS = {
  samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
  saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
  md: 'urn:oasis:names:tc:SAML:2.0:metadata',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
  xenc: 'http://www.w3.org/2001/04/xmlenc#',
  xenc11: 'http://www.w3.org/2009/xmlenc11#',
} as const;

export interface XmlElement {
  readonly ns: string;
  readonly local: string;
  /** The name as written (`saml2:Assertion`), kept for serialisation. */
  readonly qname: string;
  /** Attributes without a namespace by local name; namespaced ones as `{uri}local`. */
  readonly attrs: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  /** Text and child elements in document order; comments are left out, as canonicalisation does. */
  readonly content: readonly (XmlElement | string)[];
  /** The element's own text nodes joined. */
  readonly text: string;
  /** Every namespace binding in scope at this element (prefix '' is the default namespace). */
  readonly inScope: Readonly<Record<string, string>>;
}

/** Thrown for anything that is not a well-formed, DTD-free XML document. */
export class XmlReadError extends Error {
  constructor(
    message: string,
    readonly doctype = false,
  ) {
    super(message);
    this.name = 'XmlReadError';
  }
}

interface MutableElement extends XmlElement {
  children: MutableElement[];
  content: (MutableElement | string)[];
  text: string;
}

/** Drops a leading byte order mark, which files saved by some editors carry. */
export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

export function hasDoctype(xml: string): boolean {
  return /<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml);
}

/** SAML and metadata nest about ten deep; the tree walkers recurse, so depth is bounded. */
const MAX_DEPTH = 64;

export function parseXml(xml: string): XmlElement {
  if (hasDoctype(xml)) throw new XmlReadError('a DOCTYPE or entity declaration is not allowed', true);
  const parser = new SaxesParser({ xmlns: true, position: false });
  const stack: MutableElement[] = [];
  let root: MutableElement | undefined;
  let failure: Error | undefined;

  parser.on('error', (err) => {
    failure ??= err;
  });
  parser.on('doctype', () => {
    failure ??= new XmlReadError('a DOCTYPE is not allowed', true);
  });
  parser.on('opentag', (tag) => {
    if (stack.length >= MAX_DEPTH)
      failure ??= new XmlReadError(`elements are nested deeper than ${MAX_DEPTH}`);
    const parent = stack[stack.length - 1];
    const declared = tag.ns ?? {};
    const inScope =
      Object.keys(declared).length === 0 && parent ? parent.inScope : { ...parent?.inScope, ...declared };
    const attrs = new Map<string, string>();
    for (const attr of Object.values(tag.attributes)) {
      if (attr.prefix === 'xmlns' || attr.name === 'xmlns') continue;
      attrs.set(attr.uri ? `{${attr.uri}}${attr.local}` : attr.local, attr.value);
    }
    const element: MutableElement = {
      ns: tag.uri ?? '',
      local: tag.local ?? tag.name,
      qname: tag.name,
      attrs,
      children: [],
      content: [],
      text: '',
      inScope,
    };
    if (parent) {
      parent.children.push(element);
      parent.content.push(element);
    } else if (root) failure ??= new XmlReadError('more than one root element');
    else root = element;
    stack.push(element);
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  const addText = (text: string): void => {
    const current = stack[stack.length - 1];
    if (!current) return;
    current.text += text;
    current.content.push(text);
  };
  parser.on('text', addText);
  parser.on('cdata', addText);

  try {
    parser.write(xml).close();
  } catch (err) {
    failure ??= err instanceof Error ? err : new Error(String(err));
  }
  if (failure) {
    throw failure instanceof XmlReadError ? failure : new XmlReadError(failure.message);
  }
  if (!root) throw new XmlReadError('no root element');
  return root;
}

export function is(element: XmlElement | undefined, ns: string, local: string): boolean {
  return element !== undefined && element.ns === ns && element.local === local;
}

export function childrenNamed(element: XmlElement, ns: string, local: string): XmlElement[] {
  return element.children.filter((c) => c.ns === ns && c.local === local);
}

/** The only child of that name; undefined when there is none. Several are a structural error. */
export function childNamed(element: XmlElement, ns: string, local: string): XmlElement | undefined {
  const found = childrenNamed(element, ns, local);
  if (found.length > 1) throw new XmlReadError(`more than one ${local} in ${element.local}`);
  return found[0];
}

export function descendantsNamed(element: XmlElement, ns: string, local: string): XmlElement[] {
  const found: XmlElement[] = [];
  const walk = (e: XmlElement): void => {
    for (const child of e.children) {
      if (child.ns === ns && child.local === local) found.push(child);
      walk(child);
    }
  };
  walk(element);
  return found;
}

export function textOf(element: XmlElement | undefined): string | undefined {
  if (!element) return undefined;
  const text = element.text.trim();
  return text === '' ? undefined : text;
}

const escapeText = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
const escapeAttr = (s: string): string =>
  escapeText(s)
    .replace(/"/g, '&quot;')
    .replace(/\r/g, '&#13;')
    .replace(/\n/g, '&#10;')
    .replace(/\t/g, '&#9;');

/**
 * Writes an element back as a standalone XML string, declaring every namespace in scope on its
 * root so the fragment means the same on its own (its exclusive canonical form is unchanged).
 */
export function serialize(element: XmlElement): string {
  const write = (e: XmlElement, declare: Readonly<Record<string, string>>): string => {
    let out = `<${e.qname}`;
    for (const [prefix, uri] of Object.entries(declare)) {
      out += prefix === '' ? ` xmlns="${escapeAttr(uri)}"` : ` xmlns:${prefix}="${escapeAttr(uri)}"`;
    }
    for (const [key, value] of e.attrs) {
      out += ` ${attributeQname(e, key)}="${escapeAttr(value)}"`;
    }
    out += '>';
    for (const node of e.content) {
      out += typeof node === 'string' ? escapeText(node) : write(node, newBindings(e.inScope, node.inScope));
    }
    return `${out}</${e.qname}>`;
  };
  return write(element, element.inScope);
}

function newBindings(
  parent: Readonly<Record<string, string>>,
  child: Readonly<Record<string, string>>,
): Record<string, string> {
  const added: Record<string, string> = {};
  for (const [prefix, uri] of Object.entries(child)) if (parent[prefix] !== uri) added[prefix] = uri;
  return added;
}

function attributeQname(element: XmlElement, key: string): string {
  const match = /^\{(.*)\}(.*)$/.exec(key);
  if (!match) return key;
  const [, uri, local] = match;
  if (uri === 'http://www.w3.org/XML/1998/namespace') return `xml:${local}`;
  const prefix = Object.entries(element.inScope).find(([p, u]) => p !== '' && u === uri)?.[0];
  if (prefix === undefined) throw new XmlReadError(`no prefix for attribute namespace ${uri}`);
  return `${prefix}:${local}`;
}
