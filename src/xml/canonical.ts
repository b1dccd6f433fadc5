/**
 * A canonical, line-per-node text form of a tree for comparing documents: names by namespace
 * URI (prefixes ignored), attributes sorted, namespace declarations dropped, whitespace-only
 * text between elements dropped. Two documents are "the same XML" when these forms are equal,
 * and a line diff of the forms reads well.
 */
import { clarkName } from './tree.js';
import type { XmlElement } from './tree.js';

/**
 * `prefixes` (namespace URI → prefix) only changes how names are shown — two documents are
 * compared by forms made with the same map, so the sender's own prefixes still do not matter.
 */
export function canonicalForm(root: XmlElement, prefixes: Readonly<Record<string, string>> = {}): string {
  const lines: string[] = [];
  const name = (ns: string, local: string): string => {
    const prefix = prefixes[ns];
    return prefix === undefined ? clarkName(ns, local) : `${prefix}:${local}`;
  };
  write(root, 0, lines, name);
  return lines.join('\n');
}

type Namer = (ns: string, local: string) => string;

function write(element: XmlElement, depth: number, lines: string[], name: Namer): void {
  const indent = '  '.repeat(depth);
  const attributes = element.attributes
    .map((a) => `${name(a.ns, a.local)}=${JSON.stringify(a.value)}`)
    .sort()
    .join(' ');
  const hasElements = element.children.some((c) => c.kind === 'element');
  const text = element.children.map((c) => (c.kind === 'text' ? c.value : '')).join('');
  const head = `${indent}${name(element.ns, element.local)}${attributes === '' ? '' : ` [${attributes}]`}`;
  if (!hasElements) {
    lines.push(text === '' ? head : `${head} = ${JSON.stringify(text)}`);
    return;
  }
  lines.push(head);
  for (const child of element.children) {
    if (child.kind === 'element') write(child, depth + 1, lines, name);
    else if (child.value.trim() !== '') lines.push(`${indent}  #text ${JSON.stringify(child.value)}`);
  }
}
