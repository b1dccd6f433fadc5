/**
 * The small XML tree the gateway reads into and writes from. Elements are identified by
 * namespace URI and local name — the prefix is only how one sender spelled the namespace.
 */

export interface XmlAttribute {
  /** Qualified name as written, e.g. `xsi:schemaLocation` or `listURI`. */
  readonly name: string;
  /** Namespace URI; `''` for an unprefixed attribute. */
  readonly ns: string;
  readonly local: string;
  readonly value: string;
}

export interface XmlText {
  readonly kind: 'text';
  readonly value: string;
}

export interface XmlElement {
  readonly kind: 'element';
  /** Qualified name as written (`xdomea:Kopf`, `code`). */
  readonly name: string;
  /** Namespace URI; `''` when the element is in no namespace. */
  readonly ns: string;
  readonly local: string;
  readonly attributes: XmlAttribute[];
  /** Namespace declarations made on this element: prefix (`''` = default) → URI. */
  readonly declarations: Record<string, string>;
  readonly children: XmlNode[];
  /** 1-based line of the start tag in the source document; 0 when built in memory. */
  readonly line: number;
}

export type XmlNode = XmlElement | XmlText;

export function prefixOf(qname: string): string {
  const colon = qname.indexOf(':');
  return colon < 0 ? '' : qname.slice(0, colon);
}

export function localOf(qname: string): string {
  const colon = qname.indexOf(':');
  return colon < 0 ? qname : qname.slice(colon + 1);
}

/** The concatenated text content of an element (all descendant text, document order). */
export function textOf(element: XmlElement): string {
  let out = '';
  for (const child of element.children) {
    out += child.kind === 'text' ? child.value : textOf(child);
  }
  return out;
}

export function childElements(element: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (const child of element.children) if (child.kind === 'element') out.push(child);
  return out;
}

export function findChild(element: XmlElement, ns: string, local: string): XmlElement | undefined {
  for (const child of element.children) {
    if (child.kind === 'element' && child.local === local && child.ns === ns) return child;
  }
  return undefined;
}

export function findChildren(element: XmlElement, ns: string, local: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const child of element.children) {
    if (child.kind === 'element' && child.local === local && child.ns === ns) out.push(child);
  }
  return out;
}

export function attributeOf(element: XmlElement, ns: string, local: string): string | undefined {
  for (const attribute of element.attributes) {
    if (attribute.local === local && attribute.ns === ns) return attribute.value;
  }
  return undefined;
}

/** `{namespace}local` — the prefix-free name used in messages and canonical forms. */
export function clarkName(ns: string, local: string): string {
  return ns === '' ? local : `{${ns}}${local}`;
}
