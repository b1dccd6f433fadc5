/**
 * Coverage of a mapping against its target schema: the required elements and attributes the
 * mapping never fills. It walks the XSD content model along the compiled target tree — below
 * every element the mapping writes, every required child (and required attribute) must be
 * written too; a required choice needs one of its alternatives.
 */
import type { ComplexContent, ElementDecl, Particle } from '../xml/xsd-model.js';
import type { MappingDefinition } from './compile.js';
import { xsdModel } from './compile.js';
import type { TargetNode } from './model.js';

export interface CoverageGap {
  /** Target path in the mapping's prefixes, e.g. `xdomea:Kopf/xdomea:Empfaenger`. */
  readonly path: string;
  readonly kind: 'element' | 'attribute' | 'choice';
  /** Line of the mapping rule that writes the parent (0 for the root). */
  readonly line: number;
}

export interface CoverageReport {
  readonly schemaSet: string;
  readonly root: string;
  readonly gaps: readonly CoverageGap[];
}

export class CoverageUnavailableError extends Error {
  override readonly name = 'CoverageUnavailableError';
}

export function mappingCoverage(definition: MappingDefinition): CoverageReport {
  const { target, root } = definition;
  if (target.format !== 'xml' || target.schemaSet === undefined) {
    throw new CoverageUnavailableError('coverage needs an XML target with a schemaSet');
  }
  const model = xsdModel(target.schemaSet);
  const decl = model.element({ ns: root.step.ns, local: root.step.local });
  if (decl === undefined)
    throw new CoverageUnavailableError(`${root.step.name} is not a global element of ${target.schemaSet}`);
  const prefixes = new Map(Object.entries(target.namespaces).map(([prefix, uri]) => [uri, prefix]));
  const name = (ns: string, local: string): string => {
    const prefix = prefixes.get(ns);
    return ns === '' ? local : prefix === undefined ? `{${ns}}${local}` : `${prefix}:${local}`;
  };
  const gaps: CoverageGap[] = [];
  checkElement(decl, [root], '', gaps, name);
  return { schemaSet: target.schemaSet, root: root.step.name, gaps };
}

type Namer = (ns: string, local: string) => string;

/** What the mapping writes below a node: child element names and attribute names. */
interface Written {
  readonly children: Map<string, TargetNode[]>;
  readonly attributes: Set<string>;
  readonly text: boolean;
}

function written(nodes: readonly TargetNode[]): Written {
  const children = new Map<string, TargetNode[]>();
  const attributes = new Set<string>();
  let text = false;
  for (const node of nodes) {
    for (const child of node.children) {
      const key = `{${child.step.ns}}${child.step.local}`;
      children.set(key, [...(children.get(key) ?? []), child]);
    }
    for (const attribute of node.attributes) attributes.add(`{${attribute.step.ns}}${attribute.step.local}`);
    for (const setter of node.setters) {
      if (setter.code === undefined) {
        text = true;
        continue;
      }
      // A code value writes <code> (and <name>) and the list attributes it knows.
      children.set('{}code', children.get('{}code') ?? []);
      if (setter.codeName) children.set('{}name', children.get('{}name') ?? []);
      if (setter.code.listURI !== undefined) attributes.add('{}listURI');
      if (setter.code.listVersionID !== undefined) attributes.add('{}listVersionID');
    }
  }
  return { children, attributes, text };
}

function checkElement(
  decl: ElementDecl,
  nodes: readonly TargetNode[],
  path: string,
  gaps: CoverageGap[],
  name: Namer,
): void {
  const content = decl.type();
  if (content === undefined) return;
  const what = written(nodes);
  const line = nodes[0]?.line ?? 0;
  for (const attribute of content.attributes) {
    if (attribute.required && !what.attributes.has(`{${attribute.name.ns}}${attribute.name.local}`)) {
      gaps.push({
        path: join(path, `@${name(attribute.name.ns, attribute.name.local)}`),
        kind: 'attribute',
        line,
      });
    }
  }
  checkParticles(content, what, path, gaps, name, line, true);
}

function checkParticles(
  content: ComplexContent,
  what: Written,
  path: string,
  gaps: CoverageGap[],
  name: Namer,
  line: number,
  required: boolean,
): void {
  for (const particle of content.particles) checkParticle(particle, what, path, gaps, name, line, required);
}

function checkParticle(
  particle: Particle,
  what: Written,
  path: string,
  gaps: CoverageGap[],
  name: Namer,
  line: number,
  required: boolean,
): void {
  if (particle.kind === 'any') return;
  if (particle.kind === 'element') {
    const nodes = what.children.get(`{${particle.name.ns}}${particle.name.local}`);
    const childPath = join(path, name(particle.name.ns, particle.name.local));
    if (nodes === undefined) {
      if (required && particle.min > 0) gaps.push({ path: childPath, kind: 'element', line });
      return;
    }
    checkElement(particle, nodes, childPath, gaps, name);
    return;
  }
  const groupRequired = required && particle.min > 0;
  if (particle.kind === 'choice') {
    const filled = particle.particles.filter((p) => touches(p, what));
    if (filled.length === 0) {
      if (groupRequired) {
        const options = particle.particles.map((p) => describeParticle(p, name)).join(' | ');
        gaps.push({ path: join(path, `(${options})`), kind: 'choice', line });
      }
      return;
    }
    for (const alternative of filled) checkParticle(alternative, what, path, gaps, name, line, true);
    return;
  }
  // An optional sequence only matters once the mapping writes something in it.
  const active = groupRequired || particle.particles.some((p) => touches(p, what));
  for (const inner of particle.particles) checkParticle(inner, what, path, gaps, name, line, active);
}

function touches(particle: Particle, what: Written): boolean {
  if (particle.kind === 'any') return false;
  if (particle.kind === 'element') return what.children.has(`{${particle.name.ns}}${particle.name.local}`);
  return particle.particles.some((p) => touches(p, what));
}

function describeParticle(particle: Particle, name: Namer): string {
  if (particle.kind === 'any') return '*';
  if (particle.kind === 'element') return name(particle.name.ns, particle.name.local);
  return particle.particles
    .map((p) => describeParticle(p, name))
    .join(particle.kind === 'choice' ? ' | ' : ', ');
}

function join(path: string, step: string): string {
  return path === '' ? step : `${path}/${step}`;
}
