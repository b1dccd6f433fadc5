/**
 * Namespace-aware XML reading: saxes with `xmlns: true` builds a small tree in which every
 * element and attribute carries its namespace URI, so a mapping matches elements by URI
 * whatever prefix the sender chose. Text stays text — `059130000000` keeps its leading zero.
 */
import { SaxesParser } from 'saxes';
import type { SaxesTagNS } from 'saxes';
import { AmtError } from '../errors.js';
import { DEFAULT_XML_LIMITS, decodeXml } from './guard.js';
import type { XmlLimits } from './guard.js';
import type { XmlAttribute, XmlElement, XmlNode } from './tree.js';

const XMLNS_URI = 'http://www.w3.org/2000/xmlns/';

export interface ReadXmlOptions {
  readonly limits?: Partial<XmlLimits>;
  /** Name used in error messages (a file name or a message id). */
  readonly source?: string;
}

interface OpenElement {
  readonly element: XmlElement;
  readonly children: XmlNode[];
}

/**
 * Parses a document into a tree after the guard checks. Throws AmtError `AMT_XML_TOO_LARGE`,
 * `AMT_XML_ENCODING_INVALID`, `AMT_XML_DOCTYPE_FORBIDDEN`, `AMT_XML_TOO_DEEP` or
 * `AMT_XML_MALFORMED` (with the line and column of the problem).
 */
export function readXml(input: string | Uint8Array, options: ReadXmlOptions = {}): XmlElement {
  const limits: XmlLimits = { ...DEFAULT_XML_LIMITS, ...options.limits };
  const text = decodeXml(input, limits);
  const parser = new SaxesParser({ xmlns: true, position: true });
  const stack: OpenElement[] = [];
  let root: XmlElement | undefined;
  const source = options.source ?? 'document';

  const malformed = (message: string): AmtError =>
    new AmtError('AMT_XML_MALFORMED', `${source}:${parser.line}:${parser.column + 1}: ${message}`, {
      problems: [{ path: `line ${parser.line}, column ${parser.column + 1}`, message }],
    });

  parser.on('error', (err) => {
    throw malformed(stripSaxesPosition(err.message));
  });
  parser.on('doctype', () => {
    throw new AmtError('AMT_XML_DOCTYPE_FORBIDDEN', `${source}:${parser.line}: DOCTYPE is not accepted`, {
      problems: [
        { path: `line ${parser.line}`, message: 'DOCTYPE and ENTITY declarations are not accepted' },
      ],
    });
  });
  parser.on('opentagstart', () => {
    if (stack.length + 1 > limits.maxDepth) {
      throw new AmtError(
        'AMT_XML_TOO_DEEP',
        `${source}:${parser.line}: nesting deeper than ${limits.maxDepth}`,
        {
          problems: [{ path: `line ${parser.line}`, message: `element nesting exceeds ${limits.maxDepth}` }],
        },
      );
    }
  });
  parser.on('opentag', (tag: SaxesTagNS) => {
    const attributes: XmlAttribute[] = [];
    const declarations: Record<string, string> = {};
    for (const attribute of Object.values(tag.attributes)) {
      if (attribute.uri === XMLNS_URI) {
        declarations[attribute.prefix === '' ? '' : attribute.local] = attribute.value;
      } else {
        attributes.push({
          name: attribute.name,
          ns: attribute.uri,
          local: attribute.local,
          value: attribute.value,
        });
      }
    }
    const children: XmlNode[] = [];
    const element: XmlElement = {
      kind: 'element',
      name: tag.name,
      ns: tag.uri,
      local: tag.local,
      attributes,
      declarations,
      children,
      line: parser.line,
    };
    const parent = stack[stack.length - 1];
    if (parent === undefined) root = element;
    else parent.children.push(element);
    stack.push({ element, children });
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  const appendText = (value: string): void => {
    const parent = stack[stack.length - 1];
    if (parent === undefined) return; // whitespace around the root element
    const last = parent.children[parent.children.length - 1];
    if (last !== undefined && last.kind === 'text') {
      parent.children[parent.children.length - 1] = { kind: 'text', value: last.value + value };
    } else {
      parent.children.push({ kind: 'text', value });
    }
  };
  parser.on('text', appendText);
  parser.on('cdata', appendText);

  parser.write(text).close();
  if (root === undefined) throw malformed('no root element');
  return root;
}

function stripSaxesPosition(message: string): string {
  // saxes prefixes "file:line:column: "; the caller adds its own position.
  return message.replace(/^(?:[^:]*:)?\d+:\d+: /, '');
}
