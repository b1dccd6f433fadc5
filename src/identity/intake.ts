/**
 * Citizen identity at intake. The gateway loads the IdP metadata once at start and hands the HTTP
 * intake a verifier; the intake asks it for every application that carries a SAML response and
 * checks the result against the trust level the route requires.
 *
 * A portal that retries a request (same Idempotency-Key, same body) sends the same assertion
 * again. That is a retry, not a replay: the assertion is bound to the request it first came with,
 * and only another request presenting it is refused (see `replayGuard`).
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { GatewayConfig, IdentityConfig } from '../config/types.js';
import { AmtError, isAmtError } from '../errors.js';
import type { Logger } from '../observability/log.js';
import type { Store } from '../store/types.js';
import { requireTrustLevel } from './identity.js';
import type { TrustLevel, VerifiedIdentity } from './identity.js';
import { loadIdpMetadataFile } from './idp-metadata.js';
import type { IdpMetadata } from './idp-metadata.js';
import { verifySamlResponse } from './saml.js';

/** What the portal forwards with the application (its `identity` member). */
export interface SubmittedIdentity {
  /** The SAML Response (or Assertion) as the IdP posted it: base64 or XML. */
  readonly samlResponse: string;
  /** The ID of the portal's AuthnRequest; the assertion must answer it. */
  readonly inResponseTo?: string;
}

/** The request a SAML response arrived with. */
export interface IdentityRequest {
  readonly clientId: string;
  readonly idempotencyKey: string | undefined;
  /** Hash of the application as sent, SAML response included. */
  readonly requestHash: string;
  readonly now: number;
}

export interface IdentityVerifier {
  /**
   * Verifies the forwarded SAML response. Throws AmtError `AMT_SAML_*` (422) with the problem
   * path `/identity/samlResponse`.
   */
  verify(submitted: SubmittedIdentity, request: IdentityRequest): Promise<VerifiedIdentity>;
  /**
   * Reads the metadata files again when they changed (e.g. after a refresh). Throws when a changed
   * file cannot be used; the metadata read before stays in use.
   */
  reload(): Promise<void>;
}

export interface IdentityVerifierOptions {
  /** Told when a changed metadata file cannot be used (the previous metadata stays in use). */
  readonly logger?: Pick<Logger, 'warn'>;
}

/** How long a replaced metadata file may go unnoticed, at most (no restart needed). */
const METADATA_RECHECK_MS = 60_000;

export const SAML_RESPONSE_PATH = '/identity/samlResponse';

/** Loads the IdP metadata of the `identity` section; undefined when the gateway verifies no identities. */
export async function createIdentityVerifier(
  config: GatewayConfig,
  store: Store,
  options: IdentityVerifierOptions = {},
): Promise<IdentityVerifier | undefined> {
  const identity = config.identity;
  if (identity === undefined) return undefined;
  const metadata = new MetadataFiles(identity, options.logger);
  await metadata.load();
  return {
    async verify(submitted, request) {
      await metadata.reloadIfDue(request.now);
      try {
        return await verifySamlResponse(submitted.samlResponse, {
          idp: metadata.idps,
          audience: identity.audience,
          recipient: identity.recipient,
          clockSkewMs: identity.clockSkewMs,
          spDecryptionKey: identity.spDecryptionKeys,
          expectedInResponseTo: submitted.inResponseTo,
          now: request.now,
          replay: replayGuard(store, request),
        });
      } catch (err) {
        throw atSamlResponse(err);
      }
    },
    reload: () => metadata.reload(),
  };
}

/**
 * The citizen identity of an application: verified when one was sent, and checked against the
 * route's `minTrustLevel`. An application without one passes only when the route requires none.
 */
export async function identityForApplication(
  verifier: IdentityVerifier | undefined,
  submitted: SubmittedIdentity | undefined,
  minTrustLevel: TrustLevel | undefined,
  request: IdentityRequest,
): Promise<VerifiedIdentity | undefined> {
  if (submitted === undefined) {
    requireIdentityPresent(submitted, minTrustLevel);
    return undefined;
  }
  if (verifier === undefined) {
    throw new AmtError('AMT_SAML_ISSUER_UNKNOWN', 'this gateway has no identity providers configured', {
      problems: [{ path: SAML_RESPONSE_PATH, message: 'no identity provider is configured' }],
    });
  }
  const identity = await verifier.verify(submitted, request);
  if (minTrustLevel !== undefined) requireTrustLevel(identity, minTrustLevel);
  return identity;
}

/** Refuses an application without identity for a route that requires one, before anything is read further. */
export function requireIdentityPresent(
  submitted: SubmittedIdentity | undefined,
  minTrustLevel: TrustLevel | undefined,
): void {
  if (submitted === undefined && minTrustLevel !== undefined) {
    throw new AmtError(
      'AMT_TRUST_LEVEL_TOO_LOW',
      `this service requires a citizen login with trust level ${minTrustLevel}; the application carries none`,
      { problems: [{ path: '/identity', message: `a login with trust level ${minTrustLevel} is required` }] },
    );
  }
}

/**
 * One-time use of an assertion, shared by all instances through the store. With an
 * Idempotency-Key the assertion is first bound to this exact request (client, key, body hash):
 * a retry finds its own binding and passes, even when the first attempt failed after using the
 * assertion up; any other request finds the assertion used and is refused.
 */
function replayGuard(
  store: Store,
  request: IdentityRequest,
): (assertionId: string, expiresAt: number) => Promise<boolean> {
  return async (assertionId, expiresAt) => {
    if (request.idempotencyKey === undefined) {
      return store.rememberOnce('saml-assertion', assertionId, expiresAt, request.now);
    }
    const binding = createHash('sha256')
      .update(JSON.stringify([assertionId, request.clientId, request.idempotencyKey, request.requestHash]))
      .digest('hex');
    const firstOfThisRequest = await store.rememberOnce(
      'saml-assertion-request',
      binding,
      expiresAt,
      request.now,
    );
    const firstUse = await store.rememberOnce('saml-assertion', assertionId, expiresAt, request.now);
    return firstUse || !firstOfThisRequest;
  };
}

/** SAML failures name the field they concern; anything else (the store, a bug) passes unchanged. */
function atSamlResponse(err: unknown): unknown {
  if (!isAmtError(err) || !err.code.startsWith('AMT_SAML_')) return err;
  return new AmtError(err.code, err.message, {
    problems: [{ path: SAML_RESPONSE_PATH, message: err.message }],
    cause: err,
  });
}

/** The IdP metadata files, read at start and read again when a file changes. */
class MetadataFiles {
  idps: readonly IdpMetadata[] = [];
  private versions: readonly string[] = [];
  private checkedAt: number | undefined;
  private checking: Promise<void> | undefined;

  constructor(
    private readonly config: IdentityConfig,
    private readonly logger: Pick<Logger, 'warn'> | undefined,
  ) {}

  /** At start: every file must be valid, or the gateway does not start. */
  async load(): Promise<void> {
    const versions = await this.currentVersions();
    const idps = await this.read();
    this.idps = idps;
    this.versions = versions;
  }

  /** Before a verification: at most once a minute, a look at whether a file was replaced. */
  async reloadIfDue(now: number): Promise<void> {
    this.checkedAt ??= now;
    if (now - this.checkedAt < METADATA_RECHECK_MS) return;
    this.checkedAt = now;
    try {
      await this.reload();
    } catch (err) {
      // A refresh replaces files atomically and only with valid metadata, so this is a file an
      // operator put in place; refusing every login until it is fixed would be worse.
      this.logger?.warn('IdP metadata changed but cannot be used; the previous metadata stays in use', {
        code: isAmtError(err) ? err.code : 'AMT_SAML_METADATA_INVALID',
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /** Concurrent callers share one reading. */
  reload(): Promise<void> {
    this.checking ??= (async () => {
      try {
        const versions = await this.currentVersions();
        if (versions.every((v, i) => v === this.versions[i])) return;
        const idps = await this.read();
        this.idps = idps;
        this.versions = versions;
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  private async read(): Promise<IdpMetadata[]> {
    const idps = await Promise.all(this.config.idps.map((idp) => loadIdpMetadataFile(idp.metadata)));
    const seen = new Set<string>();
    for (const idp of idps) {
      if (seen.has(idp.entityId))
        throw new AmtError('AMT_SAML_METADATA_INVALID', `two metadata files describe ${idp.entityId}`);
      seen.add(idp.entityId);
    }
    return idps;
  }

  /** A replaced file (temp + rename) has another inode, whatever its time stamp says. */
  private currentVersions(): Promise<string[]> {
    return Promise.all(
      this.config.idps.map(async ({ metadata }) => {
        try {
          const info = await stat(metadata);
          return `${info.ino}:${info.size}:${info.mtimeMs}`;
        } catch (err) {
          throw new AmtError('AMT_SAML_METADATA_INVALID', `IdP metadata file ${metadata} cannot be read`, {
            cause: err,
          });
        }
      }),
    );
  }
}
