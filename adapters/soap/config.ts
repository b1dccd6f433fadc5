/**
 * Configuration of a `soap` adapter instance: its JSON Schema (the single source for `amtsbote
 * check`, the README table and the example test), the TypeScript shape and the defaults.
 */
import type { JsonSchema } from '../../src/adapter-contract.js';

export type Duration = number | string;

export interface UsernameTokenConfig {
  readonly username: string;
  readonly password: string;
  readonly passwordType?: 'PasswordText' | 'PasswordDigest';
  readonly timestamp?: boolean;
}

export interface TlsConfig {
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
  readonly passphrase?: string;
}

export type DeliveryIdHeaderConfig =
  | { readonly kind: 'ws-addressing' }
  | { readonly kind: 'element'; readonly name: string; readonly namespace: string }
  | { readonly kind: 'none' };

export interface FaultRules {
  readonly retry?: readonly string[];
  readonly permanent?: readonly string[];
  readonly default?: 'retry' | 'permanent';
}

export interface StatusCallbackElements {
  readonly remoteReference?: string;
  readonly deliveryId?: string;
  readonly status?: string;
  readonly text?: string;
  readonly time?: string;
  readonly acknowledgement?: string;
}

export interface StatusCallbackConfig {
  readonly wsdl: string;
  readonly service?: string;
  readonly port?: string;
  readonly operation?: string;
  readonly elements?: StatusCallbackElements;
  readonly usernameToken: { readonly username: string; readonly password: string };
}

export const DEFAULT_STATUS_ELEMENTS: Required<StatusCallbackElements> = {
  remoteReference: 'vorgangsnummer',
  deliveryId: 'referenz',
  status: 'status',
  text: 'text',
  time: 'zeitpunkt',
  acknowledgement: 'quittung',
};

export interface SoapAdapterConfig {
  readonly wsdl: string;
  readonly service?: string;
  readonly port?: string;
  readonly operation: string;
  readonly endpoint?: string;
  readonly soapVersion?: '1.1' | '1.2';
  readonly timeout?: Duration;
  readonly xmlBody?: 'element' | 'content';
  readonly usernameToken?: UsernameTokenConfig;
  readonly tls?: TlsConfig;
  readonly deliveryIdHeader?: DeliveryIdHeaderConfig;
  readonly faults?: FaultRules;
  readonly tlsFailure?: 'retry' | 'permanent';
  readonly remoteReference?: string;
  readonly attachments?: 'mtom' | 'omit';
  readonly statusCallback?: StatusCallbackConfig;
}

export const DEFAULT_RETRY_FAULTS: readonly string[] = ['soap:Server', 'soap:Receiver'];

const duration = {
  oneOf: [
    { type: 'integer', minimum: 1 },
    { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' },
  ],
} as const;

const elementName = (description: string, fallback: string) =>
  ({
    type: 'string',
    pattern: '^[A-Za-z_][A-Za-z0-9_.-]*$',
    default: fallback,
    description,
  }) as const;

const patternList = {
  type: 'array',
  items: { type: 'string', minLength: 1 },
  uniqueItems: true,
} as const;

export const soapConfigSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['wsdl', 'operation'],
  properties: {
    wsdl: {
      type: 'string',
      minLength: 1,
      description:
        'Path of the local WSDL file (relative paths resolve against the configuration file). Imported XSDs are read relative to it.',
    },
    service: { type: 'string', minLength: 1, description: 'WSDL service name; default: the first service.' },
    port: { type: 'string', minLength: 1, description: 'Port of that service; default: its first port.' },
    operation: { type: 'string', minLength: 1, description: 'Operation called for every delivery.' },
    endpoint: {
      type: 'string',
      pattern: '^https?://',
      description: "Endpoint URL; overrides the WSDL's soap:address.",
    },
    soapVersion: {
      enum: ['1.1', '1.2'],
      default: '1.1',
      description: 'SOAP envelope version the binding uses (soap12 bindings: 1.2).',
    },
    timeout: {
      ...duration,
      default: '30s',
      description:
        'How long to wait for the answer (a number of ms or `500ms`, `30s`, `2m`); then the delivery is retried.',
    },
    xmlBody: {
      enum: ['element', 'content'],
      default: 'element',
      description:
        "For XML bodies: `element` — the mapping produced the SOAP body's child element (the operation's request element) and it is sent as is; `content` — the mapping produced that element's content and the adapter wraps it.",
    },
    usernameToken: {
      type: 'object',
      additionalProperties: false,
      required: ['username', 'password'],
      description: 'WS-Security UsernameToken sent with every call.',
      properties: {
        username: { type: 'string', minLength: 1 },
        password: { type: 'string', minLength: 1, description: 'Secret: use `${ENV}` or a secret file.' },
        passwordType: {
          enum: ['PasswordText', 'PasswordDigest'],
          default: 'PasswordDigest',
          description:
            '`PasswordDigest` sends Base64(SHA-1(nonce + created + password)) instead of the password.',
        },
        timestamp: {
          type: 'boolean',
          default: true,
          description: 'Adds a wsu:Timestamp (valid 10 minutes).',
        },
      },
    },
    tls: {
      type: 'object',
      additionalProperties: false,
      dependentRequired: { cert: ['key'], key: ['cert'] },
      description:
        'TLS settings for https endpoints (PEM files): the client certificate and the CA to trust.',
      properties: {
        cert: {
          type: 'string',
          minLength: 1,
          description: 'Client certificate (PEM, may include the chain).',
        },
        key: { type: 'string', minLength: 1, description: 'Private key of the client certificate (PEM).' },
        ca: {
          type: 'string',
          minLength: 1,
          description:
            "CA certificate(s) that sign the receiver's server certificate; default: the system CAs.",
        },
        passphrase: { type: 'string', description: 'Secret: passphrase of an encrypted key.' },
      },
    },
    deliveryIdHeader: {
      description:
        'How the delivery id (stable across retries) travels so the receiver can drop duplicates: as WS-Addressing MessageID `urn:uuid:<deliveryId>` (with Action and To), as a custom SOAP header element, or not at all.',
      default: { kind: 'ws-addressing' },
      oneOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind'],
          properties: { kind: { const: 'ws-addressing' } },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind', 'name', 'namespace'],
          properties: {
            kind: { const: 'element' },
            name: {
              type: 'string',
              pattern: '^[A-Za-z_][A-Za-z0-9_.-]*$',
              description: 'Local name of the header element.',
            },
            namespace: { type: 'string', minLength: 1, description: 'Namespace URI of the header element.' },
          },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind'],
          properties: { kind: { const: 'none' } },
        },
      ],
    },
    faults: {
      type: 'object',
      additionalProperties: false,
      description:
        'How SOAP faults are classified. A pattern (`*` = any characters) matches the fault code (`soap:Server`, `soap:Client`; SOAP 1.2 Receiver/Sender count as Server/Client), a subcode, an application code by local name, the fault string, or the local name of a detail element. `permanent` is checked first, then `retry`, then `default` applies.',
      properties: {
        retry: {
          ...patternList,
          default: DEFAULT_RETRY_FAULTS,
          description: 'Faults a later attempt may overcome.',
        },
        permanent: {
          ...patternList,
          default: [],
          description: 'Faults no retry will fix; they win over `retry`.',
        },
        default: {
          enum: ['retry', 'permanent'],
          default: 'permanent',
          description: 'For faults no pattern matches.',
        },
      },
    },
    tlsFailure: {
      enum: ['retry', 'permanent'],
      default: 'retry',
      description:
        'TLS handshake failures (certificate refused, unknown CA, expired certificate): `retry` keeps messages queued until the certificates are fixed; `permanent` dead-letters them at once.',
    },
    remoteReference: {
      type: 'string',
      pattern: '^[A-Za-z_][A-Za-z0-9_-]*(\\.[A-Za-z_][A-Za-z0-9_-]*|\\[[0-9]+\\])*$',
      description:
        "Path into the operation result whose value is the receiver's reference, e.g. `vorgangsnummer` or `ergebnis.vorgang.nummer`.",
    },
    attachments: {
      enum: ['mtom', 'omit'],
      default: 'omit',
      description:
        '`mtom`: attachments travel as MIME parts (XOP) with Content-ID `<sha256>@amtsbote`, referenced from the body by xop:Include; `omit`: they are not sent.',
    },
    statusCallback: {
      type: 'object',
      additionalProperties: false,
      required: ['wsdl', 'usernameToken'],
      description:
        "Serve a SOAP status service at `POST /api/v1/callbacks/{instanceId}`: the Fachverfahren reports the status of an application it imported, naming it by its Vorgangsnummer (the remote reference of the delivery) or by the delivery id. The status goes through the route's status mapping to the citizen. Give the WSDL file to the Fachverfahren's operator; the gateway does not serve it.",
      properties: {
        wsdl: {
          type: 'string',
          minLength: 1,
          description:
            'Path of the local WSDL of the status service (document/literal); its request and response elements are what the callback reads and answers.',
        },
        service: {
          type: 'string',
          minLength: 1,
          description: 'WSDL service name; default: the first service.',
        },
        port: { type: 'string', minLength: 1, description: 'Port of that service; default: its first port.' },
        operation: {
          type: 'string',
          minLength: 1,
          description: 'The status operation; default: the first operation of the port.',
        },
        elements: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description:
            'Local names of the child elements of the request element (any namespace) and of the response element.',
          properties: {
            remoteReference: elementName(
              "Holds the Fachverfahren's reference of the application: the value the delivery answered with (`remoteReference`).",
              DEFAULT_STATUS_ELEMENTS.remoteReference,
            ),
            deliveryId: elementName(
              'Holds the delivery id the import carried (also as `urn:uuid:…`); a request names the application by exactly one of the two.',
              DEFAULT_STATUS_ELEMENTS.deliveryId,
            ),
            status: elementName(
              "Holds the Fachverfahren's status code (required); the route's status mapping maps it.",
              DEFAULT_STATUS_ELEMENTS.status,
            ),
            text: elementName(
              'Holds an optional free text for the citizen (`{text}` in status texts).',
              DEFAULT_STATUS_ELEMENTS.text,
            ),
            time: elementName(
              'Holds the optional time of the status (xsd:dateTime), recorded as `reportedAt`.',
              DEFAULT_STATUS_ELEMENTS.time,
            ),
            acknowledgement: elementName(
              "Child of the WSDL's response element that gets the gateway's application id; left out when the response element has no such child.",
              DEFAULT_STATUS_ELEMENTS.acknowledgement,
            ),
          },
        },
        usernameToken: {
          type: 'object',
          additionalProperties: false,
          required: ['username', 'password'],
          description:
            'The WS-Security UsernameToken every call must carry: `PasswordDigest` or `PasswordText`, both with `Nonce` and `wsu:Created` no more than 5 minutes off; each nonce is accepted once.',
          properties: {
            username: { type: 'string', minLength: 1, description: 'User name the Fachverfahren sends.' },
            password: {
              type: 'string',
              minLength: 16,
              description: 'Secret (at least 16 characters): use `${ENV}` or a secret file.',
            },
          },
        },
      },
    },
  },
};

export const soapExampleConfig: SoapAdapterConfig = {
  wsdl: 'config/wsdl/gewerbe-import.wsdl',
  service: 'GewerbeImportService',
  port: 'GewerbeImportPort',
  operation: 'importGewerbeanmeldung',
  endpoint: 'https://fachverfahren.regio-it.example/gewerbe/import',
  soapVersion: '1.1',
  timeout: '30s',
  usernameToken: {
    username: 'amtsbote',
    password: '${GEWERBE_SOAP_PASSWORD}',
    passwordType: 'PasswordDigest',
  },
  tls: {
    cert: 'config/tls/amtsbote-client.crt',
    key: 'config/tls/amtsbote-client.key',
    ca: 'config/tls/regio-it-ca.crt',
    passphrase: '${GEWERBE_TLS_KEY_PASSPHRASE}',
  },
  deliveryIdHeader: { kind: 'ws-addressing' },
  faults: { retry: ['soap:Server', 'Busy*', 'Wartung*'], permanent: ['importFehler'], default: 'permanent' },
  tlsFailure: 'retry',
  remoteReference: 'vorgangsnummer',
  attachments: 'mtom',
  statusCallback: {
    wsdl: 'config/wsdl/gewerbe-status.wsdl',
    operation: 'statusMelden',
    elements: { remoteReference: 'vorgangsnummer', deliveryId: 'referenz', status: 'status', text: 'text' },
    usernameToken: { username: 'gewerbe-fachverfahren', password: '${GEWERBE_STATUS_PASSWORD}' },
  },
};
