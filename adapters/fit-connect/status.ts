/**
 * Status polling for delivered submissions: reads each case's event log, verifies every SET and
 * reports forward/accept/reject as remote statuses. A SET that does not verify is logged and
 * ignored — a forged "accepted" must never reach the message history.
 */
import type { AdapterContext, AwaitingStatus } from '../../src/adapter-contract.js';
import type { SubmissionApiClient } from './client.js';
import type { DestinationDirectory } from './destinations.js';
import {
  InvalidSetError,
  STATUS_BY_EVENT,
  verifySet,
  type SetKeyResolver,
  type VerifiedSet,
} from './events.js';
import { parseRemoteReference } from './send.js';

export const FINAL_REMOTE_STATUSES = ['accepted', 'rejected'] as const;

export interface StatusDeps {
  readonly client: SubmissionApiClient;
  readonly destinations: DestinationDirectory;
  /** Keys of the Zustelldienst itself (its JWKS). */
  readonly serviceKeys: SetKeyResolver;
  readonly context: AdapterContext;
  readonly batchSize: number;
}

/** One status poll; returns how many status changes it reported. */
export async function pollStatuses(deps: StatusDeps, signal: AbortSignal): Promise<number> {
  const awaiting = await deps.context.awaitingStatus(FINAL_REMOTE_STATUSES, deps.batchSize);
  let reported = 0;
  for (const message of awaiting) {
    if (signal.aborted) break;
    try {
      reported += await pollOne(deps, message, signal);
    } catch (err) {
      deps.context.logger.warn('FIT-Connect status poll failed for a message', {
        messageId: message.messageId,
        error: (err as Error).message,
      });
    }
  }
  return reported;
}

async function pollOne(deps: StatusDeps, message: AwaitingStatus, signal: AbortSignal): Promise<number> {
  const ref = parseRemoteReference(message.remoteReference);
  if (!ref) {
    deps.context.logger.debug('FIT-Connect status: remote reference is not <submissionId>:<caseId>', {
      messageId: message.messageId,
    });
    return 0;
  }
  const log = await deps.client.json<{ eventLog?: unknown }>('GET', `/cases/${ref.caseId}/events`, {
    step: 'read event log',
    signal,
  });
  const tokens = Array.isArray(log.eventLog)
    ? log.eventLog.filter((t): t is string => typeof t === 'string')
    : [];
  const resolver = keyResolver(deps);
  const updates: { status: string; event: VerifiedSet }[] = [];
  for (const token of tokens) {
    let event: VerifiedSet;
    try {
      event = await verifySet(token, resolver);
    } catch (err) {
      if (!(err instanceof InvalidSetError)) throw err;
      deps.context.logger.warn('FIT-Connect event log holds a SET that does not verify; ignored', {
        messageId: message.messageId,
        caseId: ref.caseId,
        reason: err.message,
      });
      continue;
    }
    const status = STATUS_BY_EVENT[event.event];
    if (status && event.submissionId === ref.submissionId && event.caseId === ref.caseId)
      updates.push({ status, event });
  }
  // Report what happened after the status the core already knows, in log order.
  const known =
    message.remoteStatus === undefined ? -1 : updates.map((u) => u.status).lastIndexOf(message.remoteStatus);
  const fresh = updates.slice(known + 1);
  for (const { status, event } of fresh) {
    await deps.context.reportStatus({
      messageId: message.messageId,
      status,
      detail: {
        event: event.event,
        issuer: event.issuer,
        issuedAt: new Date(event.issuedAt * 1000).toISOString(),
        ...(Array.isArray(event.eventPayload.problems) ? { problems: event.eventPayload.problems } : {}),
      },
    });
  }
  return fresh.length;
}

/**
 * The Zustelldienst signs with a key from its JWKS and names itself by URL; a receiving system
 * names its destination id and signs with that destination's registered signing key.
 */
function keyResolver(deps: StatusDeps): SetKeyResolver {
  return (issuer, kid) =>
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(issuer)
      ? deps.destinations.signingKey(issuer, kid)
      : deps.serviceKeys(issuer, kid);
}
