/**
 * A small namespace-aware element tree built with saxes, for adapters reading protocol envelopes
 * (SOAP envelopes and faults, XTA answers) where a message-shaped tree is all they need.
 * Names are resolved by namespace URI (a sender may use any prefix). A DOCTYPE is refused before
 * anything else happens, so no entity can be declared, let alone expanded.
 */
import { SaxesParser } from 'saxes';

export interface XmlElement {
  readonly uri: string;
  readonly local: string;
  /** Attributes by local name (attributes in this work are unqualified or unambiguous). */
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  /** Text directly inside this element (not its descendants), untrimmed. */
  text: string;
  /** Namespace bindings in scope at this element, by prefix (`''` = default namespace). */
  readonly namespaces: Readonly<Record<string, string>>;
}

export class XmlSyntaxError extends Error {
  override readonly name = 'XmlSyntaxError';
}

/** Parses a whole document; throws `XmlSyntaxError` on anything not well-formed or on a DOCTYPE. */
export function parseXml(xml: string): XmlElement {
  const parser = new SaxesParser({ xmlns: true });
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let failure: Error | undefined;
  parser.on('doctype', () => {
    failure ??= new XmlSyntaxError('a DOCTYPE is not allowed');
  });
  parser.on('error', (err) => {
    failure ??= new XmlSyntaxError(err.message);
  });
  parser.on('opentag', (tag) => {
    const attributes: Record<string, string> = {};
    for (const attr of Object.values(tag.attributes)) {
      if (attr.prefix === 'xmlns' || attr.name === 'xmlns') continue;
      attributes[attr.local] = attr.value;
    }
    const parent = stack.at(-1);
    const element: XmlElement = {
      uri: tag.uri,
      local: tag.local,
      attributes,
      children: [],
      text: '',
      namespaces: { ...parent?.namespaces, ...tag.ns },
    };
    if (parent) parent.children.push(element);
    else root = element;
    stack.push(element);
  });
  parser.on('text', (text) => {
    const current = stack.at(-1);
    if (current) current.text += text;
  });
  parser.on('cdata', (text) => {
    const current = stack.at(-1);
    if (current) current.text += text;
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  try {
    parser.write(xml).close();
  } catch (err) {
    failure ??= new XmlSyntaxError((err as Error).message);
  }
  if (failure) throw failure;
  if (!root) throw new XmlSyntaxError('no root element');
  return root;
}

/** Resolves a QName-valued text (`soap:Server`) against the bindings in scope at `element`. */
export function resolveQName(
  element: XmlElement,
  qname: string,
): { uri: string | undefined; prefix: string; local: string } {
  const colon = qname.indexOf(':');
  const prefix = colon < 0 ? '' : qname.slice(0, colon);
  const local = colon < 0 ? qname : qname.slice(colon + 1);
  return { uri: element.namespaces[prefix], prefix, local };
}

export function child(element: XmlElement, uri: string | undefined, local: string): XmlElement | undefined {
  return element.children.find((c) => c.local === local && (uri === undefined || c.uri === uri));
}

export function childrenNamed(element: XmlElement, uri: string | undefined, local: string): XmlElement[] {
  return element.children.filter((c) => c.local === local && (uri === undefined || c.uri === uri));
}

export function textOf(element: XmlElement | undefined): string | undefined {
  return element === undefined ? undefined : element.text.trim();
}
