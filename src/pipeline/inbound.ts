/**
 * Hand-over of applications that an adapter received (an EfA submission, an XTA message) into the
 * pipeline: routed like portal applications, stored durably, idempotent per (instance, reference).
 */
import { createHash } from 'node:crypto';
import { newId } from '../ids.js';
import type { InboundApplication } from '../adapter-contract.js';
import type { AttachmentStore } from '../attachments.js';
import { canonicalJson } from '../canonical-json.js';
import { AmtError, type Problem } from '../errors.js';
import { storableText } from '../store/storable.js';
import { LONE_SURROGATE } from '../utf8.js';
import type { Router } from '../routing.js';
import { MAX_REMOTE_REFERENCE_LENGTH, type AttachmentRef, type Store } from '../store/types.js';

export function inboundReceiver(
  instanceId: string,
  deps: {
    store: Store;
    router: Router;
    attachments: AttachmentStore;
    onAccepted: () => void;
    now?: () => number;
  },
): (application: InboundApplication) => Promise<{ messageId: string }> {
  const now = deps.now ?? Date.now;
  return async (application) => {
    checkReference(instanceId, application.reference);
    const document = checkedDocument(instanceId, application.document);
    const tenant = deps.router.tenantByArs(application.ars);
    if (!tenant) throw new AmtError('AMT_UNKNOWN_TENANT', `no tenant has the ARS ${application.ars}`);
    const route = deps.router.resolve(application.ars, application.service, application.channel);
    if (!route) {
      throw new AmtError(
        'AMT_NO_ROUTE',
        `no route serves ARS ${application.ars} and service ${application.service}`,
      );
    }
    const attachments: AttachmentRef[] = [];
    for (const file of application.attachments ?? []) {
      const stored = await deps.attachments.saveBuffer(file.content);
      // Names from a peer, kept as text every store can hold (PostgreSQL keeps no U+0000).
      attachments.push({
        sha256: stored.sha256,
        size: stored.size,
        filename: storableText(file.filename),
        mediaType: storableText(file.mediaType),
        purpose: file.purpose === undefined ? undefined : storableText(file.purpose),
      });
    }
    // `document: null` when the adapter passed none: the key marks a payload written in this
    // form, so the reader never mistakes JSON data for a document (stored-message.ts).
    const payload = canonicalJson({
      reference: application.reference,
      channel: application.channel,
      data: application.data,
      document,
    });
    const requestHash = createHash('sha256')
      .update(payload)
      .update(attachments.map((a) => a.sha256).join(','))
      .digest('hex');
    const [result] = await deps.store.accept([
      {
        id: newId(),
        deliveryId: newId(),
        direction: 'inbound',
        tenantId: tenant.id,
        ars: application.ars,
        service: application.service,
        reference: application.reference,
        clientId: `adapter:${instanceId}`,
        routeId: route.id,
        target: route.adapter,
        payload,
        attachments,
        idempotency: { key: application.reference, requestHash },
        receivedAt: now(),
      },
    ]);
    if (!result) throw new AmtError('AMT_INTERNAL', 'the store returned no result');
    // The same reference with other content is still the same submission: keep the first one.
    const messageId = result.kind === 'conflict' ? result.messageId : result.message.id;
    if (result.kind === 'created') deps.onAccepted();
    return { messageId };
  };
}

/**
 * The peer's id of the submission: it names the message and keys its idempotency, so it must be
 * something every store keeps and finds again — printable and at most
 * `MAX_REMOTE_REFERENCE_LENGTH` long. Refused before anything is written.
 */
function checkReference(instanceId: string, reference: unknown): void {
  const problem =
    typeof reference !== 'string' || reference.trim() === ''
      ? 'is not a non-empty string'
      : reference.length > MAX_REMOTE_REFERENCE_LENGTH
        ? `has ${reference.length} characters, more than ${MAX_REMOTE_REFERENCE_LENGTH}`
        : /[\u0000-\u001f\u007f]/.test(reference) || LONE_SURROGATE.test(reference)
          ? 'holds a control character or a lone surrogate'
          : undefined;
  if (problem === undefined) return;
  throw new AmtError(
    'AMT_VALIDATION_FAILED',
    `adapter ${instanceId} handed over a reference that ${problem}`,
    {
      problems: [{ path: 'reference', message: problem }],
    },
  );
}

/**
 * The document as the contract describes it, or null when the adapter passed none. Anything else
 * is a defect of the adapter: refused before an attachment or the message is stored. Only the
 * two fields are kept.
 */
function checkedDocument(
  instanceId: string,
  document: unknown,
): { readonly mediaType: string; readonly content: string } | null {
  if (document === undefined) return null;
  const problems: Problem[] = [];
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    problems.push({ path: 'document', message: 'is not an object with mediaType and content' });
  } else {
    const { mediaType, content } = document as Record<string, unknown>;
    if (typeof mediaType !== 'string' || mediaType.trim() === '') {
      problems.push({ path: 'document.mediaType', message: 'is not a non-empty string' });
    }
    if (typeof content !== 'string') {
      problems.push({ path: 'document.content', message: 'is not a string' });
    }
    if (problems.length === 0) return { mediaType: mediaType as string, content: content as string };
  }
  throw new AmtError(
    'AMT_VALIDATION_FAILED',
    `adapter ${instanceId} handed over a document that is not { mediaType, content } as text`,
    { problems },
  );
}
