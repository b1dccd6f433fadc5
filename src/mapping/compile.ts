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
import { compileCodeList, CodeListSpecError } from './codelists.js';
import type { CodeList } from './codelists.js';
import { compileCondition } from './conditions.js';
import type { Condition } from './conditions.js';
import type { RuleInfo, Setter, TargetNode, ValueFn } from './model.js';
import { compileSourcePath, parseTargetPath, PathSpecError, withBase } from './paths.js';
import type { SourceContext, TargetStep } from './paths.js';
import { checkAgainstSchema } from './schema-check.js';
import { didYouMean, isRecord, sourceSpec, targetRootStep, targetSpec } from './spec.js';
import type { SourceSpec, TargetSpec } from './spec.js';
import { compileTransform, isMissing, MappingValueError, TransformSpecError } from './transforms.js';
import type { Transform, TransformEnvironment } from './transforms.js';
import { compileValueSource, VALUE_SOURCES } from './values.js';
import type { ValueSourceKey } from './values.js';
import { expandMacro, MACRO_KEYS } from './xoev.js';
import { parseYamlSource } from './yaml-source.js';
import type { YamlSource } from './yaml-source.js';
import { decodeStrictUtf8, firstNonUtf8Line } from '../utf8.js';

export type { SourceSpec, TargetSpec } from './spec.js';
export { didYouMean } from './spec.js';
export { xsdModel } from './schema-check.js';

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
  let bytes: Buffer;
  try {
    bytes = readFileSync(absolute);
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
  const text = decodeStrictUtf8(bytes);
  if (text === undefined) {
    const line = firstNonUtf8Line(bytes) ?? 0;
    throw new AmtError('AMT_MAPPING_COMPILE_FAILED', `${absolute}:${line}: not valid UTF-8`, {
      problems: [{ path: `${absolute}:${line}`, message: 'is not valid UTF-8' }],
    });
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

export { MappingValueError };
