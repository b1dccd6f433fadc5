/**
 * The `config:` block of a FIT-Connect instance as written in `gateway.yaml`, and its resolved,
 * defaulted form. The manifest's JSON Schema has checked the shape before `resolveConfig` runs.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import type { JWK } from 'jose';
import { AmtError } from '../../src/errors.js';
import { parseByteSize, parseDuration, parseTimerDuration } from '../../src/config/units.js';
import type { IdentificationReportConfig } from './identification-report.js';
import type { FitConnectPostboxConfig } from './postbox.js';

export interface FitConnectServiceConfig {
  /** `serviceType.name` announced to the Zustelldienst. */
  readonly name?: string;
  /** `submissionSchema.schemaUri` of the Fachdaten; without it the destination's declared schema is used. */
  readonly schemaUri?: string;
}

export interface FitConnectReceivingDestination {
  readonly destinationId: string;
  /** ARS of the authority this destination belongs to (the city's own). */
  readonly ars: string;
  /** JWK file with the destination's private decryption key (RSA-OAEP-256, with `kid`). */
  readonly decryptionKeyFile: string;
  /** JWK file with the private signing key (PS512, with `kid`) registered for this destination. */
  readonly signingKeyFile: string;
}

export interface FitConnectConfig {
  readonly submissionApiUrl: string;
  readonly apiVersion?: string;
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly jwksUrl?: string;
  readonly routingApiUrl?: string;
  readonly routingJwksUrl?: string;
  readonly requestTimeout?: number | string;
  readonly sending?: {
    readonly destinationId?: string;
    readonly metadataVersion?: string;
    readonly services?: Readonly<Record<string, FitConnectServiceConfig>>;
    readonly routeCacheTtl?: number | string;
    readonly keyCacheTtl?: number | string;
    readonly trustAnchorFile?: string;
    readonly maxAttachmentSize?: number | string;
    readonly replyChannel?: Readonly<Record<string, unknown>>;
    /** Signs an identification report for `authenticationInformation` when a delivery carries a verified identity. */
    readonly identificationReport?: {
      /** JWK file with the private RSA signing key (`kid`; `alg` PS512, PS256, RS512 or RS256). */
      readonly signingKeyFile: string;
      /** JWT `iss` of the report: who vouches for it. */
      readonly issuer: string;
      /** What `subjectRef` names: the verified given and family name (default), or nothing. */
      readonly subject?: 'names' | 'none';
    };
    /** Carries citizen status notices to the postbox destination (`destinationId`) instead of applications. */
    readonly postbox?: FitConnectPostboxConfig;
  };
  readonly status?: {
    readonly enabled?: boolean;
    readonly batchSize?: number;
  };
  readonly receiving?: {
    readonly destinations: readonly FitConnectReceivingDestination[];
    readonly dataSchemas?: Readonly<Record<string, string>>;
    readonly maxAttachmentSize?: number | string;
    readonly batchSize?: number;
    readonly callbackSecret?: string;
  };
}

export interface ResolvedReceivingDestination {
  readonly destinationId: string;
  readonly ars: string;
  readonly decryptionKey: JWK & { kid: string };
  readonly signingKey: JWK & { kid: string };
}

export interface ResolvedConfig {
  readonly submissionApiUrl: string;
  readonly apiVersion: string;
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly jwksUrl: string;
  readonly routingApiUrl: string | undefined;
  readonly routingJwksUrl: string | undefined;
  readonly requestTimeoutMs: number;
  readonly sending: {
    readonly destinationId: string | undefined;
    readonly metadataVersion: string;
    readonly services: Readonly<Record<string, FitConnectServiceConfig>>;
    readonly routeCacheTtlMs: number;
    readonly keyCacheTtlMs: number;
    readonly trustAnchors: readonly X509Certificate[];
    readonly maxAttachmentBytes: number;
    readonly replyChannel: Readonly<Record<string, unknown>> | undefined;
    /** Undefined: deliveries with a verified identity go out without authenticationInformation. */
    readonly identificationReport: IdentificationReportConfig | undefined;
    /** Defined: every delivery is a citizen status notice for the postbox destination. */
    readonly postbox: FitConnectPostboxConfig | undefined;
  };
  readonly status: { readonly enabled: boolean; readonly batchSize: number };
  readonly receiving: {
    readonly destinations: readonly ResolvedReceivingDestination[];
    /** schemaUri → parsed JSON Schema. */
    readonly dataSchemas: ReadonlyMap<string, Record<string, unknown>>;
    readonly maxAttachmentBytes: number;
    readonly batchSize: number;
    readonly callbackSecret: string | undefined;
  };
}

export const DEFAULTS = {
  apiVersion: 'v1',
  metadataVersion: '1.2.0',
  requestTimeout: '30s',
  routeCacheTtl: '1h',
  keyCacheTtl: '1h',
  sendingMaxAttachmentSize: '100mb',
  receivingMaxAttachmentSize: '100mb',
  statusBatchSize: 50,
  receivingBatchSize: 25,
} as const;

/** Applies defaults and reads key, certificate and schema files (paths through `resolvePath`). */
export function resolveConfig(
  config: FitConnectConfig,
  resolvePath: (configured: string) => string,
): ResolvedConfig {
  const submissionApiUrl = trimSlash(config.submissionApiUrl);
  const sending = config.sending ?? {};
  const receiving = config.receiving;
  const file = resolvePath;
  return {
    submissionApiUrl,
    apiVersion: config.apiVersion ?? DEFAULTS.apiVersion,
    tokenUrl: config.tokenUrl,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    jwksUrl: config.jwksUrl ?? `${submissionApiUrl}/.well-known/jwks.json`,
    routingApiUrl: config.routingApiUrl === undefined ? undefined : trimSlash(config.routingApiUrl),
    routingJwksUrl: config.routingJwksUrl,
    requestTimeoutMs: parseTimerDuration(config.requestTimeout ?? DEFAULTS.requestTimeout),
    sending: {
      destinationId: sending.destinationId,
      metadataVersion: sending.metadataVersion ?? DEFAULTS.metadataVersion,
      services: sending.services ?? {},
      routeCacheTtlMs: parseDuration(sending.routeCacheTtl ?? DEFAULTS.routeCacheTtl),
      keyCacheTtlMs: parseDuration(sending.keyCacheTtl ?? DEFAULTS.keyCacheTtl),
      trustAnchors:
        sending.trustAnchorFile === undefined ? [] : readCertificates(file(sending.trustAnchorFile)),
      maxAttachmentBytes: parseByteSize(sending.maxAttachmentSize ?? DEFAULTS.sendingMaxAttachmentSize),
      replyChannel: sending.replyChannel,
      identificationReport:
        sending.identificationReport === undefined
          ? undefined
          : {
              signingKey: readPrivateJwk(file(sending.identificationReport.signingKeyFile), 'report signing'),
              issuer: sending.identificationReport.issuer,
              subject: sending.identificationReport.subject ?? 'names',
            },
      postbox: sending.postbox,
    },
    status: {
      enabled: config.status?.enabled ?? false,
      batchSize: config.status?.batchSize ?? DEFAULTS.statusBatchSize,
    },
    receiving: {
      destinations: (receiving?.destinations ?? []).map((d) => ({
        destinationId: d.destinationId,
        ars: d.ars,
        decryptionKey: readPrivateJwk(file(d.decryptionKeyFile), 'decryption'),
        signingKey: readPrivateJwk(file(d.signingKeyFile), 'signing'),
      })),
      dataSchemas: new Map(
        Object.entries(receiving?.dataSchemas ?? {}).map(([uri, p]) => [
          uri,
          readJsonFile(file(p), 'data schema'),
        ]),
      ),
      maxAttachmentBytes: parseByteSize(receiving?.maxAttachmentSize ?? DEFAULTS.receivingMaxAttachmentSize),
      batchSize: receiving?.batchSize ?? DEFAULTS.receivingBatchSize,
      callbackSecret: receiving?.callbackSecret,
    },
  };
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

function readJsonFile(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new AmtError('AMT_FIT_CONNECT_KEY_INVALID', `cannot read the ${what} file ${file}`, { cause });
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (cause) {
    // The message names the file only: the content may be a private key.
    throw new AmtError('AMT_FIT_CONNECT_KEY_INVALID', `the ${what} file ${file} is not a JSON object`, {
      cause,
    });
  }
}

function readPrivateJwk(
  file: string,
  what: 'decryption' | 'signing' | 'report signing',
): JWK & { kid: string } {
  const jwk = readJsonFile(file, `${what} key`) as JWK;
  const problem =
    jwk.kty !== 'RSA'
      ? 'is not an RSA key'
      : typeof jwk.d !== 'string'
        ? 'holds no private key'
        : typeof jwk.kid !== 'string' || jwk.kid === ''
          ? 'has no kid'
          : undefined;
  if (problem) throw new AmtError('AMT_FIT_CONNECT_KEY_INVALID', `the ${what} key file ${file} ${problem}`);
  return jwk as JWK & { kid: string };
}

function readCertificates(file: string): X509Certificate[] {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new AmtError('AMT_FIT_CONNECT_KEY_INVALID', `cannot read the trust anchor file ${file}`, { cause });
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new AmtError(
      'AMT_FIT_CONNECT_KEY_INVALID',
      `the trust anchor file ${file} holds no PEM certificate`,
    );
  }
  return blocks.map((b) => new X509Certificate(b));
}
