/**
 * Reading a stored message for the mapping step and the adapter: the application as parsed JSON,
 * the document an inbound adapter handed over (text and its media type), and the identity the
 * citizen's IdP confirmed at intake. The payload is canonical JSON written by the gateway itself
 * (intake or inbound hand-over); nothing here guesses a kind from the content, except for inbound
 * payloads stored before the `document` field existed (see `documentBeforeDocumentField`).
 */
import { AmtError } from '../errors.js';
import { TRUST_LEVELS, type TrustLevel, type VerifiedIdentity } from '../identity/identity.js';
import type { MessageRecord } from '../store/types.js';

/** A document an inbound adapter received as is (e.g. an XÖV message), with its media type. */
export interface StoredDocument {
  readonly mediaType: string;
  readonly text: string;
}

export interface StoredMessage {
  /** The stored application, parsed: what JSON mappings and pass-through get. */
  readonly application: unknown;
  /** Inbound messages whose adapter handed over a document rather than JSON data. */
  readonly document: StoredDocument | undefined;
  /** The verified identity stored at intake (outbound messages from the portal only). */
  readonly identity: VerifiedIdentity | undefined;
}

export function readStoredMessage(
  message: Pick<MessageRecord, 'id' | 'direction' | 'payload'>,
): StoredMessage {
  const application = parseStoredPayload(message.payload, message.id);
  const record = isRecord(application) ? application : {};
  return {
    application,
    document: message.direction === 'inbound' ? inboundDocument(record, message.id) : undefined,
    // Only intake writes `verifiedIdentity`, after checking the assertion; an inbound message's
    // payload is `{reference, channel, data, document}` and the sender's data sits below `data`.
    identity:
      message.direction === 'outbound' && record.verifiedIdentity !== undefined
        ? storedIdentity(record.verifiedIdentity, message.id)
        : undefined,
  };
}

/** The stored payload, parsed; the gateway wrote it, so text that is not JSON is a fault of ours. */
export function parseStoredPayload(payload: string, messageId: string): unknown {
  try {
    return JSON.parse(payload) as unknown;
  } catch (cause) {
    throw new AmtError('AMT_INTERNAL', `the stored payload of message ${messageId} is not JSON`, { cause });
  }
}

/**
 * Whether the stored payload is an outbound application without a verified identity — then the
 * parsed payload is all `readStoredMessage` would give — told without parsing it. Conservative:
 * the text `"verifiedIdentity"` anywhere (inside the data, say) answers false, "parse and see".
 */
export function isPlainApplication(message: Pick<MessageRecord, 'direction' | 'payload'>): boolean {
  return message.direction === 'outbound' && !message.payload.includes('"verifiedIdentity"');
}

/**
 * The document of an inbound message: `document` of its payload, as the inbound hand-over wrote
 * it from the adapter's `InboundApplication.document` (null when there was none).
 */
function inboundDocument(payload: Record<string, unknown>, messageId: string): StoredDocument | undefined {
  if (!('document' in payload)) return documentBeforeDocumentField(payload.data);
  const document = payload.document;
  if (document === null) return undefined;
  if (
    !isRecord(document) ||
    typeof document.mediaType !== 'string' ||
    document.mediaType === '' ||
    typeof document.content !== 'string'
  ) {
    throw new AmtError('AMT_INTERNAL', `the document stored with message ${messageId} is unreadable`);
  }
  return { mediaType: document.mediaType, text: document.content };
}

/**
 * Compatibility for inbound payloads stored before `InboundApplication.document` existed: they
 * have no `document` key, and adapters put the document into `data` — FIT-Connect non-JSON
 * Fachdaten as `{ mimeType, content }`, XTA 2 messages as `{ xml, metadata }`. Every payload
 * written since carries the key, so this never applies to a new message.
 */
function documentBeforeDocumentField(data: unknown): StoredDocument | undefined {
  if (!isRecord(data)) return undefined;
  if (typeof data.mimeType === 'string' && typeof data.content === 'string') {
    return { mediaType: data.mimeType, text: data.content };
  }
  if (typeof data.xml === 'string') return { mediaType: 'application/xml', text: data.xml };
  return undefined;
}

/** True for `application/xml`, `text/xml` and `application/…+xml` (parameters ignored). */
export function isXmlMediaType(mediaType: string): boolean {
  const base = mediaType.split(';')[0]!.trim().toLowerCase();
  return base === 'application/xml' || base === 'text/xml' || base.endsWith('+xml');
}

/**
 * Rebuilds the identity field by field, so that exactly what intake stored — and nothing a
 * payload might carry besides — reaches the adapter. A stored identity that does not read back
 * is a defect of the store, not of the citizen's data: the message is held, not sent without it.
 */
function storedIdentity(value: unknown, messageId: string): VerifiedIdentity {
  const unreadable = (field: string): AmtError =>
    new AmtError(
      'AMT_INTERNAL',
      `the verified identity stored with message ${messageId} is unreadable (${field})`,
    );
  if (!isRecord(value)) throw unreadable('not an object');
  const required = (field: string): string => {
    const v = value[field];
    if (typeof v !== 'string' || v === '') throw unreadable(field);
    return v;
  };
  const optional = (source: Record<string, unknown>, field: string): string | undefined => {
    const v = source[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw unreadable(field);
    return v;
  };
  const time = (field: string): number => {
    const v = value[field];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw unreadable(field);
    return v;
  };
  const trustLevel = value.trustLevel;
  if (!TRUST_LEVELS.includes(trustLevel as TrustLevel)) throw unreadable('trustLevel');
  const address = value.address;
  if (address !== undefined && !isRecord(address)) throw unreadable('address');
  return Object.freeze({
    issuer: required('issuer'),
    subjectNameId: required('subjectNameId'),
    subjectNameIdFormat: optional(value, 'subjectNameIdFormat'),
    pseudonym: optional(value, 'pseudonym'),
    trustLevel: trustLevel as TrustLevel,
    givenName: optional(value, 'givenName'),
    familyName: optional(value, 'familyName'),
    birthDate: optional(value, 'birthDate'),
    email: optional(value, 'email'),
    address:
      address === undefined
        ? undefined
        : Object.freeze({
            street: optional(address, 'street'),
            postalCode: optional(address, 'postalCode'),
            locality: optional(address, 'locality'),
          }),
    assertionId: required('assertionId'),
    authenticatedAt: time('authenticatedAt'),
    expiresAt: time('expiresAt'),
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
