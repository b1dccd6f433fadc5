/**
 * Compiles a mapping file (YAML) into a `CompiledMapping`: rules become setters on a tree of
 * target nodes, paths become accessor functions, transforms become plain functions, code lists
 * and lookup tables are loaded. Every problem is collected with `file:line` and the rule, so an
 * integrator sees all mistakes at once.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AmtError } from '../errors.js';
import type { Problem } from '../errors.js';
import { XsdModel, childSlots } from '../xml/xsd-model.js';
import type { ComplexContent } from '../xml/xsd-model.js';
import { schemaSet } from '../xml/schema-catalog.js';
import { compileCodeList, CodeListSpecError } from './codelists.js';
import type { CodeList } from './codelists.js';
import { compileCondition } from './conditions.js';
import type { Condition } from './conditions.js';
import type { RuleInfo, Setter, TargetNode, ValueFn } from './model.js';
import { compileSourcePath, parseTargetPath, PathSpecError, withBase } from './paths.js';
import type { SourceContext, TargetStep } from './paths.js';
import { compileTransform, editDistance, TransformSpecError } from './transforms.js';
import type { Transform, TransformEnvironment } from './transforms.js';
import { compileValueSource, VALUE_SOURCES } from './values.js';
import type { ValueSourceKey } from './values.js';
import { expandMacro, MACRO_KEYS } from './xoev.js';
import { parseYamlSource } from './yaml-source.js';
import type { YamlSource } from './yaml-source.js';
import { isMissing, MappingValueError } from './transforms.js';

export interface SourceSpec {
  readonly format: 'json' | 'xml';
  /** XML: expected root element (`prefix:local`). */
  readonly root: { readonly ns: string; readonly local: string; readonly name: string } | undefined;
  readonly namespaces: Readonly<Record<string, string>>;
  /** XML: validate the input against this schema set before mapping. */
  readonly schemaSet: string | undefined;
}

export interface TargetSpec {
  readonly format: 'json' | 'xml';
  readonly namespaces: Readonly<Record<string, string>>;
  /** XML: validate the output against this schema set. */
  readonly schemaSet: string | undefined;
  readonly indent: boolean;
}

export interface MappingDefinition {
  readonly name: string;
  readonly file: string;
  readonly description: string;
  readonly source: SourceSpec;
  readonly target: TargetSpec;
  /** XML: the root element node; JSON: the root object node. */
  readonly root: TargetNode;
  /** Some values are asynchronous (JSONata): running returns a Promise. */
  readonly async: boolean;
}

const TOP_KEYS = ['mapping', 'description', 'source', 'target', 'codelists', 'lookups', 'rules'];
const RULE_KEYS = [
  'to',
  ...VALUE_SOURCES,
  'transform',
  'default',
  'code',
  'codeName',
  'required',
  'when',
  'each',
  'at',
  'rules',
  'note',
];

interface Ctx {
  readonly yaml: YamlSource;
  readonly file: string;
  readonly dir: string;
  readonly problems: Problem[];
  readonly source: SourceSpec;
  readonly target: TargetSpec;
  readonly codelists: Map<string, CodeList>;
  readonly env: TransformEnvironment;
  async: boolean;
}

export function compileMappingFile(file: string): MappingDefinition {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (cause) {
    throw new AmtError(
      'AMT_MAPPING_COMPILE_FAILED',
      `cannot read mapping ${absolute}: ${(cause as Error).message}`,
      {
        problems: [{ path: absolute, message: 'cannot read the file' }],
        cause,
      },
    );
  }
  return compileMappingText(text, absolute);
}

export function compileMappingText(text: string, file: string): MappingDefinition {
  const yaml = parseYamlSource(text, file);
  const problems: Problem[] = [];
  const at = (node: unknown, key?: string): string => `${file}:${yaml.lineOf(node, key)}`;
  const doc = yaml.value;
  if (!isRecord(doc)) {
    throw new AmtError('AMT_MAPPING_COMPILE_FAILED', `${file}: a mapping file is a YAML map`, {
      problems: [{ path: `${file}:1`, message: 'expected a map with source, target and rules' }],
    });
  }
  for (const key of Object.keys(doc)) {
    if (!TOP_KEYS.includes(key))
      problems.push({ path: at(doc, key), message: `unknown key "${key}"${didYouMean(key, TOP_KEYS)}` });
  }
  const source = sourceSpec(doc['source'], yaml, problems, file);
  const target = targetSpec(doc['target'], yaml, problems, file);
  const codelists = new Map<string, CodeList>();
  const ctx: Ctx = {
    yaml,
    file,
    dir: path.dirname(file),
    problems,
    source,
    target,
    codelists,
    env: { lookups: new Map(), codelists },
    async: false,
  };
  loadLookups(doc['lookups'], ctx);
  loadCodelists(doc['codelists'], ctx);

  const rootStep = targetRootStep(doc['target'], target, yaml, problems, file);
  const root = newNode(rootStep, '', 0, undefined);
  const rules = doc['rules'];
  if (!Array.isArray(rules) || rules.length === 0) {
    problems.push({ path: at(doc, 'rules'), message: 'rules must be a non-empty list' });
  } else {
    compileRules(rules, root, [], 'rules', [], ctx, { format: source.format, namespaces: source.namespaces });
  }
  if (target.format === 'xml' && target.schemaSet !== undefined && problems.length === 0) {
    checkAgainstSchema(root, target.schemaSet, ctx);
  }
  if (problems.length > 0) {
    throw new AmtError(
      'AMT_MAPPING_COMPILE_FAILED',
      `${file}: ${problems.length} problem(s) in the mapping`,
      { problems },
    );
  }
  const name =
    typeof doc['mapping'] === 'string'
      ? doc['mapping']
      : path.basename(file).replace(/\.mapping\.ya?ml$|\.ya?ml$/, '');
  return {
    name,
    file,
    description: typeof doc['description'] === 'string' ? doc['description'] : '',
    source,
    target,
    root,
    async: ctx.async,
  };
}

// ---- source and target ----------------------------------------------------------------------

function sourceSpec(raw: unknown, yaml: YamlSource, problems: Problem[], file: string): SourceSpec {
  const at = (key?: string): string => `${file}:${yaml.lineOf(raw, key)}`;
  if (!isRecord(raw)) {
    problems.push({
      path: `${file}:1`,
      message: 'source is required: { format: json } or { format: xml, namespaces, root }',
    });
    return { format: 'json', root: undefined, namespaces: {}, schemaSet: undefined };
  }
  checkKeys(raw, ['format', 'root', 'namespaces', 'schemaSet'], 'source', yaml, problems, file);
  const format = raw['format'] === 'xml' ? 'xml' : 'json';
  if (raw['format'] !== 'xml' && raw['format'] !== 'json')
    problems.push({ path: at('format'), message: 'source.format is json or xml' });
  const namespaces = namespaceMap(raw['namespaces'], 'source', yaml, problems, file);
  let root: SourceSpec['root'];
  if (typeof raw['root'] === 'string') {
    try {
      const [step] = parseTargetPath(raw['root'], 'xml', namespaces);
      if (step !== undefined) root = { ns: step.ns, local: step.local, name: step.name };
    } catch (err) {
      problems.push({ path: at('root'), message: `source.root: ${(err as Error).message}` });
    }
  }
  const set = typeof raw['schemaSet'] === 'string' ? raw['schemaSet'] : undefined;
  if (set !== undefined) knownSchemaSet(set, at('schemaSet'), problems);
  return { format, root, namespaces, schemaSet: set };
}

function targetSpec(raw: unknown, yaml: YamlSource, problems: Problem[], file: string): TargetSpec {
  const at = (key?: string): string => `${file}:${yaml.lineOf(raw, key)}`;
  if (!isRecord(raw)) {
    problems.push({
      path: `${file}:1`,
      message: 'target is required: { format: json } or { format: xml, root, namespaces }',
    });
    return { format: 'json', namespaces: {}, schemaSet: undefined, indent: false };
  }
  checkKeys(raw, ['format', 'root', 'namespaces', 'schemaSet', 'indent'], 'target', yaml, problems, file);
  const format = raw['format'] === 'xml' ? 'xml' : 'json';
  if (raw['format'] !== 'xml' && raw['format'] !== 'json')
    problems.push({ path: at('format'), message: 'target.format is json or xml' });
  const namespaces = namespaceMap(raw['namespaces'], 'target', yaml, problems, file);
  const set = typeof raw['schemaSet'] === 'string' ? raw['schemaSet'] : undefined;
  if (set !== undefined) knownSchemaSet(set, at('schemaSet'), problems);
  if (format === 'json' && set !== undefined)
    problems.push({ path: at('schemaSet'), message: 'schemaSet needs an XML target' });
  return { format, namespaces, schemaSet: set, indent: raw['indent'] === 'true' || raw['indent'] === true };
}

function targetRootStep(
  raw: unknown,
  target: TargetSpec,
  yaml: YamlSource,
  problems: Problem[],
  file: string,
): TargetStep {
  if (target.format === 'json') return { name: '', ns: '', local: '', attribute: false, instance: undefined };
  const rootName = isRecord(raw) ? raw['root'] : undefined;
  if (typeof rootName !== 'string') {
    problems.push({
      path: `${file}:${yaml.lineOf(raw)}`,
      message: 'target.root (the root element, prefix:name) is required for XML',
    });
    return { name: 'root', ns: '', local: 'root', attribute: false, instance: undefined };
  }
  try {
    const steps = parseTargetPath(rootName, 'xml', target.namespaces);
    if (steps.length !== 1 || steps[0]!.attribute) throw new PathSpecError('target.root is one element name');
    return steps[0]!;
  } catch (err) {
    problems.push({ path: `${file}:${yaml.lineOf(raw, 'root')}`, message: (err as Error).message });
    return { name: 'root', ns: '', local: 'root', attribute: false, instance: undefined };
  }
}

function namespaceMap(
  raw: unknown,
  where: string,
  yaml: YamlSource,
  problems: Problem[],
  file: string,
): Record<string, string> {
  if (raw === undefined) return {};
  if (!isRecord(raw)) {
    problems.push({
      path: `${file}:${yaml.lineOf(raw)}`,
      message: `${where}.namespaces maps prefixes to namespace URIs`,
    });
    return {};
  }
  const out: Record<string, string> = {};
  for (const [prefix, uri] of Object.entries(raw)) {
    if (
      !/^[A-Za-z_][\w.-]*$/.test(prefix) ||
      prefix.toLowerCase().startsWith('xml') ||
      typeof uri !== 'string' ||
      uri === ''
    ) {
      problems.push({
        path: `${file}:${yaml.lineOf(raw, prefix)}`,
        message: `${where}.namespaces: bad prefix or URI "${prefix}"`,
      });
      continue;
    }
    out[prefix] = uri;
  }
  return out;
}

function knownSchemaSet(name: string, where: string, problems: Problem[]): void {
  try {
    schemaSet(name);
  } catch (err) {
    problems.push({ path: where, message: (err as Error).message });
  }
}

function loadLookups(raw: unknown, ctx: Ctx): void {
  if (raw === undefined) return;
  if (!isRecord(raw)) {
    ctx.problems.push({
      path: `${ctx.file}:${ctx.yaml.lineOf(raw)}`,
      message: 'lookups maps table names to { key: value } maps',
    });
    return;
  }
  const tables = ctx.env.lookups as Map<string, ReadonlyMap<string, string>>;
  for (const [name, table] of Object.entries(raw)) {
    if (!isRecord(table)) {
      ctx.problems.push({
        path: `${ctx.file}:${ctx.yaml.lineOf(raw, name)}`,
        message: `lookup table ${name} must be a map`,
      });
      continue;
    }
    tables.set(name, new Map(Object.entries(table).map(([k, v]) => [k, v === null ? '' : String(v)])));
  }
}

function loadCodelists(raw: unknown, ctx: Ctx): void {
  if (raw === undefined) return;
  if (!isRecord(raw)) {
    ctx.problems.push({
      path: `${ctx.file}:${ctx.yaml.lineOf(raw)}`,
      message: 'codelists maps names to code lists',
    });
    return;
  }
  for (const [name, spec] of Object.entries(raw)) {
    try {
      ctx.codelists.set(name, compileCodeList(name, spec, ctx.dir));
    } catch (err) {
      if (!(err instanceof CodeListSpecError)) throw err;
      ctx.problems.push({
        path: `${ctx.file}:${ctx.yaml.lineOf(raw, name)}`,
        message: `code list ${name}: ${err.message}`,
      });
    }
  }
}

// ---- rules ----------------------------------------------------------------------------------

function compileRules(
  rules: unknown[],
  base: TargetNode,
  basePath: TargetStep[],
  label: string,
  conditions: Condition[],
  ctx: Ctx,
  src: SourceContext,
): void {
  rules.forEach((rule, index) => {
    const ruleLabel = `${label}[${index}]`;
    if (!isRecord(rule)) {
      ctx.problems.push({
        path: `${ctx.file}:${ctx.yaml.lineOf(rules)}`,
        message: `${ruleLabel}: a rule is a map`,
      });
      return;
    }
    const macro = MACRO_KEYS.find((key) => key in rule);
    if (macro !== undefined) {
      try {
        const expanded = expandMacro(macro, rule, ctx.target.namespaces);
        const line = ctx.yaml.lineOf(rule);
        compileExpanded(expanded, base, basePath, `${ruleLabel}.${macro}`, conditions, ctx, line, src);
      } catch (err) {
        if (!(err instanceof PathSpecError)) throw err;
        ctx.problems.push({
          path: `${ctx.file}:${ctx.yaml.lineOf(rule, macro)}`,
          message: `${ruleLabel} (${macro}): ${err.message}`,
        });
      }
      return;
    }
    compileRule(rule, base, basePath, ruleLabel, conditions, ctx, ctx.yaml.lineOf(rule), src);
  });
}

/** Macro expansions are plain rules; their problems point at the macro's line. */
function compileExpanded(
  rules: Record<string, unknown>[],
  base: TargetNode,
  basePath: TargetStep[],
  label: string,
  conditions: Condition[],
  ctx: Ctx,
  line: number,
  src: SourceContext,
): void {
  rules.forEach((rule, index) =>
    compileRule(rule, base, basePath, `${label}[${index}]`, conditions, ctx, line, src),
  );
}

function compileRule(
  rule: Record<string, unknown>,
  base: TargetNode,
  basePath: TargetStep[],
  label: string,
  conditions: Condition[],
  ctx: Ctx,
  line: number,
  src: SourceContext,
): void {
  const fail = (message: string, key?: string): void => {
    const keyLine = key === undefined ? line : ctx.yaml.lineOf(rule, key) || line;
    ctx.problems.push({ path: `${ctx.file}:${keyLine}`, message: `${label}${toLabel(rule)}: ${message}` });
  };
  for (const key of Object.keys(rule)) {
    if (!RULE_KEYS.includes(key))
      fail(`unknown key "${key}"${didYouMean(key, [...RULE_KEYS, ...MACRO_KEYS])}`, key);
  }
  const to = rule['to'];
  if (to !== undefined && typeof to !== 'string') return fail('to must be a target path', 'to');
  let steps: TargetStep[];
  try {
    steps = parseTargetPath(to ?? '.', ctx.target.format, ctx.target.namespaces);
  } catch (err) {
    return fail((err as Error).message, 'to');
  }
  const fullSteps = [...basePath, ...steps];
  const fullPath = pathText(base, steps, ctx);
  let when: Condition | undefined;
  if (rule['when'] !== undefined) {
    try {
      when = compileCondition(rule['when'], src);
    } catch (err) {
      return fail(`when: ${(err as Error).message}`, 'when');
    }
  }

  if (rule['rules'] !== undefined || rule['each'] !== undefined || rule['at'] !== undefined) {
    if (!Array.isArray(rule['rules'])) return fail('a group needs rules: [ … ]', 'rules');
    const valueKeys = VALUE_SOURCES.filter((k) => k in rule);
    if (valueKeys.length > 0) return fail(`a group has no value of its own (remove ${valueKeys.join(', ')})`);
    let inner = src;
    if (rule['at'] !== undefined) {
      if (typeof rule['at'] !== 'string') return fail('at needs a source path', 'at');
      try {
        compileSourcePath(rule['at'], src);
      } catch (err) {
        return fail(`at: ${(err as Error).message}`, 'at');
      }
      inner = { ...src, base: withBase(rule['at'], src) };
    }
    if (rule['each'] === undefined) {
      const node = steps.length === 0 ? base : nodeAt(base, steps, ctx, line);
      const groupConditions = when ? [...conditions, when] : conditions;
      compileRules(rule['rules'], node, fullSteps, `${label}.rules`, groupConditions, ctx, inner);
      return;
    }
    if (typeof rule['each'] !== 'string') return fail('each needs a source path', 'each');
    if (steps.length === 0 || steps[steps.length - 1]!.attribute)
      return fail('a repeating group needs to: ELEMENT (or key)', 'to');
    let items;
    try {
      items = compileSourcePath(rule['each'], inner).items;
    } catch (err) {
      return fail(`each: ${(err as Error).message}`, 'each');
    }
    const parent = steps.length === 1 ? base : nodeAt(base, steps.slice(0, -1), ctx, line);
    const info: RuleInfo = { file: ctx.file, line, label, to: fullPath, from: rule['each'] };
    // Outer conditions are asked once in the outer scope; the group's own `when` per item.
    // The group's `when` is asked per item, so its paths are relative to the item.
    const itemSource: SourceContext = { ...src, base: undefined };
    const itemWhen = rule['when'] === undefined ? undefined : compileCondition(rule['when'], itemSource);
    const repeated = newNode(steps[steps.length - 1]!, fullPath, line, {
      rule: info,
      items,
      guard: combine(conditions),
      when: itemWhen,
      source: rule['each'],
    });
    parent.children.push(repeated);
    // Inside the group, relative paths start at the item.
    compileRules(rule['rules'], repeated, fullSteps, `${label}.rules`, [], ctx, itemSource);
    return;
  }

  const sourceKeys = VALUE_SOURCES.filter((k) => k in rule);
  if (sourceKeys.length > 1) return fail(`one value source per rule, not ${sourceKeys.join(' and ')}`);
  if (sourceKeys.length === 0 && rule['default'] === undefined) {
    return fail(`a rule needs a value: ${VALUE_SOURCES.join(', ')} (or default)`);
  }
  if (steps.length === 0 && ctx.target.format === 'json' && basePath.length === 0)
    return fail('to is required');
  const sourceKey: ValueSourceKey = sourceKeys[0] ?? 'value';
  let value: ValueFn;
  let from: string | undefined;
  try {
    const compiled = compileValueSource(sourceKey, sourceKeys.length === 0 ? undefined : rule[sourceKey], {
      ...src,
      env: ctx.env,
    });
    value = sourceKeys.length === 0 ? () => undefined : compiled.value;
    from = compiled.from;
    if (compiled.async) ctx.async = true;
  } catch (err) {
    if (!(err instanceof PathSpecError) && !(err instanceof TransformSpecError)) throw err;
    return fail(`${sourceKey}: ${err.message}`, sourceKey);
  }
  const transforms: Transform[] = [];
  const transformSpec = rule['transform'];
  if (transformSpec !== undefined) {
    for (const spec of Array.isArray(transformSpec) ? transformSpec : [transformSpec]) {
      try {
        transforms.push(compileTransform(spec, ctx.env));
      } catch (err) {
        if (!(err instanceof TransformSpecError)) throw err;
        return fail(`transform: ${err.message}`, 'transform');
      }
    }
  }
  let code: CodeList | undefined;
  if (rule['code'] !== undefined) {
    code = typeof rule['code'] === 'string' ? ctx.codelists.get(rule['code']) : undefined;
    if (code === undefined) {
      const known = [...ctx.codelists.keys()].join(', ') || 'none';
      return fail(
        `code list "${String(rule['code'])}" is not declared under codelists (declared: ${known})`,
        'code',
      );
    }
    if (steps[steps.length - 1]?.attribute === true)
      return fail('a code value goes to an element, not an attribute', 'code');
  }
  const fallback = rule['default'];
  const setter: Setter = {
    rule: { file: ctx.file, line, label, to: fullPath, from },
    value: pipeline(value, transforms, fallback),
    when: combine(when ? [...conditions, when] : conditions),
    required: rule['required'] === true || rule['required'] === 'true',
    code,
    codeName: rule['codeName'] === true || rule['codeName'] === 'true',
  };
  const node = steps.length === 0 ? base : nodeAt(base, steps, ctx, line);
  if (
    node === base &&
    base.repeat === undefined &&
    basePath.length === 0 &&
    ctx.target.format === 'xml' &&
    steps.length === 0
  ) {
    return fail('a rule needs to: (the root element has no text)');
  }
  node.setters.push(setter);
}

function pipeline(source: ValueFn, transforms: readonly Transform[], fallback: unknown): ValueFn {
  const apply = (value: unknown): unknown => {
    let current = value;
    for (const transform of transforms) current = transform(current);
    return isMissing(current) && fallback !== undefined ? fallback : current;
  };
  if (transforms.length === 0 && fallback === undefined) return source;
  return (scope) => {
    const value = source(scope);
    if (value instanceof Promise) return value.then(apply);
    return apply(value);
  };
}

function combine(conditions: readonly Condition[]): Condition | undefined {
  if (conditions.length === 0) return undefined;
  if (conditions.length === 1) return conditions[0];
  return (scope) => conditions.every((c) => c(scope));
}

function newNode(step: TargetStep, fullPath: string, line: number, repeat: TargetNode['repeat']): TargetNode {
  return { step, path: fullPath, children: [], attributes: [], setters: [], repeat, line };
}

/** Finds or creates the node at `steps` below `base` (a repeated node is never reused). */
function nodeAt(base: TargetNode, steps: readonly TargetStep[], ctx: Ctx, line: number): TargetNode {
  let node = base;
  for (const step of steps) {
    const list = step.attribute ? node.attributes : node.children;
    let next = list.find(
      (n) => n.step.name === step.name && n.step.instance === step.instance && n.repeat === undefined,
    );
    if (next === undefined) {
      const separator = ctx.target.format === 'xml' ? '/' : '.';
      const childPath = node.path === '' ? displayStep(step) : `${node.path}${separator}${displayStep(step)}`;
      next = newNode(step, childPath, line, undefined);
      list.push(next);
    }
    node = next;
  }
  return node;
}

function displayStep(step: TargetStep): string {
  if (step.attribute) return `@${step.name}`;
  return step.instance === undefined ? step.name : `${step.name}[${step.instance}]`;
}

function pathText(base: TargetNode, steps: readonly TargetStep[], ctx: Ctx): string {
  const separator = ctx.target.format === 'xml' ? '/' : '.';
  return [base.path, ...steps.map(displayStep)].filter((p) => p !== '').join(separator);
}

function toLabel(rule: Record<string, unknown>): string {
  return typeof rule['to'] === 'string' ? ` (to: ${rule['to']})` : '';
}

// ---- checks against the target XSD ----------------------------------------------------------

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
function checkAgainstSchema(root: TargetNode, set: string, ctx: Ctx): void {
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

function checkNode(node: TargetNode, content: ComplexContent | undefined, ctx: Ctx): void {
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

// ---- helpers --------------------------------------------------------------------------------

function checkKeys(
  raw: Record<string, unknown>,
  allowed: readonly string[],
  where: string,
  yaml: YamlSource,
  problems: Problem[],
  file: string,
): void {
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) {
      problems.push({
        path: `${file}:${yaml.lineOf(raw, key)}`,
        message: `${where}: unknown key "${key}"${didYouMean(key, allowed)}`,
      });
    }
  }
}

export function didYouMean(name: string, known: readonly string[]): string {
  const close = known.filter((k) => editDistance(k.toLowerCase(), name.toLowerCase()) <= 2);
  return close.length > 0 ? ` (did you mean ${close.join(' or ')}?)` : '';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export { MappingValueError };
