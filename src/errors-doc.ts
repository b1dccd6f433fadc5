/** Renders docs/errors.md from the error catalog; `npm run docs:errors` writes it, a test keeps it in sync. */
import { ERROR_CATALOG, type ErrorSpec } from './errors.js';

export function renderErrorsDoc(): string {
  const rows = Object.entries(ERROR_CATALOG as Record<string, ErrorSpec>).map(
    ([code, spec]) => `| \`${code}\` | ${spec.status} | ${spec.retryable ? 'yes' : 'no'} | ${spec.title} |`,
  );
  return [
    '# Error codes',
    '',
    'Every error amtsbote reports carries one of these stable codes: in problem+json answers',
    "(`code`, and `type` = `https://amtsbote.de/errors/<CODE>`), in a message's history and dead",
    'letter, in `amtsbote check` output and in logs. "Retry helps" says whether the same operation',
    'may succeed later without a change (the pipeline retries those with backoff). The pipeline also',
    "retries `AMT_MAPPING_COMPILE_FAILED`: the route's mapping file is at fault, not the application,",
    'which goes out at its next retry once the file is fixed.',
    '',
    'This file is generated from `src/errors.ts` by `npm run docs:errors`; a test fails when it is stale.',
    '',
    '| code | HTTP status | retry helps | meaning |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
