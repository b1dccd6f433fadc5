/**
 * The built-in jobs by name with the JSON Schema of their `options:` block. The configuration
 * schema is composed from this list, so `amtsbote check` validates a job's options against the
 * job it names. Kept free of runtime imports: the config loader reads it.
 */
import type { JsonSchema } from '../../adapter-contract.js';

const routeId = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } as const;

export const BUILTIN_JOB_OPTIONS = {
  'retention-purge': {
    type: 'object',
    additionalProperties: false,
    required: ['days'],
    properties: {
      days: {
        type: 'integer',
        minimum: 1,
        maximum: 36500,
        description:
          'Days after a message reached its final state (delivered or dead) before its payload is purged.',
      },
      routes: {
        type: 'array',
        items: routeId,
        minItems: 1,
        uniqueItems: true,
        description: 'Only messages of these routes; all routes when absent.',
      },
    },
  },
  'dead-letter-digest': {
    type: 'object',
    additionalProperties: false,
    properties: {
      webhook: {
        type: 'object',
        additionalProperties: false,
        required: ['url'],
        properties: {
          url: {
            type: 'string',
            pattern: '^https?://',
            description: 'Receives the counts per route as JSON (POST).',
          },
          headers: {
            type: 'object',
            additionalProperties: { type: 'string' },
            description: 'Extra request headers, e.g. an Authorization taken from ${ENV}.',
          },
        },
      },
    },
  },
} as const satisfies Record<string, JsonSchema>;

export type BuiltinJobName = keyof typeof BUILTIN_JOB_OPTIONS;

export const BUILTIN_JOB_NAMES = Object.keys(BUILTIN_JOB_OPTIONS) as BuiltinJobName[];

export interface RetentionPurgeOptions {
  readonly days: number;
  readonly routes?: readonly string[];
}

export interface DeadLetterDigestOptions {
  readonly webhook?: { readonly url: string; readonly headers?: Readonly<Record<string, string>> };
}
