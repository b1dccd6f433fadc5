/**
 * Outgoing: createMessageId → sendMessage (MessageMetaData header, GenericContentContainer body)
 * → a first getTransportReport. The XTA MessageID is the remote reference; the status
 * back-channel (`status.ts`) follows its transport report afterwards.
 */
import { readFile } from 'node:fs/promises';
import {
  rejectPermanently,
  retryLater,
  type AdapterLogger,
  type Delivery,
  type DeliveryResult,
} from '../../src/adapter-contract.js';
import type { AmtError } from '../../src/errors.js';
import type { Xta2Config } from './config.js';
import { genericContentContainerXml, type ContentItem } from './content.js';
import { XtaFailure } from './exceptions.js';
import { WSA, messageMetaDataXml } from './metadata.js';
import { fetchTransportReport } from './status.js';
import type { XtaClient } from './xta-client.js';
import { child, textOf } from '../../src/xml/element-tree.js';

/** The key under which the delivery id travels in MessageProperties, so the reader can drop repeats. */
export const DELIVERY_ID_PROPERTY = {
  code: 'deliveryId',
  listURI: 'urn:amtsbote:xta:message-property',
  listVersionID: '1',
};

/** `deliveryId` mode: the same delivery always gets the same XTA MessageID. */
export function derivedMessageId(deliveryId: string): string {
  return `urn:de:xta:messageid:amtsbote:${encodeURIComponent(deliveryId)}`;
}

export function toDeliveryError(failure: XtaFailure): AmtError {
  return failure.retryable
    ? retryLater(failure.message, {
        cause: failure,
        ...(failure.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: failure.retryAfterSeconds }),
      })
    : rejectPermanently(failure.message, { cause: failure });
}

function payloadOf(delivery: Delivery, filename: string | undefined): ContentItem {
  const [mediaType = 'application/octet-stream', ...params] = delivery.body.contentType
    .split(';')
    .map((p) => p.trim());
  const charset = params
    .find((p) => /^charset=/i.test(p))
    ?.slice('charset='.length)
    .replace(/"/g, '');
  const text = typeof delivery.body.content === 'string';
  return {
    content: text ? Buffer.from(delivery.body.content as string, 'utf8') : (delivery.body.content as Buffer),
    contentType: mediaType,
    encoding: text ? 'UTF-8' : charset,
    filename,
  };
}

async function createMessageId(client: XtaClient, signal: AbortSignal): Promise<string> {
  const answer = await client.call('management', 'createMessageId', { signal });
  const id = textOf(child(answer.body, WSA, 'MessageID'));
  if (!id) throw new XtaFailure('the createMessageId answer holds no wsa:MessageID', true);
  return id;
}

export async function sendDelivery(
  deps: { readonly client: XtaClient; readonly config: Xta2Config; readonly logger: AdapterLogger },
  delivery: Delivery,
  signal: AbortSignal,
): Promise<DeliveryResult> {
  const { client, config } = deps;
  const derive = config.messageIdSource === 'deliveryId';
  let messageId: string;
  try {
    messageId = derive ? derivedMessageId(delivery.deliveryId) : await createMessageId(client, signal);
  } catch (err) {
    if (err instanceof XtaFailure) throw toDeliveryError(err);
    throw err;
  }

  const payload = payloadOf(delivery, config.payloadFilename);
  const attachments: ContentItem[] = [];
  for (const attachment of delivery.attachments) {
    attachments.push({
      content: await readFile(attachment.path),
      contentType: attachment.ref.mediaType,
      filename: attachment.ref.filename,
      description: attachment.ref.purpose,
    });
  }
  const metadata = messageMetaDataXml({
    messageId,
    author: config.author,
    reader: config.reader,
    service: config.service,
    businessScenario: config.businessScenario,
    messageType: config.messageType,
    subject: config.subject,
    testMessage: config.testMessage ?? false,
    processReference: delivery.reference,
    properties: [{ key: DELIVERY_ID_PROPERTY, value: delivery.deliveryId }],
    createdAt: new Date(),
    payloadSize: payload.content.length,
  });

  try {
    await client.call('send', 'sendMessage', {
      body: genericContentContainerXml(payload, attachments),
      headers: [metadata],
      signal,
    });
  } catch (err) {
    if (!(err instanceof XtaFailure)) throw err;
    // 9024 "MessageID ist bereits vergeben": with derived ids, an earlier attempt got through.
    const alreadySent =
      derive &&
      delivery.attempt > 1 &&
      err.exception?.name === 'ParameterIsNotValidException' &&
      err.exception.code === '9024';
    if (!alreadySent) throw toDeliveryError(err);
    deps.logger.info('the XTA server already has this message from an earlier attempt', {
      deliveryId: delivery.deliveryId,
      xtaMessageId: messageId,
    });
  }

  const detail: Record<string, unknown> = { xtaMessageId: messageId };
  try {
    const report = await fetchTransportReport(client, messageId, signal);
    detail.transportStatus = report.status;
  } catch (err) {
    // The message is with the XTA server; the status back-channel will ask again.
    deps.logger.debug('no transport report right after sending', {
      xtaMessageId: messageId,
      reason: (err as Error).message,
    });
  }
  return { remoteReference: messageId, detail };
}
