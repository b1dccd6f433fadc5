/**
 * Checks of a compiled XML target against its schema set, at compile time: every element the
 * mapping writes must exist where it puts it, attributes must be declared, and sibling elements
 * must follow the XSD sequence — so a typo or a wrong order is an error with a line number, not
 * an invalid message at run time.
 */
import type { Problem } from '../errors.js';
import { XsdModel, childSlots } from '../xml/xsd-model.js';
import type { ComplexContent } from '../xml/xsd-model.js';
import { schemaSet } from '../xml/schema-catalog.js';
import type { TargetNode } from './model.js';
import { didYouMean } from './spec.js';

interface CheckContext {
  readonly file: string;
  readonly problems: Problem[];
}

const models = new Map<string, XsdModel>();

export function xsdModel(set: string): XsdModel {
  let model = models.get(set);
  if (model === undefined) {
    model = XsdModel.forSchemaSet(schemaSet(set));
    models.set(set, model);
  }
  return model;
}

/** Every target element must exist in the schema where the mapping puts it, in sequence order. */
export function checkAgainstSchema(root: TargetNode, set: string, ctx: CheckContext): void {
  const model = xsdModel(set);
  const decl = model.element({ ns: root.step.ns, local: root.step.local });
  if (decl === undefined) {
    ctx.problems.push({
      path: `${ctx.file}:1`,
      message: `target.root ${root.step.name} is not a global element of ${set}`,
    });
    return;
  }
  checkNode(root, decl.type(), ctx);
}

function checkNode(node: TargetNode, content: ComplexContent | undefined, ctx: CheckContext): void {
  if (content === undefined) {
    for (const child of node.children) {
      ctx.problems.push({
        path: `${ctx.file}:${child.line}`,
        message: `${child.path}: ${node.step.name} has simple content, no child elements`,
      });
    }
    return;
  }
  const { slots, wildcard } = childSlots(content);
  let lastPosition = -1;
  let lastName = '';
  for (const child of node.children) {
    const slot = slots.get(`{${child.step.ns}}${child.step.local}`);
    if (slot === undefined) {
      if (wildcard) continue;
      const expected = [...slots.values()].map((s) => s.decl.name.local);
      ctx.problems.push({
        path: `${ctx.file}:${child.line}`,
        message: `${child.path}: ${node.step.name || 'the root'} has no child ${child.step.name}${didYouMean(child.step.local, expected)} (allowed: ${expected.join(', ') || 'none'})`,
      });
      continue;
    }
    if (!slot.anyOrder && slot.position < lastPosition) {
      ctx.problems.push({
        path: `${ctx.file}:${child.line}`,
        message: `${child.path}: ${child.step.name} must come before ${lastName} (XSD sequence of ${node.step.name}); reorder the rules`,
      });
    }
    if (!slot.anyOrder) {
      lastPosition = Math.max(lastPosition, slot.position);
      lastName = child.step.name;
    }
    checkNode(child, slot.decl.type(), ctx);
  }
  for (const attribute of node.attributes) {
    const declared = content.attributes.some(
      (a) => a.name.local === attribute.step.local && a.name.ns === attribute.step.ns,
    );
    if (!declared) {
      ctx.problems.push({
        path: `${ctx.file}:${attribute.line}`,
        message: `${attribute.path}: ${node.step.name} has no attribute ${attribute.step.name}`,
      });
    }
  }
}
