/**
 * Configuration of an `xta2` adapter instance: JSON Schema (single source for `amtsbote check`,
 * README table and the example test), TypeScript shape, defaults and the documented example.
 */
import type { JsonSchema } from '../../src/adapter-contract.js';
import { ARS_PATTERN, LEISTUNGSSCHLUESSEL_PATTERN } from '../../src/domain.js';

export type Duration = number | string;

export interface PartyConfig {
  /** `prefix:kennung`, e.g. `dvdv:…`, `psw:05515000`. */
  readonly identifier: string;
  readonly type?: string;
  readonly name?: string;
  readonly category?: string;
}

export interface CodeConfig {
  readonly code: string;
  readonly listURI: string;
  readonly listVersionID: string;
  readonly name?: string;
}

export interface InboundRoute {
  readonly service?: string;
  readonly messageType?: string;
  readonly businessScenario?: string;
  readonly author?: string;
  readonly ars: string;
  readonly leistungsschluessel: string;
  readonly channel?: string;
}

export interface Xta2Config {
  readonly endpoints: { readonly management: string; readonly send: string; readonly msgBox: string };
  readonly tls: {
    readonly cert: string;
    readonly key: string;
    readonly ca?: string;
    readonly passphrase?: string;
  };
  readonly author: PartyConfig;
  readonly reader: PartyConfig;
  readonly service: string;
  readonly businessScenario: CodeConfig | { readonly undefined: string };
  readonly messageType: CodeConfig & { readonly payloadSchema: string };
  readonly subject?: string;
  readonly testMessage?: boolean;
  readonly messageIdSource?: 'createMessageId' | 'deliveryId';
  readonly payloadFilename?: string;
  readonly timeout?: Duration;
  readonly inbound?: { readonly batchSize?: number; readonly routes: readonly InboundRoute[] };
  readonly statusPolling?: { readonly enabled?: boolean; readonly batchSize?: number };
}

const url = { type: 'string', pattern: '^https?://' } as const;

const party = {
  type: 'object',
  additionalProperties: false,
  required: ['identifier'],
  properties: {
    identifier: {
      type: 'string',
      pattern: '^[^:\\s]+:\\S+$',
      description:
        'Party identifier in `prefix:kennung` form, e.g. `dvdv:…` or a Behördenkennung `psw:05515000`.',
    },
    type: {
      type: 'string',
      minLength: 1,
      default: 'xoev',
      description: 'How to read the identifier (OSCI `type`).',
    },
    name: { type: 'string', minLength: 1, description: 'Display name.' },
    category: { type: 'string', minLength: 1, description: 'Role in the scenario, e.g. `Gewerbeamt`.' },
  },
} as const;

const code = {
  type: 'object',
  additionalProperties: false,
  required: ['code', 'listURI', 'listVersionID'],
  properties: {
    code: { type: 'string', minLength: 1 },
    listURI: { type: 'string', minLength: 1, description: 'Code list URI.' },
    listVersionID: { type: 'string', minLength: 1, description: 'Code list version.' },
    name: { type: 'string', minLength: 1, description: 'Code text.' },
  },
} as const;

export const xta2ConfigSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['endpoints', 'tls', 'author', 'reader', 'service', 'businessScenario', 'messageType'],
  properties: {
    endpoints: {
      type: 'object',
      additionalProperties: false,
      required: ['management', 'send', 'msgBox'],
      description: 'URLs of the three XTA 2 ports of the provider (XTA server).',
      properties: {
        management: { ...url, description: 'ManagementPort: createMessageId, getTransportReport.' },
        send: { ...url, description: 'SendXtaPort: sendMessage.' },
        msgBox: { ...url, description: 'MsgBoxPort: getStatusList, getMessage, close.' },
      },
    },
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['cert', 'key'],
      description: 'Client certificate of the XTA account (PEM files); the XTA server authenticates by it.',
      properties: {
        cert: {
          type: 'string',
          minLength: 1,
          description: 'Client certificate (PEM, may include the chain).',
        },
        key: { type: 'string', minLength: 1, description: 'Its private key (PEM).' },
        ca: {
          type: 'string',
          minLength: 1,
          description: "CA certificate(s) for the XTA server's certificate; default: system CAs.",
        },
        passphrase: { type: 'string', description: 'Secret: passphrase of an encrypted key.' },
      },
    },
    author: { ...party, description: 'This gateway as OSCI Author (and the msgBox account it reads).' },
    reader: { ...party, description: 'The destination (OSCI Reader) of outgoing messages.' },
    service: { type: 'string', minLength: 1, description: 'Qualifier/Service: the XÖV "Dienste-URI".' },
    businessScenario: {
      description: 'Qualifier/BusinessScenario: a code from a list (`Defined`) or `{undefined: text}`.',
      oneOf: [
        code,
        {
          type: 'object',
          additionalProperties: false,
          required: ['undefined'],
          properties: { undefined: { type: 'string', minLength: 1 } },
        },
      ],
    },
    messageType: {
      type: 'object',
      additionalProperties: false,
      required: ['code', 'listURI', 'listVersionID', 'payloadSchema'],
      description: 'Qualifier/MessageType of outgoing messages, with the payload schema (namespace) URI.',
      properties: {
        ...code.properties,
        payloadSchema: { type: 'string', minLength: 1, description: 'Namespace/schema URI of the payload.' },
      },
    },
    subject: { type: 'string', minLength: 1, description: 'Qualifier/Subject (informational).' },
    testMessage: {
      type: 'boolean',
      default: false,
      description: 'Marks outgoing messages as test messages (TestMsg).',
    },
    messageIdSource: {
      enum: ['createMessageId', 'deliveryId'],
      default: 'createMessageId',
      description:
        '`createMessageId` asks the server for every new attempt; `deliveryId` derives `urn:de:xta:messageid:amtsbote:<deliveryId>`, so a repeat after a lost answer is recognised (error 9024) instead of sent twice — only if the provider accepts client-made ids.',
    },
    payloadFilename: {
      type: 'string',
      minLength: 1,
      description: 'Filename attribute of the message content (xdomea requires one).',
    },
    timeout: {
      oneOf: [
        { type: 'integer', minimum: 1 },
        { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' },
      ],
      default: '60s',
      description: 'Timeout of each XTA call.',
    },
    inbound: {
      type: 'object',
      additionalProperties: false,
      required: ['routes'],
      description: 'Fetch messages from the msgBox on every poll and hand them to the pipeline.',
      properties: {
        batchSize: {
          type: 'integer',
          minimum: 1,
          maximum: 500,
          default: 50,
          description: 'Messages per poll.',
        },
        routes: {
          type: 'array',
          minItems: 1,
          description:
            "Lookup table from a message's metadata to (ARS, Leistungsschlüssel); the first entry whose given fields all match wins.",
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['ars', 'leistungsschluessel'],
            properties: {
              service: { type: 'string', minLength: 1, description: 'Matches Qualifier/Service.' },
              messageType: { type: 'string', minLength: 1, description: 'Matches the MessageType code.' },
              businessScenario: {
                type: 'string',
                minLength: 1,
                description: 'Matches the BusinessScenario code.',
              },
              author: { type: 'string', minLength: 1, description: "Matches the author's identifier." },
              ars: {
                type: 'string',
                pattern: ARS_PATTERN,
                description: 'ARS of the receiving authority (12 digits).',
              },
              leistungsschluessel: {
                type: 'string',
                pattern: LEISTUNGSSCHLUESSEL_PATTERN,
                description: 'Leistungsschlüssel.',
              },
              channel: { type: 'string', minLength: 1, description: 'Channel for routing.' },
            },
          },
        },
      },
    },
    statusPolling: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Ask getTransportReport on every poll for delivered messages without a final status.',
      properties: {
        enabled: { type: 'boolean', default: true },
        batchSize: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
      },
    },
  },
};

export const xta2ExampleConfig: Xta2Config = {
  endpoints: {
    management: 'https://xta.regio-it.example/xta/ManagementPort',
    send: 'https://xta.regio-it.example/xta/SendXtaPort',
    msgBox: 'https://xta.regio-it.example/xta/MsgBoxPort',
  },
  tls: {
    cert: 'config/tls/xta-client.crt',
    key: 'config/tls/xta-client.key',
    ca: 'config/tls/xta-server-ca.crt',
    passphrase: '${XTA_KEY_PASSPHRASE}',
  },
  author: { identifier: 'dvdv:055150000000-ozg', type: 'xoev', name: 'Stadt Münster, Online-Dienste' },
  reader: { identifier: 'dvdv:055150000000-gewerbe', type: 'xoev', name: 'Stadt Münster, Gewerbeamt' },
  service: 'urn:xoev-de:bmwk:standard:xgewerbeanzeige',
  businessScenario: {
    code: 'XGEWERBEANZEIGE_DATA',
    listURI: 'urn:de:dataport:codeliste:business.scenario',
    listVersionID: '1',
  },
  messageType: {
    code: 'gewerbeanzeige.anmeldung.0100',
    listURI: 'urn:de:xgewerbeanzeige:codeliste:nachrichtentyp',
    listVersionID: '1.3',
    payloadSchema: 'http://www.xgewerbeanzeige.de/spezifikation/1.3',
  },
  messageIdSource: 'createMessageId',
  timeout: '60s',
  inbound: {
    batchSize: 50,
    routes: [
      {
        service: 'urn:xoev-de:bmwk:standard:xgewerbeanzeige',
        messageType: 'gewerbeanzeige.anmeldung.0100',
        ars: '055150000000',
        leistungsschluessel: '99050012104000',
      },
    ],
  },
  statusPolling: { enabled: true, batchSize: 50 },
};
