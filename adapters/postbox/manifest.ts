/**
 * The `postbox` adapter: sends the citizen a German notice about a status change of an
 * application to a REST postbox API (Servicekonto.NRW / BundID postbox or a municipal one).
 * What is not confirmed about such an API — path, field names, status values, authentication —
 * is configuration. This file is the single declaration of that configuration.
 */
import { defineAdapter } from '../../src/adapter-contract.js';
import { createPostbox } from './postbox.js';

export type PostboxAuth =
  | { readonly type: 'none' }
  | { readonly type: 'bearer'; readonly token: string }
  | {
      readonly type: 'oauth2';
      readonly tokenUrl: string;
      readonly clientId: string;
      readonly clientSecret: string;
      readonly scope?: string;
    };

export interface PostboxConfig {
  readonly url: string;
  readonly auth?: PostboxAuth;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeout?: number | string;
  readonly statusValues?: Readonly<Record<string, string>>;
  readonly sender?: string;
  readonly requirePseudonym?: boolean;
}

const httpUrl = { type: 'string', pattern: '^https?://[^\\s]+$' } as const;
const nonEmpty = { type: 'string', minLength: 1 } as const;
const citizenStatuses = ['RECEIVED', 'PROCESSING', 'ACTION_REQUIRED', 'COMPLETED', 'REJECTED'];

export const postboxConfigSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  description: 'Posts each status notice as JSON to a postbox REST API.',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { ...httpUrl, description: 'Endpoint the notices are POSTed to, `http://` or `https://`.' },
    auth: {
      description: 'How the gateway authenticates to the postbox API.',
      default: { type: 'none' },
      oneOf: [
        {
          type: 'object',
          description: 'No authentication (e.g. a network the API trusts).',
          additionalProperties: false,
          required: ['type'],
          properties: { type: { const: 'none', description: 'No authentication.' } },
        },
        {
          type: 'object',
          description: 'A static bearer token.',
          additionalProperties: false,
          required: ['type', 'token'],
          properties: {
            type: { const: 'bearer', description: 'Static bearer token.' },
            token: { ...nonEmpty, description: 'The token (secret); use `${ENV}` or `${file:…}`.' },
          },
        },
        {
          type: 'object',
          description:
            'OAuth 2.0 client credentials: a token is fetched from `tokenUrl`, reused until shortly before it expires, and fetched again once when the API answers 401.',
          additionalProperties: false,
          required: ['type', 'tokenUrl', 'clientId', 'clientSecret'],
          properties: {
            type: { const: 'oauth2', description: 'OAuth 2.0 client credentials grant.' },
            tokenUrl: { ...httpUrl, description: 'Token endpoint.' },
            clientId: { ...nonEmpty, description: 'Client id.' },
            clientSecret: { ...nonEmpty, description: 'Client secret (secret).' },
            scope: { ...nonEmpty, description: 'Scopes to request, space separated; omitted when not set.' },
          },
        },
      ],
    },
    headers: {
      type: 'object',
      default: {},
      description:
        'Extra request headers. `Authorization`, `Content-Type`, `Content-Length`, `Idempotency-Key` and `Host` are set by the adapter and cannot be set here.',
      propertyNames: { pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
      additionalProperties: { type: 'string', description: 'Header value.' },
    },
    timeout: {
      default: '30s',
      description:
        'Time for one request (and for a token request): milliseconds as a number, or a string like `500ms`, `30s`, `2m`.',
      oneOf: [
        { type: 'integer', minimum: 1, description: 'Milliseconds.' },
        { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$', description: 'Duration with unit.' },
      ],
    },
    statusValues: {
      type: 'object',
      description:
        'The value sent as `status` for each citizen status. Unlisted statuses are sent as they are, except REJECTED, which becomes COMPLETED: the federal postbox knows no rejected state.',
      propertyNames: { enum: citizenStatuses },
      additionalProperties: { ...nonEmpty, description: 'The postbox API’s value.' },
    },
    sender: {
      ...nonEmpty,
      description: 'Sent as `sender` with every notice (e.g. the authority’s name); omitted when not set.',
    },
    requirePseudonym: {
      type: 'boolean',
      default: false,
      description:
        'Reject notices for applications without a verified citizen identity (no bPK2 pseudonym) instead of addressing them by the portal reference.',
    },
  },
} as const;

export const postboxExample: PostboxConfig = {
  url: 'https://postfach.servicekonto.nrw.example/api/v1/nachrichten',
  auth: {
    type: 'oauth2',
    tokenUrl: 'https://sso.servicekonto.nrw.example/oauth2/token',
    clientId: 'amtsbote-stadt-musterstadt',
    clientSecret: '${POSTBOX_CLIENT_SECRET}',
  },
  timeout: '30s',
  statusValues: { REJECTED: 'COMPLETED' },
  sender: 'Stadt Musterstadt',
  requirePseudonym: false,
};

export const postboxAdapter = defineAdapter<PostboxConfig>({
  type: 'postbox',
  version: '1.0.0',
  description: "Sends German status notices to the citizen's postbox through a REST API.",
  capabilities: { outbound: true, inbound: false, poll: false },
  statusNotices: () => undefined,
  configSchema: postboxConfigSchema,
  secrets: ['/auth/token', '/auth/clientSecret'],
  example: postboxExample,
  create: (context, config) => createPostbox(context, config),
});
