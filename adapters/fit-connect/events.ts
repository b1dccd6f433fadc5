/**
 * Security Event Tokens (RFC 8417) of the FIT-Connect event log: JWS compact, `typ
 * secevent+jwt`, PS512. The Zustelldienst signs its own events (submit, notify …); a receiving
 * system signs accept/reject with the signing key registered for its destination.
 */
import { randomUUID } from 'node:crypto';
import { CompactSign, compactVerify, decodeJwt, decodeProtectedHeader, importJWK, type JWK } from 'jose';

export const SET_TYPE = 'secevent+jwt';
export const SET_ALG = 'PS512';
export const SET_PAYLOAD_SCHEMA =
  'https://schema.fitko.de/fit-connect/set-payload/1.0.0/set-payload.schema.json';

const EVENT_BASE = 'https://schema.fitko.de/fit-connect/events/';
export const EVENTS = {
  create: `${EVENT_BASE}create-submission`,
  submit: `${EVENT_BASE}submit-submission`,
  notify: `${EVENT_BASE}notify-submission`,
  forward: `${EVENT_BASE}forward-submission`,
  accept: `${EVENT_BASE}accept-submission`,
  reject: `${EVENT_BASE}reject-submission`,
} as const;

/** The statuses reported to the core, by event URI; other events are delivery-internal. */
export const STATUS_BY_EVENT: Readonly<Record<string, string>> = {
  [EVENTS.forward]: 'forwarded',
  [EVENTS.accept]: 'accepted',
  [EVENTS.reject]: 'rejected',
};

/** A problem in a reject-submission event (RFC 7807 style; `type` and `instance` as documented by FIT-Connect). */
export interface SubmissionProblem {
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly instance: string;
}

export interface AuthenticationTags {
  readonly metadata: string;
  readonly data?: string;
  readonly attachments: Readonly<Record<string, string>>;
}

type SigningKey = Awaited<ReturnType<typeof importJWK>>;

/** Imports a PS512 RSA JWK; `key_ops`/`use` are dropped for the same WebCrypto reason as in jwe.ts. */
export async function importPs512Key(jwk: JWK): Promise<SigningKey> {
  const { key_ops: _ops, use: _use, ...bare } = jwk;
  return importJWK({ ...bare, alg: SET_ALG }, SET_ALG);
}

export interface SetInput {
  readonly key: SigningKey;
  readonly kid: string;
  /** The destination id for receiver events; the Zustelldienst's URL for its own. */
  readonly issuer: string;
  readonly submissionId: string;
  readonly caseId: string;
  readonly event: string;
  readonly eventPayload: Readonly<Record<string, unknown>>;
  readonly issuedAt?: number;
}

export async function signSet(input: SetInput): Promise<string> {
  const claims = {
    $schema: SET_PAYLOAD_SCHEMA,
    jti: randomUUID(),
    iss: input.issuer,
    iat: input.issuedAt ?? Math.floor(Date.now() / 1000),
    sub: `submission:${input.submissionId}`,
    txn: `case:${input.caseId}`,
    events: { [input.event]: input.eventPayload },
  };
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: SET_ALG, typ: SET_TYPE, kid: input.kid })
    .sign(input.key);
}

export interface VerifiedSet {
  readonly jti: string;
  readonly issuer: string;
  readonly issuedAt: number;
  readonly submissionId: string;
  readonly caseId: string;
  readonly event: string;
  readonly eventPayload: Readonly<Record<string, unknown>>;
}

/** Finds the key a SET must verify against, given its issuer and key id. */
export type SetKeyResolver = (issuer: string, kid: string) => Promise<SigningKey>;

export class InvalidSetError extends Error {
  override readonly name = 'InvalidSetError';
}

/**
 * Verifies header, signature and claims of one SET. Throws `InvalidSetError` for anything not
 * both well-formed and signed by the key its issuer holds.
 */
export async function verifySet(jws: string, resolveKey: SetKeyResolver): Promise<VerifiedSet> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  let unverified: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(jws);
    unverified = decodeJwt(jws);
  } catch {
    throw new InvalidSetError('not a JWS compact token');
  }
  if (header.typ !== SET_TYPE) throw new InvalidSetError(`typ is ${String(header.typ)}, not ${SET_TYPE}`);
  if (header.alg !== SET_ALG) throw new InvalidSetError(`alg is ${String(header.alg)}, not ${SET_ALG}`);
  if (typeof header.kid !== 'string' || header.kid === '') throw new InvalidSetError('no kid');
  if (typeof unverified.iss !== 'string') throw new InvalidSetError('no iss');
  let key: SigningKey;
  try {
    key = await resolveKey(unverified.iss, header.kid);
  } catch (cause) {
    throw new InvalidSetError(
      `no usable key ${header.kid} for issuer ${unverified.iss}: ${(cause as Error).message}`,
    );
  }
  let payload: Record<string, unknown>;
  try {
    const verified = await compactVerify(jws, key, { algorithms: [SET_ALG] });
    payload = JSON.parse(new TextDecoder().decode(verified.payload)) as Record<string, unknown>;
  } catch {
    throw new InvalidSetError('the signature does not verify');
  }
  return claimsOf(payload);
}

function claimsOf(payload: Record<string, unknown>): VerifiedSet {
  const { jti, iss, iat, sub, txn, events } = payload;
  if (typeof jti !== 'string' || typeof iss !== 'string' || typeof iat !== 'number') {
    throw new InvalidSetError('jti, iss or iat missing');
  }
  if (typeof sub !== 'string' || !sub.startsWith('submission:'))
    throw new InvalidSetError('sub is not submission:<id>');
  if (typeof txn !== 'string' || !txn.startsWith('case:')) throw new InvalidSetError('txn is not case:<id>');
  if (typeof events !== 'object' || events === null) throw new InvalidSetError('no events');
  const entries = Object.entries(events as Record<string, unknown>);
  if (entries.length !== 1) throw new InvalidSetError('a SET must carry exactly one event');
  const [event, eventPayload] = entries[0]!;
  return {
    jti,
    issuer: iss,
    issuedAt: iat,
    submissionId: sub.slice('submission:'.length),
    caseId: txn.slice('case:'.length),
    event,
    eventPayload:
      typeof eventPayload === 'object' && eventPayload !== null
        ? (eventPayload as Record<string, unknown>)
        : {},
  };
}
