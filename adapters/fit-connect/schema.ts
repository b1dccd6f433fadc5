/** JSON Schema of a FIT-Connect instance's `config:` block (the manifest's single source of options). */
import { ARS_PATTERN, LEISTUNGSSCHLUESSEL_PATTERN } from '../../src/domain.js';
import { CITIZEN_STATUSES } from '../../src/status/model.js';
import { POSTBOX_STATUSES } from '../../src/status/notify.js';
import { DEFAULTS } from './config.js';
import { DEFAULT_POSTBOX_SERVICE_NAME, UNCONFIRMED_POSTBOX_SCHEMA_URI } from './postbox.js';

const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const url = { type: 'string', pattern: '^https?://' } as const;
const duration = {
  description: 'A duration: milliseconds, or a string like `30s`, `5m`, `1h`.',
  oneOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: '^[0-9]+(ms|s|m|h|d)$' },
  ],
} as const;
const byteSize = {
  description: 'A size: bytes, or a string like `512kb`, `10mb`.',
  oneOf: [
    { type: 'integer', minimum: 1 },
    { type: 'string', pattern: '^[0-9]+(b|kb|mb|gb)$' },
  ],
} as const;

export const fitConnectConfigSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['submissionApiUrl', 'tokenUrl', 'clientId', 'clientSecret'],
  properties: {
    submissionApiUrl: {
      ...url,
      description:
        'Base URL of the Zustelldienst (Submission API) without version, e.g. https://submission-api-testing.fit-connect.fitko.dev.',
    },
    apiVersion: {
      type: 'string',
      pattern: '^v[0-9]+$',
      default: DEFAULTS.apiVersion,
      description: 'Path prefix of the Submission API version.',
    },
    tokenUrl: {
      ...url,
      description:
        'OAuth2 token endpoint (client credentials), e.g. https://auth-testing.fit-connect.fitko.dev/token.',
    },
    clientId: {
      type: 'string',
      minLength: 1,
      description: 'API client id from the FIT-Connect self-service portal.',
    },
    clientSecret: {
      type: 'string',
      minLength: 1,
      description: 'API client secret (use `${ENV}` or `${file:…}`).',
    },
    jwksUrl: {
      ...url,
      description:
        "JWKS of the Zustelldienst's event-log signing keys; defaults to `<submissionApiUrl>/.well-known/jwks.json`.",
    },
    routingApiUrl: {
      ...url,
      description:
        'Routing API base, e.g. https://routing-api-testing.fit-connect.fitko.dev/v1; used when no destinationId is set.',
    },
    routingJwksUrl: {
      ...url,
      description:
        'JWKS that signs routing data; when set, every route must carry a valid destinationSignature.',
    },
    requestTimeout: { ...duration, default: DEFAULTS.requestTimeout },
    sending: {
      type: 'object',
      additionalProperties: false,
      description: 'Sending to an EfA destination.',
      dependentRequired: { postbox: ['destinationId'] },
      properties: {
        destinationId: {
          type: 'string',
          pattern: UUID_PATTERN,
          description: 'Fixed destination; without it the Routing API finds one by tenant ARS and service.',
        },
        metadataVersion: {
          type: 'string',
          pattern: '^1\\.[0-9]+\\.[0-9]+$',
          default: DEFAULTS.metadataVersion,
          description: 'Metadata schema version (1.x.y) written into `$schema`.',
        },
        services: {
          type: 'object',
          description: 'Per Leistungsschlüssel: the service name announced and the Fachdaten schema URI.',
          propertyNames: { pattern: LEISTUNGSSCHLUESSEL_PATTERN },
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            properties: {
              name: { type: 'string', minLength: 1 },
              schemaUri: { type: 'string', minLength: 1 },
            },
          },
        },
        routeCacheTtl: { ...duration, default: DEFAULTS.routeCacheTtl },
        keyCacheTtl: { ...duration, default: DEFAULTS.keyCacheTtl },
        trustAnchorFile: {
          type: 'string',
          description:
            'PEM file with the root certificate(s) destination keys must chain to (x5c); unchecked when absent.',
        },
        maxAttachmentSize: { ...byteSize, default: DEFAULTS.sendingMaxAttachmentSize },
        replyChannel: {
          type: 'object',
          description: 'Metadata `replyChannel` offered to every receiver, e.g. `{ eMail: { address: … } }`.',
        },
        identificationReport: {
          type: 'object',
          additionalProperties: false,
          required: ['signingKeyFile', 'issuer'],
          description:
            'Signs an identification report (JWT) for metadata `authenticationInformation` when a delivery carries ' +
            "the citizen's verified identity; without it none is sent.",
          properties: {
            signingKeyFile: {
              type: 'string',
              description:
                'JWK file with the private RSA signing key (kid; alg PS512 (default), PS256, RS512 or RS256).',
            },
            issuer: {
              type: 'string',
              minLength: 1,
              description: 'JWT `iss` of the report: who vouches for it, e.g. the gateway’s URL.',
            },
            subject: {
              enum: ['names', 'none'],
              default: 'names',
              description: '`subjectRef` of the report: the verified given and family name, or nothing.',
            },
          },
        },
        postbox: {
          type: 'object',
          additionalProperties: false,
          description:
            "Makes this instance carry citizen status notices (a route's `postbox.adapter`) to the citizen postbox's " +
            'destination (`destinationId`, required then) as JSON Fachdaten; it then sends nothing else.',
          properties: {
            serviceIdentifier: {
              type: 'string',
              pattern: '^urn:[^\\s]+$',
              description:
                '`serviceType.identifier` announced for a notice; default: the Leistungsschlüssel URN of the application the notice is about.',
            },
            serviceName: {
              type: 'string',
              minLength: 1,
              default: DEFAULT_POSTBOX_SERVICE_NAME,
              description: '`serviceType.name` announced for a notice.',
            },
            schemaUri: {
              type: 'string',
              minLength: 1,
              description: `Fachdaten \`schemaUri\` of a notice; default: the JSON schema the destination declares for the service, else \`${UNCONFIRMED_POSTBOX_SCHEMA_URI}\`.`,
            },
            statusValues: {
              type: 'object',
              description:
                'The postbox status sent for each citizen status. Unlisted statuses are sent as they are, except REJECTED, which becomes COMPLETED: the federal postbox knows no rejected state.',
              propertyNames: { enum: [...CITIZEN_STATUSES] },
              additionalProperties: { enum: [...POSTBOX_STATUSES] },
            },
            sender: {
              type: 'string',
              minLength: 1,
              description:
                'Sent as `sender` in every notice (e.g. the authority’s name); omitted when not set.',
            },
            requirePseudonym: {
              type: 'boolean',
              default: false,
              description:
                'Reject notices for applications without a verified citizen identity (no bPK2 pseudonym) instead of addressing them by the portal reference.',
            },
          },
        },
      },
    },
    status: {
      type: 'object',
      additionalProperties: false,
      description: 'Polling the event log of delivered submissions for forwarded/accepted/rejected.',
      properties: {
        enabled: { type: 'boolean', default: false },
        batchSize: { type: 'integer', minimum: 1, maximum: 500, default: DEFAULTS.statusBatchSize },
      },
    },
    receiving: {
      type: 'object',
      additionalProperties: false,
      required: ['destinations'],
      description: "Receiving for the city's own destinations.",
      properties: {
        destinations: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['destinationId', 'ars', 'decryptionKeyFile', 'signingKeyFile'],
            properties: {
              destinationId: { type: 'string', pattern: UUID_PATTERN },
              ars: {
                type: 'string',
                pattern: ARS_PATTERN,
                description: 'ARS of the receiving authority (quote it in YAML).',
              },
              decryptionKeyFile: {
                type: 'string',
                description: 'JWK file with the private decryption key (kid, RSA-OAEP-256).',
              },
              signingKeyFile: {
                type: 'string',
                description: 'JWK file with the private signing key (kid, PS512).',
              },
            },
          },
        },
        dataSchemas: {
          type: 'object',
          description:
            'JSON Schema file per Fachdaten schemaUri; JSON Fachdaten with a listed URI are validated.',
          additionalProperties: { type: 'string' },
        },
        maxAttachmentSize: { ...byteSize, default: DEFAULTS.receivingMaxAttachmentSize },
        batchSize: { type: 'integer', minimum: 1, maximum: 500, default: DEFAULTS.receivingBatchSize },
        callbackSecret: {
          type: 'string',
          minLength: 16,
          description: 'Callback secret set for the destinations in the portal.',
        },
      },
    },
  },
} as const;
