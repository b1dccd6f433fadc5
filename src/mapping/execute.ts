/**
 * Runs a compiled mapping: one walk over the target tree, filling each node from its setters.
 * Empty elements and keys are left out, so optional parts vanish when the source has nothing
 * for them. Every failed rule is recorded (with the rule's file:line, target and source) and
 * the run fails with all of them at once. JSONata values arrive later: their nodes are kept as
 * placeholders, filled when the promises settle, and the tree is pruned afterwards.
 */
import { AmtError } from '../errors.js';
import type { Problem } from '../errors.js';
import type { XmlAttribute, XmlElement, XmlNode } from '../xml/tree.js';
import type { CodeValue } from './codelists.js';
import type { MappingScope, RunContext, Setter, TargetNode } from './model.js';
import { describe, isMissing, MappingValueError } from './transforms.js';

export interface RunOptions {
  readonly now?: () => Date;
  readonly randomUuid?: () => string;
}

export function newRunContext(options: RunOptions, async: boolean): RunContext {
  return {
    now: options.now ?? (() => new Date()),
    randomUuid: options.randomUuid ?? (() => crypto.randomUUID()),
    problems: [],
    pending: async ? [] : undefined,
  };
}

// ---- XML ------------------------------------------------------------------------------------

type MutableElement = { -readonly [K in keyof XmlElement]: XmlElement[K] };
type MutableText = { kind: 'text'; value: string };
type MutableAttribute = { -readonly [K in keyof XmlAttribute]: XmlAttribute[K] };

/** Builds the root element; returns undefined only when the root would be empty. */
export function buildXml(
  root: TargetNode,
  scope: MappingScope,
  declarations: Record<string, string>,
): MutableElement {
  const element = buildElement(root, scope) ?? emptyElement(root);
  element.declarations = declarations;
  return element;
}

function emptyElement(node: TargetNode): MutableElement {
  return {
    kind: 'element',
    name: node.step.name,
    ns: node.step.ns,
    local: node.step.local,
    attributes: [],
    declarations: {},
    children: [],
    line: 0,
  };
}

function buildElement(node: TargetNode, scope: MappingScope): MutableElement | undefined {
  const element = emptyElement(node);
  const deferred = scope.run.pending !== undefined;
  for (const attributeNode of node.attributes) {
    const attribute: MutableAttribute = {
      name: attributeNode.step.name,
      ns: attributeNode.step.ns,
      local: attributeNode.step.local,
      value: '',
    };
    const value = evaluate(attributeNode, scope, (v, setter) => {
      attribute.value = xmlText(v, setter, scope);
    });
    if (value === PENDING) element.attributes.push(attribute);
    else if (!isMissing(value)) element.attributes.push(attribute);
  }
  if (node.setters.length > 0) {
    const text: MutableText = { kind: 'text', value: '' };
    const value = evaluate(node, scope, (v, setter) => {
      if (setter.code !== undefined) applyCode(element, v, setter, scope);
      else text.value = xmlText(v, setter, scope);
    });
    if (value === PENDING || (!isMissing(value) && text.value !== '')) element.children.push(text);
  }
  for (const child of node.children) {
    if (child.repeat === undefined) {
      const built = buildElement(child, scope);
      if (built !== undefined) element.children.push(built);
      continue;
    }
    for (const itemScope of repeatScopes(child, scope)) {
      const built = buildElement(child, itemScope);
      if (built !== undefined) element.children.push(built);
    }
  }
  if (!deferred && element.attributes.length === 0 && element.children.length === 0) return undefined;
  return element;
}

function applyCode(element: MutableElement, value: unknown, setter: Setter, scope: MappingScope): void {
  const code = codeValue(value, setter, scope);
  if (code === undefined) return;
  if (code.listURI !== undefined)
    element.attributes.push({ name: 'listURI', ns: '', local: 'listURI', value: code.listURI });
  if (code.listVersionID !== undefined) {
    element.attributes.push({
      name: 'listVersionID',
      ns: '',
      local: 'listVersionID',
      value: code.listVersionID,
    });
  }
  const children: XmlNode[] = [textElement('code', code.code)];
  if (code.name !== undefined && code.name !== '') children.push(textElement('name', code.name));
  element.children.unshift(...children);
}

function textElement(name: string, value: string): XmlElement {
  return {
    kind: 'element',
    name,
    ns: '',
    local: name,
    attributes: [],
    declarations: {},
    children: [{ kind: 'text', value }],
    line: 0,
  };
}

function xmlText(value: unknown, setter: Setter, scope: MappingScope): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  problem(scope, setter, `produced ${describe(value)}, which is no XML text (use a transform such as join)`);
  return '';
}

/** Removes elements a late (JSONata) value left empty. */
export function pruneXml(element: MutableElement): boolean {
  element.children = element.children.filter((child) => {
    if (child.kind === 'text') return child.value !== '';
    return pruneXml(child as MutableElement);
  });
  return element.children.length > 0 || element.attributes.length > 0;
}

// ---- JSON -----------------------------------------------------------------------------------

export function buildJson(root: TargetNode, scope: MappingScope): Record<string, unknown> {
  return (buildObject(root, scope) as Record<string, unknown> | undefined) ?? {};
}

function buildObject(node: TargetNode, scope: MappingScope): unknown {
  if (node.children.length === 0) {
    let result: unknown;
    const value = evaluate(node, scope, (v, setter) => {
      result = setter.code !== undefined ? codeValue(v, setter, scope) : v;
    });
    return value === PENDING ? new Placeholder(() => result) : result;
  }
  const out: Record<string, unknown> = {};
  // `phones[1]`, `phones[2]`: instances of one key become an array, in instance order.
  const instances = new Map<string, { instance: number; value: unknown }[]>();
  let filled = false;
  for (const child of node.children) {
    let value: unknown;
    if (child.repeat === undefined) {
      value = buildObject(child, scope);
    } else {
      const items = repeatScopes(child, scope)
        .map((s) => buildObject(child, s))
        .filter((v) => v !== undefined);
      value = items.length > 0 ? items : undefined;
    }
    if (value === undefined) continue;
    filled = true;
    const { name, instance } = child.step;
    if (instance === undefined) {
      setKey(out, name, value);
      continue;
    }
    let list = instances.get(name);
    if (list === undefined) {
      list = [];
      instances.set(name, list);
      setKey(out, name, list);
    }
    list.push({ instance, value });
  }
  for (const [name, list] of instances) {
    setKey(
      out,
      name,
      list.sort((a, b) => a.instance - b.instance).map((entry) => entry.value),
    );
  }
  return filled || scope.run.pending !== undefined ? out : undefined;
}

function setKey(target: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty: a key named __proto__ stays an ordinary key
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A JSON value filled by a JSONata promise; resolved by `settleJson`. */
class Placeholder {
  constructor(readonly get: () => unknown) {}
}

export function settleJson(value: unknown): unknown {
  if (value instanceof Placeholder) return settleJson(value.get());
  if (Array.isArray(value)) {
    const items = value.map(settleJson).filter((v) => v !== undefined);
    return items.length > 0 ? items : undefined;
  }
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      const settled = settleJson(inner);
      if (settled !== undefined)
        Object.defineProperty(out, key, {
          value: settled,
          enumerable: true,
          writable: true,
          configurable: true,
        });
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return isMissing(value) ? undefined : value;
}

// ---- shared ---------------------------------------------------------------------------------

const PENDING = Symbol('pending');

/**
 * Asks the node's setters in order; the first that yields a value wins and is handed to
 * `apply`. A required setter whose condition holds but that yields nothing is a problem.
 */
function evaluate(
  node: TargetNode,
  scope: MappingScope,
  apply: (value: unknown, setter: Setter) => void,
): unknown {
  for (const setter of node.setters) {
    if (setter.when !== undefined && !setter.when(scope)) continue;
    let value: unknown;
    try {
      value = setter.value(scope);
    } catch (err) {
      if (!(err instanceof MappingValueError)) throw err;
      problem(scope, setter, err.message);
      continue;
    }
    if (value instanceof Promise) {
      const pending = scope.run.pending!;
      pending.push(
        value.then(
          (resolved: unknown) => {
            if (!isMissing(resolved)) apply(resolved, setter);
            else if (setter.required) problem(scope, setter, missingMessage(setter));
          },
          (err: unknown) => problem(scope, setter, err instanceof Error ? err.message : String(err)),
        ),
      );
      return PENDING;
    }
    if (!isMissing(value)) {
      apply(value, setter);
      return value;
    }
    if (setter.required) problem(scope, setter, missingMessage(setter));
  }
  return undefined;
}

function missingMessage(setter: Setter): string {
  return setter.rule.from === undefined
    ? 'required value is missing'
    : `required value missing at ${setter.rule.from}`;
}

function codeValue(value: unknown, setter: Setter, scope: MappingScope): CodeValue | undefined {
  const list = setter.code!;
  const code = typeof value === 'string' ? value.trim() : String(value);
  let name: string | undefined;
  if (list.codes !== undefined) {
    name = list.codes.get(code);
    if (name === undefined) {
      problem(
        scope,
        setter,
        `code ${JSON.stringify(code)} is not in code list ${list.name}${list.listURI ? ` (${list.listURI})` : ''}`,
      );
      return undefined;
    }
  }
  return {
    code,
    ...(setter.codeName && name !== undefined && name !== '' ? { name } : {}),
    ...(list.listURI !== undefined ? { listURI: list.listURI } : {}),
    ...(list.listVersionID !== undefined ? { listVersionID: list.listVersionID } : {}),
  };
}

function repeatScopes(node: TargetNode, scope: MappingScope): MappingScope[] {
  const repeat = node.repeat!;
  if (repeat.guard !== undefined && !repeat.guard(scope)) return [];
  const scopes: MappingScope[] = [];
  repeat.items(scope).forEach((item, index) => {
    const itemScope: MappingScope = {
      ...scope,
      item,
      index,
      trail: `${scope.trail}${repeat.source}[${index}] `,
    };
    if (repeat.when === undefined || repeat.when(itemScope)) scopes.push(itemScope);
  });
  return scopes;
}

function problem(scope: MappingScope, setter: Setter, message: string): void {
  const { rule } = setter;
  const item = scope.trail === '' ? '' : ` (${scope.trail.trim()})`;
  scope.run.problems.push({
    path: rule.to,
    message: `${message}${item} — ${rule.label} at ${rule.file}:${rule.line}`,
  });
}

export function failOnProblems(problems: readonly Problem[], mapping: string): void {
  if (problems.length === 0) return;
  throw new AmtError(
    'AMT_MAPPING_FAILED',
    `mapping ${mapping} failed: ${problems[0]!.path}: ${problems[0]!.message}`,
    {
      problems,
    },
  );
}
