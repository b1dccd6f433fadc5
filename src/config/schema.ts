/**
 * The core's part of the configuration schema. `composeSchema` adds one branch per installed
 * adapter type from its manifest, so `adapters.<id>.config` is checked against that adapter's own
 * schema. The composed schema is what `amtsbote config schema` prints.
 */
import type { AdapterManifest, JsonSchema } from '../adapter-contract.js';
import { ARS_PATTERN, ARS_PREFIX_PATTERN, LEISTUNGSSCHLUESSEL_PATTERN } from '../domain.js';
import { BUILTIN_JOB_NAMES, BUILTIN_JOB_OPTIONS } from '../scheduler/builtin/options.js';
import { CITIZEN_STATUSES } from '../status/model.js';

const id = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } as const;
const duration = {
  description: 'A duration: a number of milliseconds or a string like `500ms`, `30s`, `5m`, `2h`, `7d`.',
  oneOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: '^[0-9]+(ms|s|m|h|d)$' },
  ],
} as const;
const byteSize = {
  description: 'A size: a number of bytes or a string like `512kb`, `10mb`, `1gb`.',
  oneOf: [
    { type: 'integer', minimum: 1 },
    { type: 'string', pattern: '^[0-9]+(b|kb|mb|gb)$' },
  ],
} as const;

export const retrySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    maxAttempts: { type: 'integer', minimum: 1, maximum: 1000, default: 12 },
    initialDelay: { ...duration, default: '2s' },
    maxDelay: { ...duration, default: '1h' },
    multiplier: { type: 'number', minimum: 1, maximum: 10, default: 2 },
    jitter: { type: 'number', minimum: 0, maximum: 1, default: 0.2 },
  },
} as const;

/** The same fields without defaults, so a route overrides only what it names. */
const routeRetrySchema = {
  ...retrySchema,
  properties: Object.fromEntries(
    Object.entries(retrySchema.properties).map(([name, field]) => {
      const { default: _default, ...rest } = field as Record<string, unknown>;
      return [name, rest];
    }),
  ),
};

/** Verified citizen identity (Servicekonto.NRW / BundID SAML), see docs/identity.md. */
const identitySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['idps', 'audience'],
  properties: {
    idps: {
      type: 'array',
      minItems: 1,
      description: 'Identity providers whose logins are accepted.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['metadata'],
        properties: {
          metadata: {
            type: 'string',
            minLength: 1,
            description: 'SAML metadata file of the IdP; relative paths are below the configuration file.',
          },
        },
      },
    },
    audience: { type: 'string', minLength: 1, description: 'Our SP entity ID, as registered with the IdPs.' },
    recipient: {
      type: 'string',
      minLength: 1,
      description: "The portal's ACS URL; when set, assertions must be addressed to it.",
    },
    clockSkew: { ...duration, default: '2m' },
    spDecryptionKey: {
      description:
        'PEM file with the SP private key for encrypted assertions (a list during a key rollover); relative paths are below the configuration file.',
      oneOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
      ],
    },
  },
} as const;

/** Scheduled jobs (docs/jobs.md): a cron schedule, what to run and the policies around it. */
const jobSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'schedule', 'run'],
  properties: {
    name: id,
    schedule: {
      type: 'string',
      minLength: 1,
      description: 'Cron expression (5 fields, or 6 with seconds first), read in `timezone`.',
    },
    timezone: { type: 'string', default: 'Europe/Berlin', description: 'IANA time zone of the schedule.' },
    run: {
      oneOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['builtin'],
          properties: { builtin: { enum: BUILTIN_JOB_NAMES, description: 'A built-in job.' } },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['adapter', 'task'],
          properties: {
            adapter: {
              ...id,
              description:
                'Adapter instance id; its adapter must offer the task (capability poll or refresh).',
            },
            task: {
              enum: ['poll', 'refresh'],
              description:
                'poll: inbox and status of the instance; refresh: re-read the routing and destination data it keeps.',
            },
          },
        },
      ],
    },
    overlap: {
      enum: ['skip', 'queue'],
      default: 'skip',
      description: 'An occurrence while the previous run still runs: record it skipped, or run it after.',
    },
    missed: {
      enum: ['skip', 'run-once'],
      default: 'skip',
      description:
        'Occurrences missed while no instance ran: record the latest skipped, or run it once at start.',
    },
    timeout: { ...duration, default: '5m' },
    options: { type: 'object', description: 'Options of the built-in job.' },
  },
  allOf: [
    ...Object.entries(BUILTIN_JOB_OPTIONS).map(([name, options]) => ({
      if: {
        required: ['run'],
        properties: { run: { required: ['builtin'], properties: { builtin: { const: name } } } },
      },
      then: {
        ...('required' in options ? { required: ['options'] } : {}),
        properties: { options },
      },
    })),
    {
      if: { required: ['run'], properties: { run: { required: ['adapter'] } } },
      then: { not: { required: ['options'] } },
    },
  ],
} as const;

export const coreSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://amtsbote.de/schema/gateway.json',
  title: 'amtsbote gateway configuration',
  type: 'object',
  additionalProperties: false,
  required: ['tenants', 'clients', 'adapters', 'routes'],
  properties: {
    server: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
        bodyLimit: { ...byteSize, default: '1mb' },
        attachmentLimit: { ...byteSize, default: '50mb' },
        requestTimeout: { ...duration, default: '60s' },
      },
    },
    dataDir: {
      type: 'string',
      default: 'data',
      description: 'Directory for the embedded store, attachments and adapter files.',
    },
    store: {
      type: 'object',
      required: ['type'],
      properties: { type: { enum: ['sqlite', 'postgres'] } },
      oneOf: [
        {
          additionalProperties: false,
          properties: {
            type: { const: 'sqlite' },
            path: { type: 'string', description: 'Database file; relative paths are below dataDir.' },
          },
        },
        {
          additionalProperties: false,
          required: ['url'],
          properties: {
            type: { const: 'postgres' },
            url: { type: 'string', description: 'postgres://user:password@host:port/db' },
            poolSize: { type: 'integer', minimum: 1, maximum: 200 },
          },
        },
      ],
    },
    tenants: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'name', 'ars'],
        properties: {
          id,
          name: { type: 'string', minLength: 1 },
          ars: {
            type: 'string',
            pattern: ARS_PATTERN,
            description: 'Amtlicher Regionalschlüssel, 12 digits (quote it in YAML).',
          },
        },
      },
    },
    clients: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'keyHash'],
        properties: {
          id,
          name: { type: 'string' },
          keyHash: {
            type: 'string',
            pattern: '^sha256:[0-9a-f]{64}$',
            description: 'sha256:<hex> of the API key (`amtsbote hash-key`).',
          },
          tenants: {
            type: 'array',
            items: id,
            description: 'Tenant ids this client may submit for and read.',
          },
          admin: { type: 'boolean', default: false, description: 'May use the admin API (all tenants).' },
          statusReporter: {
            description:
              'A Fachverfahren: may report statuses of delivered applications of its tenants at `POST /api/v1/status`. `true` for applications of every adapter instance, or a list of the adapter instances whose applications it may report on.',
            default: false,
            oneOf: [{ type: 'boolean' }, { type: 'array', items: id, minItems: 1, uniqueItems: true }],
          },
          webhook: {
            type: 'object',
            additionalProperties: false,
            required: ['url', 'secret'],
            description:
              "Every citizen-status change of this client's applications is POSTed here, signed with `X-Amtsbote-Signature` (docs/status.md).",
            properties: {
              url: { type: 'string', pattern: '^https?://[^\\s]+$', description: 'The portal endpoint.' },
              secret: {
                type: 'string',
                minLength: 16,
                description: 'HMAC-SHA256 key, at least 16 characters; write it as `${ENV}` or `${file:…}`.',
              },
            },
          },
        },
      },
    },
    adapters: {
      type: 'object',
      description: 'Adapter instances by id.',
      propertyNames: id,
      additionalProperties: { $ref: '#/$defs/adapterInstance' },
    },
    routes: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'ars', 'service', 'adapter'],
        properties: {
          id,
          ars: {
            type: 'string',
            pattern: ARS_PREFIX_PATTERN,
            description: 'ARS or a prefix of 2, 3, 5 or 9 digits; the longest matching prefix wins.',
          },
          service: { type: 'string', pattern: LEISTUNGSSCHLUESSEL_PATTERN },
          channel: {
            type: 'string',
            description: 'Optional channel; a route with a matching channel beats one without.',
          },
          adapter: { ...id, description: 'Adapter instance id (key under `adapters:`).' },
          mapping: {
            type: 'string',
            description: 'Mapping id; without one the JSON application passes through.',
          },
          statusMapping: {
            type: 'string',
            description:
              "Status mapping file: the receiver's raw statuses → citizen status and German text. Without one, only the FIT-Connect delivery states are mapped.",
          },
          postbox: {
            type: 'object',
            additionalProperties: false,
            required: ['adapter'],
            description: "Sends a notice to the citizen's postbox on every citizen-status change.",
            properties: {
              adapter: {
                ...id,
                description:
                  'The instance that carries the notices (key under `adapters:`): a `postbox` instance (REST postbox API), or a `fit-connect` instance with `sending.postbox` (the federal postbox through FIT-Connect).',
              },
              subject: { type: 'string', minLength: 1, description: 'Subject template of the notice.' },
              templates: {
                type: 'object',
                description:
                  'Notice text per citizen status (RECEIVED, PROCESSING …); default: the citizen text.',
                propertyNames: { enum: [...CITIZEN_STATUSES] },
                additionalProperties: { type: 'string', minLength: 1 },
              },
            },
          },
          minTrustLevel: {
            enum: ['basis', 'substantiell', 'hoch'],
            description: 'The trust level of the citizen login this service requires (needs `identity`).',
          },
          retry: {
            ...routeRetrySchema,
            description: 'Overrides fields of the global retry policy for this route.',
          },
        },
      },
    },
    retry: retrySchema,
    identity: identitySchema,
    jobs: { type: 'array', items: jobSchema },
    pipeline: {
      type: 'object',
      additionalProperties: false,
      properties: {
        concurrency: {
          type: 'integer',
          minimum: 1,
          maximum: 1024,
          default: 64,
          description: 'Deliveries in flight at once in this instance.',
        },
        batchSize: {
          type: 'integer',
          minimum: 1,
          maximum: 1000,
          default: 100,
          description:
            'Most messages one claim takes. While deliveries are in flight, a claim waits until a quarter of the slots (at most a batch) are free.',
        },
        lease: { ...duration, default: '2m' },
        pollInterval: { ...duration, default: '250ms' },
        deliveryTimeout: { ...duration, default: '30s' },
        drainTimeout: { ...duration, default: '30s' },
        mappingThreads: {
          type: 'integer',
          minimum: 0,
          maximum: 64,
          description:
            'Worker threads that run mappings and XSD validation beside the main thread; 0 maps on the main thread. Default: min(2, CPU cores − 1).',
        },
      },
    },
    logging: {
      type: 'object',
      additionalProperties: false,
      properties: { level: { enum: ['error', 'warn', 'info', 'debug'], default: 'info' } },
    },
  },
  $defs: {},
} as const;

/** Adds one `adapterInstance` branch per manifest; an unknown `type` is an error naming the known ones. */
export function composeSchema(manifests: readonly AdapterManifest[]): JsonSchema {
  const branches = manifests.map((m) => ({
    if: { properties: { type: { const: m.type } } },
    then: {
      properties: { config: m.configSchema },
    },
  }));
  const adapterInstance = {
    type: 'object',
    additionalProperties: false,
    required: ['type'],
    properties: {
      type:
        manifests.length > 0
          ? { enum: manifests.map((m) => m.type), description: 'Adapter type.' }
          : { not: {}, description: 'No adapter is installed.' },
      config: { type: 'object' },
    },
    ...(branches.length > 0 ? { allOf: branches } : {}),
  };
  return { ...coreSchema, $defs: { adapterInstance } };
}
