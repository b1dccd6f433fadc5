/**
 * `authenticationInformation` for the metadata: metadata 1.x describes each entry as
 * `{ type, version, content }`, where `type` names the kind of proof (`identificationReport`),
 * `version` its semver version and `content` the proof as a signed JWT (RFC 7519). FIT-Connect's
 * identification report is the Governikus IdentificationReport, here in version 2.0.0.
 *
 * The report states what the gateway verified at intake — which IdP identified the citizen,
 * when, at which level of assurance — and, unless configured otherwise, the verified given and
 * family name. It is built only from the delivery's verified identity, never from what the
 * applicant typed. The metadata schema does not say who signs the JWT nor how much of the
 * person it names: both are configuration (`sending.identificationReport`).
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, importJWK, type JWK } from 'jose';
import type { AdapterLogger, Delivery } from '../../src/adapter-contract.js';
import { leistungsschluesselUrn } from '../../src/domain.js';
import type { AuthenticationInformation } from './metadata.js';

export const AUTHENTICATION_TYPE = 'identificationReport';
export const IDENTIFICATION_REPORT_VERSION = '2.0.0';
const REPORT_SCHEMA_BASE = `https://raw.githubusercontent.com/Governikus/IdentificationReport/${IDENTIFICATION_REPORT_VERSION}/schema`;
export const IDENTIFICATION_REPORT_SCHEMA = `${REPORT_SCHEMA_BASE}/identification-report.json`;
/** `subjectRefType` of a subject named by given and family name only. */
export const NATURAL_PERSON_MINIMAL_SCHEMA = `${REPORT_SCHEMA_BASE}/natural-person-minimal.json`;

/** Algorithms accepted for the report signature (RSA keys); PS512 as everywhere else in FIT-Connect. */
export const REPORT_ALGORITHMS = ['PS512', 'PS256', 'RS512', 'RS256'] as const;
export type ReportAlgorithm = (typeof REPORT_ALGORITHMS)[number];

export type VerifiedIdentity = NonNullable<Delivery['identity']>;

/**
 * Levels of assurance as the report schema names them for national use (BSI TR-03107-1):
 * basis/substantiell/hoch are the levels the IdP's STORK-QAA-Level-1/3/4 resolve to.
 */
export const LEVEL_OF_ASSURANCE: Readonly<Record<VerifiedIdentity['trustLevel'], string>> = {
  basis: 'http://bsi.bund.de/eID/LoA/normal',
  substantiell: 'http://bsi.bund.de/eID/LoA/substantiell',
  hoch: 'http://bsi.bund.de/eID/LoA/hoch',
};

export interface IdentificationReportConfig {
  /** Private RSA JWK with `kid`; its `alg` (one of REPORT_ALGORITHMS) or PS512 signs the report. */
  readonly signingKey: JWK & { kid: string };
  /** JWT `iss`: who vouches for the report (the gateway). */
  readonly issuer: string;
  /** `names`: `subjectRef` carries the verified given and family name; `none`: no subject. */
  readonly subject: 'names' | 'none';
}

type SigningKey = Awaited<ReturnType<typeof importJWK>>;

/** Signs identification reports for deliveries that carry a verified identity. */
export class IdentificationReports {
  private key: Promise<SigningKey> | undefined;
  private warned = false;

  constructor(
    private readonly config: IdentificationReportConfig | undefined,
    private readonly logger: AdapterLogger | undefined,
  ) {}

  /** The metadata entries for this delivery: one report, or none without an identity or a key. */
  async for(delivery: Delivery, now = Date.now()): Promise<AuthenticationInformation[]> {
    const identity = delivery.identity;
    if (identity === undefined) return [];
    if (this.config === undefined) {
      if (!this.warned) {
        this.warned = true;
        this.logger?.warn(
          'deliveries carry a verified identity, but sending.identificationReport is not configured: ' +
            'FIT-Connect metadata goes out without authenticationInformation',
        );
      }
      return [];
    }
    const content = await this.sign(identificationReport(delivery, identity, this.config, now), now);
    return [{ type: AUTHENTICATION_TYPE, version: IDENTIFICATION_REPORT_VERSION, content }];
  }

  private async sign(report: Record<string, unknown>, now: number): Promise<string> {
    const config = this.config!;
    const alg = reportAlgorithm(config.signingKey);
    // WebCrypto refuses keys whose key_ops/use do not list what it is asked to do.
    const { key_ops: _ops, use: _use, ...bare } = config.signingKey;
    this.key ??= importJWK({ ...bare, alg }, alg);
    return new SignJWT(report)
      .setProtectedHeader({ alg, typ: 'JWT', kid: config.signingKey.kid })
      .setIssuer(config.issuer)
      .setIssuedAt(Math.floor(now / 1000))
      .sign(await this.key);
  }
}

export function reportAlgorithm(jwk: JWK): ReportAlgorithm {
  return (REPORT_ALGORITHMS as readonly string[]).includes(jwk.alg ?? '')
    ? (jwk.alg as ReportAlgorithm)
    : 'PS512';
}

/** The report payload (IdentificationReport 2.0.0) for one delivery. */
export function identificationReport(
  delivery: Delivery,
  identity: VerifiedIdentity,
  config: Pick<IdentificationReportConfig, 'subject'>,
  now: number,
): Record<string, unknown> {
  const subject: Record<string, string> = {};
  if (config.subject === 'names') {
    if (identity.givenName !== undefined) subject.firstName = identity.givenName;
    if (identity.familyName !== undefined) subject.lastName = identity.familyName;
  }
  const named = Object.keys(subject).length > 0;
  return {
    $schema: IDENTIFICATION_REPORT_SCHEMA,
    reportId: randomUUID(),
    // The identity provider whose signed assertion identified the citizen.
    serverIdentity: identity.issuer,
    reportTime: isoSeconds(now),
    identificationTime: isoSeconds(identity.authenticatedAt),
    idStatus: 'success',
    levelOfAssurance: LEVEL_OF_ASSURANCE[identity.trustLevel],
    ...(named ? { subjectRefType: NATURAL_PERSON_MINIMAL_SCHEMA, subjectRef: subject } : {}),
    // Binds the report to this submission: the service and the delivery it was issued for.
    contextInformation: [leistungsschluesselUrn(delivery.service), `urn:uuid:${delivery.deliveryId}`],
  };
}

function isoSeconds(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
