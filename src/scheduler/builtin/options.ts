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
  'idp-metadata-refresh': {
    type: 'object',
    additionalProperties: false,
    required: ['url', 'signedBy', 'metadata'],
    properties: {
      url: {
        type: 'string',
        pattern: '^https?://',
        description: 'Where the IdP (or its federation) publishes its signed SAML metadata.',
      },
      signedBy: {
        type: 'array',
        items: { type: 'string', minLength: 1 },
        minItems: 1,
        description:
          'PEM certificate files the metadata must be signed with; relative paths are below the configuration file.',
      },
      metadata: {
        type: 'string',
        minLength: 1,
        description:
          'The metadata file to replace: one of identity.idps[].metadata (relative to the configuration file).',
      },
      timeout: {
        type: ['string', 'integer'],
        description: 'For the whole download (e.g. 30s); default 30s.',
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

export interface IdpMetadataRefreshOptions {
  readonly url: string;
  /** Absolute paths once the configuration is loaded. */
  readonly signedBy: readonly string[];
  /** Absolute path once the configuration is loaded. */
  readonly metadata: string;
  readonly timeout?: string | number;
}
