/**
 * What a mapping file compiles into: a tree of target nodes in output order, each carrying the
 * compiled setters that fill it. Running a mapping walks this tree once — no YAML, no path
 * parsing, no lookups by name at run time.
 */
import type { Problem } from '../errors.js';
import type { CodeList } from './codelists.js';
import type { Condition } from './conditions.js';
import type { ItemsReader, Scope, TargetStep } from './paths.js';

/** Where a rule was written: for messages that point the integrator at the right line. */
export interface RuleInfo {
  readonly file: string;
  readonly line: number;
  /** `rules[4]` or `rules[7].rules[2]`. */
  readonly label: string;
  /** The full target path of the rule. */
  readonly to: string;
  /** The source the rule reads, for messages (`application.applicant.familyName`). */
  readonly from: string | undefined;
}

/** Produces a value for a target node; may return a Promise (JSONata). */
export type ValueFn = (scope: MappingScope) => unknown;

export interface Setter {
  readonly rule: RuleInfo;
  readonly value: ValueFn;
  readonly when: Condition | undefined;
  readonly required: boolean;
  /** Emit a code-typed value (`<code>`, `listURI`, `listVersionID`) from this list. */
  readonly code: CodeList | undefined;
  /** Also emit `<name>` with the list's name for the code. */
  readonly codeName: boolean;
}

export interface Repeat {
  readonly rule: RuleInfo;
  readonly items: ItemsReader;
  /** Conditions of enclosing groups, asked once in the outer scope. */
  readonly guard: Condition | undefined;
  /** The group's own condition, asked for each item. */
  readonly when: Condition | undefined;
  /** The `each` path, for the item trail in messages. */
  readonly source: string;
}

export interface TargetNode {
  readonly step: TargetStep;
  /** Static path from the root, for messages. */
  readonly path: string;
  readonly children: TargetNode[];
  readonly attributes: TargetNode[];
  readonly setters: Setter[];
  /** Set on the node a repeating group (`each`) produces once per item. */
  readonly repeat: Repeat | undefined;
  /** Line of the first rule that created this node (coverage and order messages). */
  readonly line: number;
}

export interface RunContext {
  readonly now: () => Date;
  readonly randomUuid: () => string;
  readonly problems: Problem[];
  /** Set when the mapping has asynchronous (JSONata) values; collects their completions. */
  readonly pending: Promise<void>[] | undefined;
}

export interface MappingScope extends Scope {
  readonly run: RunContext;
}
