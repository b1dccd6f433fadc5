/**
 * A canonical, line-per-node text form of a tree for comparing documents: names by namespace
 * URI (prefixes ignored), attributes sorted, namespace declarations dropped, whitespace-only
 * text between elements dropped. Two documents are "the same XML" when these forms are equal,
 * and a line diff of the forms reads well.
 */
import { clarkName } from './tree.js';
import type { XmlElement } from './tree.js';

export function canonicalForm(root: XmlElement): string {
  const lines: string[] = [];
  write(root, 0, lines);
  return lines.join('\n');
}

function write(element: XmlElement, depth: number, lines: string[]): void {
  const indent = '  '.repeat(depth);
  const attributes = element.attributes
    .map((a) => `${clarkName(a.ns, a.local)}=${JSON.stringify(a.value)}`)
    .sort()
    .join(' ');
  const hasElements = element.children.some((c) => c.kind === 'element');
  const text = element.children.map((c) => (c.kind === 'text' ? c.value : '')).join('');
  const head = `${indent}${clarkName(element.ns, element.local)}${attributes === '' ? '' : ` [${attributes}]`}`;
  if (!hasElements) {
    lines.push(text === '' ? head : `${head} = ${JSON.stringify(text)}`);
    return;
  }
  lines.push(head);
  for (const child of element.children) {
    if (child.kind === 'element') write(child, depth + 1, lines);
    else if (child.value.trim() !== '') lines.push(`${indent}  #text ${JSON.stringify(child.value)}`);
  }
}
