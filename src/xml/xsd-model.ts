/**
 * A reading of the XSD structure of a schema set — elements, their sequences and choices,
 * occurrences and attributes — enough to say which elements a message must contain. libxml2
 * validates; this model answers "what is required here?" for `amtsbote mapping coverage`.
 * Supported: global and local elements, element refs, named and anonymous complex types,
 * complexContent extension/restriction, simpleContent, groups, attribute groups.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { readXml } from './read.js';
import { attributeOf, childElements } from './tree.js';
import type { XmlElement } from './tree.js';
import { isInsideSchemaRoot } from './schema-catalog.js';
import type { SchemaSet } from './schema-catalog.js';

const XS = 'http://www.w3.org/2001/XMLSchema';

export interface QName {
  readonly ns: string;
  readonly local: string;
}

export interface ElementDecl {
  readonly kind: 'element';
  readonly name: QName;
  readonly min: number;
  readonly max: number;
  /** Resolves the element's type lazily (types may be recursive). */
  readonly type: () => ComplexContent | undefined;
}

export interface GroupParticle {
  readonly kind: 'sequence' | 'choice' | 'all';
  readonly min: number;
  readonly max: number;
  readonly particles: readonly Particle[];
}

export interface AnyParticle {
  readonly kind: 'any';
  readonly min: number;
}

export type Particle = ElementDecl | GroupParticle | AnyParticle;

export interface AttributeDecl {
  readonly name: QName;
  readonly required: boolean;
}

/** The content of a complex type (undefined for simple types: text only). */
export interface ComplexContent {
  readonly particles: readonly Particle[];
  readonly attributes: readonly AttributeDecl[];
}

interface SchemaDoc {
  readonly targetNamespace: string;
  readonly elementQualified: boolean;
  readonly root: XmlElement;
}

interface Located {
  readonly node: XmlElement;
  readonly doc: SchemaDoc;
  /** In-scope namespace bindings at the node. */
  readonly scope: Record<string, string>;
}

export class XsdModel {
  private readonly globals = {
    element: new Map<string, Located>(),
    complexType: new Map<string, Located>(),
    group: new Map<string, Located>(),
    attributeGroup: new Map<string, Located>(),
    simpleType: new Map<string, Located>(),
  };
  private readonly typeCache = new Map<string, ComplexContent | undefined>();

  constructor(files: readonly string[]) {
    const seen = new Set<string>();
    for (const file of files) this.load(file, seen);
  }

  static forSchemaSet(set: SchemaSet): XsdModel {
    return new XsdModel(set.entries);
  }

  /** A global element declaration, or undefined. */
  element(name: QName): ElementDecl | undefined {
    const located = this.globals.element.get(key(name));
    return located === undefined ? undefined : this.elementDecl(located, 1, 1, true);
  }

  private load(file: string, seen: Set<string>, includedInto?: string): void {
    const absolute = path.resolve(file);
    const id = `${absolute}|${includedInto ?? ''}`;
    if (seen.has(id)) return;
    seen.add(id);
    if (!isInsideSchemaRoot(absolute)) return;
    const root = readXml(readFileSync(absolute), { source: absolute });
    // A chameleon include takes the including schema's namespace.
    const targetNamespace = attributeOf(root, '', 'targetNamespace') ?? includedInto ?? '';
    const doc: SchemaDoc = {
      targetNamespace,
      elementQualified: attributeOf(root, '', 'elementFormDefault') === 'qualified',
      root,
    };
    const scope = { ...root.declarations };
    for (const child of childElements(root)) {
      if (child.ns !== XS) continue;
      const location = attributeOf(child, '', 'schemaLocation');
      if ((child.local === 'include' || child.local === 'import' || child.local === 'redefine') && location) {
        const target = path.resolve(path.dirname(absolute), location);
        this.load(target, seen, child.local === 'import' ? undefined : targetNamespace);
        continue;
      }
      const name = attributeOf(child, '', 'name');
      const table = (this.globals as Record<string, Map<string, Located> | undefined>)[child.local];
      if (name !== undefined && table !== undefined) {
        table.set(key({ ns: targetNamespace, local: name }), {
          node: child,
          doc,
          scope: { ...scope, ...child.declarations },
        });
      }
    }
  }

  private elementDecl(at: Located, min: number, max: number, global: boolean): ElementDecl {
    const ref = attributeOf(at.node, '', 'ref');
    if (ref !== undefined) {
      const target = this.globals.element.get(key(resolve(ref, at.scope)));
      if (target === undefined) {
        const name = resolve(ref, at.scope);
        return { kind: 'element', name, min, max, type: () => undefined };
      }
      return this.elementDecl(target, min, max, true);
    }
    const local = attributeOf(at.node, '', 'name') ?? '';
    const form = attributeOf(at.node, '', 'form');
    const qualified = global || form === 'qualified' || (form === undefined && at.doc.elementQualified);
    const name = { ns: qualified ? at.doc.targetNamespace : '', local };
    const typeName = attributeOf(at.node, '', 'type');
    const inline = childElements(at.node).find((c) => c.ns === XS && c.local === 'complexType');
    let resolved: { value: ComplexContent | undefined } | undefined;
    const type = (): ComplexContent | undefined => {
      if (resolved === undefined) {
        resolved = { value: undefined }; // breaks cycles while resolving
        if (inline !== undefined) resolved.value = this.complexType(withNode(at, inline));
        else if (typeName !== undefined) resolved.value = this.namedType(resolve(typeName, at.scope));
      }
      return resolved.value;
    };
    return { kind: 'element', name, min, max, type };
  }

  private namedType(name: QName): ComplexContent | undefined {
    const id = key(name);
    if (this.typeCache.has(id)) return this.typeCache.get(id);
    this.typeCache.set(id, undefined);
    const located = this.globals.complexType.get(id);
    const content = located === undefined ? undefined : this.complexType(located);
    this.typeCache.set(id, content);
    return content;
  }

  private complexType(at: Located): ComplexContent {
    const particles: Particle[] = [];
    const attributes: AttributeDecl[] = [];
    for (const child of xsChildren(at.node)) {
      const here = withNode(at, child);
      if (child.local === 'complexContent' || child.local === 'simpleContent') {
        const derivation = xsChildren(child).find(
          (c) => c.local === 'extension' || c.local === 'restriction',
        );
        if (derivation === undefined) continue;
        const base = attributeOf(derivation, '', 'base');
        const baseContent = base === undefined ? undefined : this.namedType(resolve(base, here.scope));
        if (derivation.local === 'extension' && baseContent !== undefined) {
          particles.push(...baseContent.particles);
          attributes.push(...baseContent.attributes);
        } else if (
          derivation.local === 'restriction' &&
          baseContent !== undefined &&
          child.local === 'simpleContent'
        ) {
          attributes.push(...baseContent.attributes);
        }
        const own = this.complexType(withNode(here, derivation));
        particles.push(...own.particles);
        mergeAttributes(attributes, own.attributes);
      } else if (isGroupKind(child.local) || child.local === 'group') {
        const particle = this.particle(here);
        if (particle !== undefined) particles.push(particle);
      } else if (child.local === 'attribute' || child.local === 'attributeGroup') {
        mergeAttributes(attributes, this.attributes(here));
      }
    }
    return { particles, attributes };
  }

  private particle(at: Located): Particle | undefined {
    const node = at.node;
    const min = Number(attributeOf(node, '', 'minOccurs') ?? '1');
    const maxText = attributeOf(node, '', 'maxOccurs') ?? '1';
    const max = maxText === 'unbounded' ? Infinity : Number(maxText);
    switch (node.local) {
      case 'element':
        return this.elementDecl(at, min, max, false);
      case 'any':
        return { kind: 'any', min };
      case 'group': {
        const ref = attributeOf(node, '', 'ref');
        const target = ref === undefined ? undefined : this.globals.group.get(key(resolve(ref, at.scope)));
        if (target === undefined) return undefined;
        const inner = xsChildren(target.node).find((c) => isGroupKind(c.local));
        const group = inner === undefined ? undefined : this.particle(withNode(target, inner));
        return group === undefined || group.kind === 'any' || group.kind === 'element'
          ? group
          : { ...group, min, max };
      }
      case 'sequence':
      case 'choice':
      case 'all': {
        const particles: Particle[] = [];
        for (const child of xsChildren(node)) {
          const particle = this.particle(withNode(at, child));
          if (particle !== undefined) particles.push(particle);
        }
        return { kind: node.local, min, max, particles };
      }
      default:
        return undefined;
    }
  }

  private attributes(at: Located): AttributeDecl[] {
    const node = at.node;
    if (node.local === 'attributeGroup') {
      const ref = attributeOf(node, '', 'ref');
      const target =
        ref === undefined ? undefined : this.globals.attributeGroup.get(key(resolve(ref, at.scope)));
      if (target === undefined) return [];
      return xsChildren(target.node).flatMap((c) => this.attributes(withNode(target, c)));
    }
    if (node.local !== 'attribute') return [];
    const use = attributeOf(node, '', 'use');
    const ref = attributeOf(node, '', 'ref');
    const name =
      ref !== undefined ? resolve(ref, at.scope) : { ns: '', local: attributeOf(node, '', 'name') ?? '' };
    return [{ name, required: use === 'required' }];
  }
}

function mergeAttributes(into: AttributeDecl[], from: readonly AttributeDecl[]): void {
  for (const attribute of from) {
    const index = into.findIndex((a) => key(a.name) === key(attribute.name));
    if (index >= 0) into[index] = attribute;
    else into.push(attribute);
  }
}

function isGroupKind(local: string): local is 'sequence' | 'choice' | 'all' {
  return local === 'sequence' || local === 'choice' || local === 'all';
}

function xsChildren(node: XmlElement): XmlElement[] {
  return childElements(node).filter((c) => c.ns === XS && c.local !== 'annotation');
}

function withNode(at: Located, node: XmlElement): Located {
  const declared = Object.keys(node.declarations).length > 0;
  return { node, doc: at.doc, scope: declared ? { ...at.scope, ...node.declarations } : at.scope };
}

function resolve(qname: string, scope: Record<string, string>): QName {
  const colon = qname.indexOf(':');
  const prefix = colon < 0 ? '' : qname.slice(0, colon);
  return { ns: scope[prefix] ?? '', local: colon < 0 ? qname : qname.slice(colon + 1) };
}

function key(name: QName): string {
  return `{${name.ns}}${name.local}`;
}

/** An element that may appear as a child, with its position in the content model's order. */
export interface ChildSlot {
  readonly decl: ElementDecl;
  /** Children must appear in ascending position; alternatives of a choice share one. */
  readonly position: number;
  /** Inside an `xs:all` or a repeating choice: any order is allowed. */
  readonly anyOrder: boolean;
}

export interface ChildSlots {
  readonly slots: ReadonlyMap<string, ChildSlot>;
  /** The content model has an `xs:any` wildcard: any child may appear. */
  readonly wildcard: boolean;
}

/** The children a complex content allows, keyed by `{ns}local`. */
export function childSlots(content: ComplexContent): ChildSlots {
  const slots = new Map<string, ChildSlot>();
  let wildcard = false;
  let position = 0;
  const visit = (particle: Particle, anyOrder: boolean, inChoice: boolean): void => {
    if (particle.kind === 'any') {
      wildcard = true;
      return;
    }
    if (particle.kind === 'element') {
      const id = `{${particle.name.ns}}${particle.name.local}`;
      if (!slots.has(id)) slots.set(id, { decl: particle, position, anyOrder });
      if (!inChoice) position++;
      return;
    }
    const unordered = anyOrder || particle.kind === 'all' || (particle.kind === 'choice' && particle.max > 1);
    if (particle.kind === 'choice') {
      for (const inner of particle.particles) visit(inner, unordered, true);
      if (!inChoice) position++;
    } else {
      for (const inner of particle.particles) visit(inner, unordered, false);
    }
  };
  for (const particle of content.particles) visit(particle, false, false);
  return { slots, wildcard };
}
