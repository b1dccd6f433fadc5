/** Records both stores build the same way. */
import { MAX_ATTACHMENT_LOOKUP, type AttachmentRef, type MessageRecord, type NewMessage } from './types.js';

/** The same shape whether built from input or read back: `purpose` only when there is one. */
export function attachmentRef(a: AttachmentRef): AttachmentRef {
  const ref = { sha256: a.sha256, size: a.size, filename: a.filename, mediaType: a.mediaType };
  return a.purpose === undefined ? ref : { ...ref, purpose: a.purpose };
}

/** A message as `accept` stores it new: received (or claimed, see `NewMessage.claim`), due at once. */
export function newMessageRecord(m: NewMessage): MessageRecord {
  return {
    id: m.id,
    deliveryId: m.deliveryId,
    direction: m.direction,
    tenantId: m.tenantId,
    ars: m.ars,
    service: m.service,
    reference: m.reference,
    clientId: m.clientId,
    routeId: m.routeId,
    target: m.target,
    status: m.claim ? 'delivering' : 'received',
    payload: m.payload,
    attachments: m.attachments.map(attachmentRef),
    attempts: m.claim ? 1 : 0,
    runAt: m.receivedAt,
    leaseOwner: m.claim?.owner,
    leaseExpiresAt: m.claim?.leaseExpiresAt,
    remoteReference: undefined,
    remoteStatus: undefined,
    lastError: undefined,
    createdAt: m.receivedAt,
    updatedAt: m.receivedAt,
  };
}

/** A `referencedAttachments` call asks about at most `MAX_ATTACHMENT_LOOKUP` hashes. */
export function checkLookup(sha256s: readonly string[]): void {
  if (sha256s.length > MAX_ATTACHMENT_LOOKUP) {
    throw new RangeError(
      `at most ${MAX_ATTACHMENT_LOOKUP} attachment hashes per lookup, not ${sha256s.length}`,
    );
  }
}
