/**
 * The `http` adapter: delivers a message to a plain REST endpoint of a Fachverfahren. This file
 * is the single declaration of its configuration — schema, secrets and the documented example.
 */
import { defineAdapter } from '../../src/adapter-contract.js';
import { createHttpDelivery } from './http-delivery.js';

export type HttpAuth =
  | { readonly type: 'none' }
  | { readonly type: 'bearer'; readonly token: string }
  | { readonly type: 'basic'; readonly username: string; readonly password: string }
  | {
      readonly type: 'oauth2';
      readonly tokenUrl: string;
      readonly clientId: string;
      readonly clientSecret: string;
      readonly scope?: string;
      readonly clientAuthentication?: 'basic' | 'body';
    };

export type RemoteReferenceSource = { readonly header: string } | { readonly jsonPointer: string };

export interface HttpAdapterConfig {
  readonly url: string;
  readonly method?: 'POST' | 'PUT';
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeout?: number | string;
  readonly auth?: HttpAuth;
  readonly tls?: {
    readonly ca?: string;
    readonly cert?: string;
    readonly key?: string;
    readonly rejectUnauthorized?: boolean;
  };
  readonly remoteReference?: RemoteReferenceSource;
  readonly attachments?: 'omit' | 'multipart';
}

const httpUrl = { type: 'string', pattern: '^https?://[^\\s]+$' } as const;
const nonEmpty = { type: 'string', minLength: 1 } as const;

const authSchema = {
  description: 'How the gateway authenticates to the receiver.',
  default: { type: 'none' },
  oneOf: [
    {
      type: 'object',
      description: 'No authentication (e.g. the receiver trusts the network or a client certificate).',
      additionalProperties: false,
      required: ['type'],
      properties: { type: { const: 'none', description: 'No authentication.' } },
    },
    {
      type: 'object',
      description: 'A static bearer token in the Authorization header.',
      additionalProperties: false,
      required: ['type', 'token'],
      properties: {
        type: { const: 'bearer', description: 'Static bearer token.' },
        token: { ...nonEmpty, description: 'The token (secret); use `${ENV}` or `${file:…}`.' },
      },
    },
    {
      type: 'object',
      description: 'HTTP Basic authentication.',
      additionalProperties: false,
      required: ['type', 'username', 'password'],
      properties: {
        type: { const: 'basic', description: 'HTTP Basic authentication.' },
        username: { ...nonEmpty, description: 'User name; it must not contain a colon.', pattern: '^[^:]+$' },
        password: { type: 'string', description: 'Password (secret).' },
      },
    },
    {
      type: 'object',
      description:
        'OAuth 2.0 client credentials: a token is fetched from `tokenUrl`, reused until shortly before it expires, and fetched again once when the receiver answers 401.',
      additionalProperties: false,
      required: ['type', 'tokenUrl', 'clientId', 'clientSecret'],
      properties: {
        type: { const: 'oauth2', description: 'OAuth 2.0 client credentials grant.' },
        tokenUrl: { ...httpUrl, description: 'Token endpoint of the authorisation server.' },
        clientId: { ...nonEmpty, description: 'Client id.' },
        clientSecret: { ...nonEmpty, description: 'Client secret (secret).' },
        scope: { ...nonEmpty, description: 'Scopes to request, space separated; omitted when not set.' },
        clientAuthentication: {
          enum: ['basic', 'body'],
          default: 'basic',
          description:
            'How the client credentials reach the token endpoint: `basic` (Authorization header, RFC 6749 §2.3.1) or `body` (`client_id`/`client_secret` form fields).',
        },
      },
    },
  ],
} as const;

export const httpConfigSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  description: 'Delivers each message as one HTTP request to a REST endpoint.',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: {
      ...httpUrl,
      description:
        'Target URL, `http://` or `https://`. May contain `{deliveryId}`, `{messageId}`, `{service}` (Leistungsschlüssel) and `{ars}` (tenant ARS); the values are URL-encoded.',
    },
    method: { enum: ['POST', 'PUT'], default: 'POST', description: 'HTTP method.' },
    headers: {
      type: 'object',
      description:
        'Extra request headers. The adapter sets `Idempotency-Key`, `X-Amtsbote-*`, `Content-Type`, `Content-Length`, `Transfer-Encoding`, `Host` and `Authorization` itself; they cannot be set here.',
      default: {},
      propertyNames: { pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" },
      additionalProperties: { type: 'string', description: 'Header value.' },
    },
    timeout: {
      description:
        'Time for the whole exchange (connect, send, answer): milliseconds as a number (`15000`), or a string with its unit: `500ms`, `30s`, `2m`, `1h`.',
      default: '30s',
      oneOf: [
        { type: 'integer', minimum: 1, description: 'Milliseconds.' },
        { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$', description: 'Duration with unit.' },
      ],
    },
    auth: authSchema,
    tls: {
      type: 'object',
      description: 'TLS settings for https URLs (they apply to the OAuth token endpoint as well).',
      additionalProperties: false,
      dependentRequired: { cert: ['key'], key: ['cert'] },
      properties: {
        ca: {
          ...nonEmpty,
          description:
            'PEM file with CA certificates to trust in addition to the public ones (e.g. the city CA).',
        },
        cert: { ...nonEmpty, description: 'PEM file with the client certificate (mutual TLS); needs `key`.' },
        key: {
          ...nonEmpty,
          description: 'PEM file with the unencrypted private key of the client certificate.',
        },
        rejectUnauthorized: {
          type: 'boolean',
          default: true,
          description:
            'Verify the receiver certificate. Turn off only for tests; a warning is logged at startup.',
        },
      },
    },
    remoteReference: {
      description:
        "Where the receiver's id for the delivered message is read from. When the answer has none there, the message still counts as delivered, without a reference, and a warning is logged.",
      default: { header: 'Location' },
      oneOf: [
        {
          type: 'object',
          description: 'A response header.',
          additionalProperties: false,
          required: ['header'],
          properties: { header: { ...nonEmpty, description: 'Header name, e.g. `Location`.' } },
        },
        {
          type: 'object',
          description: 'A value in the JSON response body.',
          additionalProperties: false,
          required: ['jsonPointer'],
          properties: {
            jsonPointer: {
              type: 'string',
              pattern: '^(/.*)?$',
              description: 'RFC 6901 pointer into the JSON answer, e.g. `/id`.',
            },
          },
        },
      ],
    },
    attachments: {
      enum: ['omit', 'multipart'],
      default: 'omit',
      description:
        '`omit`: send only the message body. `multipart`: multipart/form-data with the body as part `message` and each attachment streamed as a file part `attachment`.',
    },
  },
} as const;

export const httpExample: HttpAdapterConfig = {
  url: 'https://gewerbe.fachverfahren.stadt-musterstadt.de/api/v2/antraege/{deliveryId}',
  method: 'PUT',
  headers: { 'X-Mandant': '053150000000' },
  timeout: '30s',
  auth: {
    type: 'oauth2',
    tokenUrl: 'https://sso.stadt-musterstadt.de/realms/fachverfahren/protocol/openid-connect/token',
    clientId: 'amtsbote',
    clientSecret: '${GEWERBE_CLIENT_SECRET}',
  },
  tls: { ca: '/etc/amtsbote/tls/stadt-ca.pem', rejectUnauthorized: true },
  remoteReference: { jsonPointer: '/vorgangsnummer' },
  attachments: 'multipart',
};

export const httpAdapter = defineAdapter<HttpAdapterConfig>({
  type: 'http',
  version: '1.0.0',
  description:
    'Delivers messages to a REST endpoint (POST/PUT) with idempotency key, auth, TLS and attachments.',
  capabilities: { outbound: true, inbound: false, poll: false },
  configSchema: httpConfigSchema,
  secrets: ['/auth/token', '/auth/password', '/auth/clientSecret'],
  example: httpExample,
  create: (context, config) => createHttpDelivery(context, config),
});
