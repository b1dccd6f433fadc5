/**
 * What the API shows of stored records: timestamps as ISO 8601, absent values as null. The
 * application's content appears only where an admin asks for it explicitly.
 */
import { TRUST_LEVELS, type TrustLevel } from '../identity/identity.js';
import type {
  AttachmentRef,
  AttemptRecord,
  CitizenStatusRecord,
  DeadLetter,
  ErrorInfo,
  HistoryEvent,
  MessageRecord,
} from '../store/types.js';

const iso = (epochMs: number): string => new Date(epochMs).toISOString();

export function historyView(event: HistoryEvent): Record<string, unknown> {
  return {
    seq: event.seq,
    at: iso(event.at),
    status: event.status,
    event: event.event,
    ...(event.detail === undefined ? {} : { detail: event.detail }),
  };
}

/**
 * The portal's view of its application: progress only, never the content. Of a verified citizen
 * identity it shows only that there is one and its trust level.
 */
export function applicationStatusView(
  message: MessageRecord,
  history: readonly HistoryEvent[],
  citizen?: CitizenStatusRecord | undefined,
): Record<string, unknown> {
  const trustLevel = verifiedTrustLevel(message.payload);
  return {
    id: message.id,
    tenant: message.ars,
    service: message.service,
    reference: message.reference ?? null,
    status: message.status,
    remoteStatus: message.remoteStatus ?? null,
    remoteReference: message.remoteReference ?? null,
    identityVerified: trustLevel !== undefined,
    trustLevel: trustLevel ?? null,
    citizenStatus: citizen?.status ?? null,
    citizenText: citizen?.text ?? null,
    receivedAt: iso(message.createdAt),
    updatedAt: iso(message.updatedAt),
    history: history.map(historyView),
  };
}

/** The trust level of the verified identity stored with the application, if it has one. */
function verifiedTrustLevel(payload: string): TrustLevel | undefined {
  // Most applications carry none; they are not parsed for nothing.
  if (!payload.includes('"verifiedIdentity"')) return undefined;
  const level = (parsedPayload(payload) as { verifiedIdentity?: { trustLevel?: unknown } } | null)
    ?.verifiedIdentity?.trustLevel;
  return TRUST_LEVELS.find((known) => known === level);
}

function errorView(error: ErrorInfo): Record<string, unknown> {
  return {
    code: error.code,
    message: error.message,
    ...(error.details === undefined ? {} : { details: error.details }),
  };
}

function attachmentView(ref: AttachmentRef): Record<string, unknown> {
  return {
    sha256: ref.sha256,
    size: ref.size,
    filename: ref.filename,
    mediaType: ref.mediaType,
    ...(ref.purpose === undefined ? {} : { purpose: ref.purpose }),
  };
}

export function messageSummaryView(message: MessageRecord): Record<string, unknown> {
  return {
    id: message.id,
    deliveryId: message.deliveryId,
    direction: message.direction,
    tenantId: message.tenantId,
    ars: message.ars,
    service: message.service,
    reference: message.reference ?? null,
    clientId: message.clientId,
    routeId: message.routeId,
    target: message.target,
    status: message.status,
    attempts: message.attempts,
    runAt: iso(message.runAt),
    remoteReference: message.remoteReference ?? null,
    remoteStatus: message.remoteStatus ?? null,
    lastError: message.lastError === undefined ? null : errorView(message.lastError),
    attachments: message.attachments.map(attachmentView),
    createdAt: iso(message.createdAt),
    updatedAt: iso(message.updatedAt),
  };
}

function attemptView(attempt: AttemptRecord): Record<string, unknown> {
  return {
    n: attempt.n,
    startedAt: iso(attempt.startedAt),
    endedAt: iso(attempt.endedAt),
    target: attempt.target,
    outcome: attempt.outcome,
    error: attempt.error === undefined ? null : errorView(attempt.error),
    remoteReference: attempt.remoteReference ?? null,
  };
}

export function messageDetailView(
  message: MessageRecord,
  history: readonly HistoryEvent[],
  attempts: readonly AttemptRecord[],
  includePayload: boolean,
): Record<string, unknown> {
  return {
    ...messageSummaryView(message),
    leaseOwner: message.leaseOwner ?? null,
    leaseExpiresAt: message.leaseExpiresAt === undefined ? null : iso(message.leaseExpiresAt),
    history: history.map(historyView),
    deliveryAttempts: attempts.map(attemptView),
    ...(includePayload ? { payload: parsedPayload(message.payload) } : {}),
  };
}

/** The stored canonical JSON as a value; text that is not JSON (not written by this gateway) stays text. */
function parsedPayload(payload: string): unknown {
  try {
    return JSON.parse(payload) as unknown;
  } catch {
    return payload;
  }
}

export function deadLetterView(deadLetter: DeadLetter): Record<string, unknown> {
  return {
    ...messageSummaryView(deadLetter.message),
    diedAt: iso(deadLetter.diedAt),
    error: errorView(deadLetter.error),
  };
}
