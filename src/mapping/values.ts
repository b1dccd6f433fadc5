/**
 * Value sources of a rule — exactly one of:
 *   from: PATH | [PATH, …]     read from the source (a list gives a list, e.g. for `join`)
 *   value: TEXT                a constant
 *   template: 'Antrag {application.reference}'   text with `{path}` or `{path|transform|…}` placeholders
 *   uuid: random | { from: PATH | [PATH, …], name: TEXT }   a random or a name-based (stable) UUID
 *   now: dateTime | date       the time of mapping (xs:dateTime UTC / calendar date in Berlin)
 *   jsonata: EXPRESSION        for the rare field that needs more (JSON sources only)
 */
import jsonata from 'jsonata';
import type { MappingScope, ValueFn } from './model.js';
import { compileSourcePath, PathSpecError } from './paths.js';
import type { SourceContext } from './paths.js';
import { compileTransform, isMissing, MappingValueError, toBerlinDate, toXsDateTime } from './transforms.js';
import type { Transform, TransformEnvironment } from './transforms.js';
import { nameBasedUuid } from './uuid.js';

export { nameBasedUuid };

export const VALUE_SOURCES = ['from', 'value', 'template', 'uuid', 'now', 'jsonata'] as const;
export type ValueSourceKey = (typeof VALUE_SOURCES)[number];

export interface ValueSourceOptions extends SourceContext {
  /** For `{path|transform}` placeholders in templates. */
  readonly env: TransformEnvironment;
}

export interface CompiledValueSource {
  readonly value: ValueFn;
  /** What the rule reads, for messages. */
  readonly from: string | undefined;
  readonly async: boolean;
}

export function compileValueSource(
  key: ValueSourceKey,
  spec: unknown,
  options: ValueSourceOptions,
): CompiledValueSource {
  switch (key) {
    case 'from': {
      if (Array.isArray(spec)) {
        const readers = spec.map((p) => compileSourcePath(String(p), options));
        return {
          value: (scope) => readers.map((r) => r.value(scope)),
          from: readers.map((r) => r.text).join(', '),
          async: false,
        };
      }
      if (typeof spec !== 'string') throw new PathSpecError('from needs a path or a list of paths');
      const reader = compileSourcePath(spec, options);
      return { value: reader.value, from: reader.text, async: false };
    }
    case 'value': {
      if (spec !== null && typeof spec === 'object')
        throw new PathSpecError('value must be a text (quote it in YAML)');
      const constant = spec ?? '';
      return { value: () => constant, from: undefined, async: false };
    }
    case 'template':
      return compileTemplate(spec, options);
    case 'uuid':
      return compileUuid(spec, options);
    case 'now': {
      const kind = spec ?? 'dateTime';
      if (kind === 'dateTime')
        return { value: (s) => toXsDateTime(s.run.now().getTime()), from: 'now', async: false };
      if (kind === 'date')
        return { value: (s) => toBerlinDate(s.run.now().getTime()), from: 'now', async: false };
      throw new PathSpecError('now is dateTime or date');
    }
    case 'jsonata':
      return compileJsonata(spec, options);
  }
}

function compileTemplate(spec: unknown, options: ValueSourceOptions): CompiledValueSource {
  if (typeof spec !== 'string') throw new PathSpecError('template needs a text with {path} placeholders');
  const literals: string[] = [];
  const readers: ((scope: MappingScope) => unknown)[] = [];
  let last = 0;
  for (const match of spec.matchAll(/\{([^{}]+)\}/g)) {
    literals.push(spec.slice(last, match.index));
    const [pathText, ...pipes] = match[1]!.split('|').map((p) => p.trim());
    const read = compileSourcePath(pathText!, options).value;
    const transforms: Transform[] = pipes.map((pipe) => {
      const colon = pipe.indexOf(':');
      return compileTransform(
        colon < 0 ? pipe : { [pipe.slice(0, colon)]: pipe.slice(colon + 1) },
        options.env,
      );
    });
    readers.push(
      transforms.length === 0
        ? read
        : (scope) => transforms.reduce<unknown>((value, transform) => transform(value), read(scope)),
    );
    last = match.index + match[0].length;
  }
  literals.push(spec.slice(last));
  if (readers.length === 0) return { value: () => spec, from: undefined, async: false };
  return {
    value: (scope) => {
      let out = literals[0]!;
      let found = false;
      for (let i = 0; i < readers.length; i++) {
        const part = readers[i]!(scope);
        if (!isMissing(part)) {
          found = true;
          out += typeof part === 'object' ? JSON.stringify(part) : String(part);
        }
        out += literals[i + 1]!;
      }
      // A template none of whose placeholders has a value is missing, not a stub text.
      return found ? out : undefined;
    },
    from: spec,
    async: false,
  };
}

function compileUuid(spec: unknown, options: ValueSourceOptions): CompiledValueSource {
  if (spec === 'random' || spec === undefined || spec === null || spec === '') {
    return { value: (s) => s.run.randomUuid(), from: undefined, async: false };
  }
  if (typeof spec !== 'object' || Array.isArray(spec))
    throw new PathSpecError('uuid is "random" or { from: PATH, name: TEXT }');
  const raw = spec as Record<string, unknown>;
  const paths = Array.isArray(raw['from']) ? raw['from'] : [raw['from']];
  if (paths.length === 0 || !paths.every((p) => typeof p === 'string')) {
    throw new PathSpecError('uuid needs from: PATH or a list of paths (or use uuid: random)');
  }
  const readers = paths.map((p) => compileSourcePath(p as string, options));
  const name = typeof raw['name'] === 'string' ? `${raw['name']}:` : '';
  return {
    value: (scope) => {
      const parts = readers.map((r) => r.value(scope));
      if (parts.some(isMissing)) return undefined;
      return nameBasedUuid(name + parts.map(String).join(':'));
    },
    from: readers.map((r) => r.text).join(', '),
    async: false,
  };
}

function compileJsonata(spec: unknown, options: ValueSourceOptions): CompiledValueSource {
  if (typeof spec !== 'string') throw new PathSpecError('jsonata needs an expression');
  if (options.format !== 'json') throw new PathSpecError('jsonata works on JSON sources only');
  let expression: jsonata.Expression;
  try {
    expression = jsonata(spec);
  } catch (err) {
    throw new PathSpecError(`jsonata: ${(err as Error).message}`);
  }
  // Inside an `at:` group the expression sees the value at that path, like every other path.
  const focus =
    options.base === undefined ? (scope: MappingScope) => scope.item : compileSourcePath('$', options).value;
  return {
    value: (scope) =>
      expression
        .evaluate(focus(scope), {
          root: scope.root,
          message: (scope.input as { message?: unknown }).message,
          attachments: (scope.input as { attachments?: unknown }).attachments,
          index: scope.index,
        })
        .catch((err: unknown) => {
          throw new MappingValueError(`jsonata: ${(err as Error).message}`);
        }),
    from: `jsonata ${spec}`,
    async: true,
  };
}
