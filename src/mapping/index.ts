/**
 * The mapping engine's public face. `loadMappingStep(file)` compiles a mapping file once per
 * path and returns the pipeline step; everything else is for tooling (CLI, tests, benchmarks).
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { isAmtError, type Problem } from '../errors.js';
import type { MappingStep } from '../pipeline/mapping-step.js';
import { compileMappingFile } from './compile.js';
import { preloadSchemas, toCompiledMapping } from './run.js';
import type { CompiledMapping } from './run.js';

interface CacheEntry {
  readonly compiled: Promise<CompiledMapping>;
  /** inode, size and mtime of the file when it was read. */
  readonly signature: string;
  checkedAt: number;
  /** When compiling failed, if it did. */
  failedAt?: number;
}

const cache = new Map<string, CacheEntry>();

/** How long a compiled mapping is used before its file is looked at again. */
const RECHECK_MS = 1000;
/**
 * How long a failure is kept for a file that has not changed. Compiling takes tens of
 * milliseconds of the main thread; a route whose mapping does not compile would otherwise pay
 * them for every claim of its applications and every readiness probe, and stall intake for all.
 * Retried after a while all the same: the cause may lie outside the file (its permissions, say).
 */
const FAILED_RETRY_MS = 10_000;

function signatureOf(file: string): string {
  try {
    const info = statSync(file);
    return `${info.ino}:${info.size}:${info.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

const preloaded = new WeakSet<CompiledMapping>();

/**
 * Compiles (once per absolute path) and returns a mapping, with its XSD schema sets compiled too
 * unless `schemas: false` (a caller that only needs the definition, e.g. the worker pool on the
 * main thread). A file changed on disk is compiled again (looked at no more than once a second),
 * so a fixed mapping is used by the next delivery and by replays without a restart; a file that
 * failed is compiled again as soon as it changes, and otherwise not for ten seconds. Throws
 * AmtError `AMT_MAPPING_COMPILE_FAILED` whose problems name `file:line` and the rule.
 */
export async function loadMapping(
  file: string,
  options: { readonly schemas?: boolean } = {},
): Promise<CompiledMapping> {
  const mapping = await compiledMapping(file);
  if (options.schemas !== false && !preloaded.has(mapping)) {
    preloadSchemas(mapping.definition);
    preloaded.add(mapping);
  }
  return mapping;
}

function compiledMapping(file: string): Promise<CompiledMapping> {
  const key = path.resolve(file);
  const now = Date.now();
  const known = cache.get(key);
  // A file that failed is looked at on every call (a stat): its fix is used at once.
  if (known !== undefined && known.failedAt === undefined && now - known.checkedAt < RECHECK_MS) {
    return known.compiled;
  }
  const signature = signatureOf(key);
  if (
    known !== undefined &&
    known.signature === signature &&
    (known.failedAt === undefined || now - known.failedAt < FAILED_RETRY_MS)
  ) {
    known.checkedAt = now;
    return known.compiled;
  }
  const compiled = Promise.resolve().then(() => toCompiledMapping(compileMappingFile(key)));
  const entry: CacheEntry = { compiled, signature, checkedAt: now };
  // A file that failed to compile is compiled afresh once it changes (it may have been fixed).
  compiled.catch(() => {
    entry.failedAt = Date.now();
  });
  cache.set(key, entry);
  return compiled;
}

/**
 * The pipeline's mapping step for a mapping file, compiled once per path; it declares the
 * mapping's source format so the pipeline hands it JSON or the XML document. The step throws
 * `AMT_MAPPING_FAILED` (problems: rule, target path, file:line) or `AMT_XML_INVALID`
 * (problems: XPath, line) — both permanent.
 */
export async function loadMappingStep(file: string): Promise<MappingStep> {
  return (await loadMapping(file)).step;
}

/** Forgets compiled mappings (all, or one file), e.g. before replaying with a fixed mapping. */
export function clearMappingCache(file?: string): void {
  if (file === undefined) cache.clear();
  else cache.delete(path.resolve(file));
}

export { compileMappingFile, compileMappingText } from './compile.js';
export type { MappingDefinition, SourceSpec, TargetSpec } from './compile.js';
export { toCompiledMapping, JSON_CONTENT_TYPE, XML_CONTENT_TYPE } from './run.js';
export type { CompiledMapping, MappingResult } from './run.js';
export type { RunOptions } from './execute.js';
export { nameBasedUuid } from './values.js';
export { codeElement, g2gHeaderElement } from './xoev.js';
export type { CodeFields, G2gHeaderFields, G2gParty } from './xoev.js';

/**
 * Compiles every route's mapping with its schemas, as a mapping thread would, for `amtsbote
 * check`: each thing wrong is one problem under the route's `mapping`, naming `file:line`.
 */
export async function routeMappingProblems(
  routes: readonly { readonly mapping?: string | undefined }[],
): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const [i, route] of routes.entries()) {
    if (route.mapping === undefined) continue;
    const where = `/routes/${i}/mapping`;
    try {
      await loadMapping(route.mapping);
    } catch (err) {
      if (isAmtError(err) && err.problems.length > 0) {
        problems.push(...err.problems.map((p) => ({ path: where, message: `${p.path}: ${p.message}` })));
      } else {
        problems.push({ path: where, message: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  return problems;
}
