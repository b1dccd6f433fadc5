/**
 * Conditions (`when:`) of mapping rules, compiled into predicates:
 *   when: application.vehicle.licensePlate                 # the value is present
 *   when: { path: application.kind, equals: PKW }
 *   when: { path: application.kind, in: [PKW, Krad] }
 *   when: { path: application.email, matches: '@' }
 *   when: { path: application.consent, exists: false }
 *   when: { not: … } / { all: [ … ] } / { any: [ … ] }
 */
import { isMissing } from './transforms.js';
import { compileSourcePath, PathSpecError } from './paths.js';
import type { Scope, SourceContext } from './paths.js';

export type Condition = (scope: Scope) => boolean;

export function compileCondition(spec: unknown, source: SourceContext): Condition {
  if (typeof spec === 'string') {
    const read = compileSourcePath(spec, source).value;
    return (scope) => !isMissing(read(scope));
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new PathSpecError(
      'a condition is a path or a map (path + equals/in/matches/exists, not, all, any)',
    );
  }
  const raw = spec as Record<string, unknown>;
  if ('not' in raw) {
    const inner = compileCondition(raw['not'], source);
    return (scope) => !inner(scope);
  }
  if ('all' in raw || 'any' in raw) {
    const list = raw['all'] ?? raw['any'];
    if (!Array.isArray(list) || list.length === 0) throw new PathSpecError('all/any need a non-empty list');
    const parts = list.map((c) => compileCondition(c, source));
    return 'all' in raw ? (scope) => parts.every((p) => p(scope)) : (scope) => parts.some((p) => p(scope));
  }
  if (typeof raw['path'] !== 'string') throw new PathSpecError('a condition needs a path');
  const known = ['path', 'equals', 'in', 'matches', 'exists'];
  const unknown = Object.keys(raw).filter((k) => !known.includes(k));
  if (unknown.length > 0)
    throw new PathSpecError(`unknown condition key(s) ${unknown.join(', ')} (${known.join(', ')})`);
  const read = compileSourcePath(raw['path'], source).value;
  if ('equals' in raw) {
    const expected = String(raw['equals']);
    return (scope) => {
      const value = read(scope);
      return !isMissing(value) && String(value) === expected;
    };
  }
  if ('in' in raw) {
    if (!Array.isArray(raw['in'])) throw new PathSpecError('in needs a list');
    const allowed = new Set(raw['in'].map(String));
    return (scope) => {
      const value = read(scope);
      return !isMissing(value) && allowed.has(String(value));
    };
  }
  if ('matches' in raw) {
    let re: RegExp;
    try {
      re = new RegExp(String(raw['matches']), 'u');
    } catch (err) {
      throw new PathSpecError(`matches: invalid pattern: ${(err as Error).message}`);
    }
    return (scope) => {
      const value = read(scope);
      return !isMissing(value) && re.test(String(value));
    };
  }
  const wanted = raw['exists'] === undefined || raw['exists'] === true || raw['exists'] === 'true';
  return (scope) => isMissing(read(scope)) !== wanted;
}
