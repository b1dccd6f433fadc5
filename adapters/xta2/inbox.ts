/**
 * Incoming: getStatusList → for each message getMessage → `context.receive` → close. A message is
 * closed (removed from the msgBox) only after the pipeline has stored it; if anything fails in
 * between it stays in the box and comes again on the next poll, where `receive` — idempotent by
 * reference, the XTA MessageID — hands back the message it already has.
 */
import type { AdapterContext, InboundApplication } from '../../src/adapter-contract.js';
import { AmtError } from '../../src/errors.js';
import type { InboundRoute, Xta2Config } from './config.js';
import { ContentError, readGenericContentContainer, textOfContent } from './content.js';
import { XtaFailure } from './exceptions.js';
import {
  OSCI,
  OSCIMETA,
  WSA,
  XTA,
  escapeXml,
  readMessageMetaData,
  type MessageMetadata,
} from './metadata.js';
import type { XtaClient } from './xta-client.js';
import { child, childrenNamed, textOf, type XmlElement } from '../../src/xml/element-tree.js';

/** The first route whose given fields all match the message's metadata. */
export function routeFor(
  routes: readonly InboundRoute[],
  metadata: MessageMetadata,
): InboundRoute | undefined {
  return routes.find(
    (route) =>
      (route.service === undefined || route.service === metadata.service) &&
      (route.messageType === undefined || route.messageType === metadata.messageType?.code) &&
      (route.businessScenario === undefined || route.businessScenario === metadata.businessScenario?.code) &&
      (route.author === undefined || route.author === metadata.author?.identifier),
  );
}

function asPollError(failure: XtaFailure): AmtError {
  return failure.exception
    ? new AmtError('AMT_XTA_EXCEPTION', failure.message, { cause: failure, retryable: failure.retryable })
    : new AmtError('AMT_XTA_UNREACHABLE', failure.message, { cause: failure, retryable: failure.retryable });
}

interface Listed {
  readonly messageId: string;
  readonly metadata: XmlElement | undefined;
}

async function listMessages(
  client: XtaClient,
  batchSize: number,
  signal: AbortSignal,
): Promise<{ readonly requestId: string | undefined; readonly messages: readonly Listed[] }> {
  const answer = await client.call('msgBox', 'getStatusList', {
    body: `<osci:MsgBoxStatusListRequest xmlns:osci="${OSCI}" maxListItems="${batchSize}" ListForm="MessageMetaData"/>`,
    signal,
  });
  const requestId = answer.header
    ? child(answer.header, OSCI, 'MsgBoxResponse')?.attributes.MsgBoxRequestID
    : undefined;
  const list = child(answer.body, OSCI, 'MsgStatusList');
  const messages = new Map<string, Listed>();
  for (const metadata of list ? childrenNamed(list, OSCIMETA, 'MessageMetaData') : []) {
    const identification = child(metadata, OSCIMETA, 'MsgIdentification');
    const id = textOf(identification ? child(identification, WSA, 'MessageID') : undefined);
    if (id) messages.set(id, { messageId: id, metadata });
  }
  for (const attributes of list ? childrenNamed(list, OSCI, 'MsgAttributes') : []) {
    const id = textOf(child(attributes, WSA, 'MessageID'));
    if (id && !messages.has(id)) messages.set(id, { messageId: id, metadata: undefined });
  }
  return { requestId, messages: [...messages.values()].slice(0, batchSize) };
}

async function closeMessage(
  client: XtaClient,
  requestId: string,
  messageId: string,
  signal: AbortSignal,
): Promise<void> {
  await client.call('msgBox', 'close', {
    body:
      `<osci:MsgBoxCloseRequest xmlns:osci="${OSCI}" MsgBoxRequestID="${escapeXml(requestId)}">` +
      `<osci:LastMsgReceived>${escapeXml(messageId)}</osci:LastMsgReceived></osci:MsgBoxCloseRequest>`,
    signal,
  });
}

/** One pass over the msgBox; returns how many messages were received and closed. */
export async function pollInbox(
  client: XtaClient,
  context: AdapterContext,
  inbound: NonNullable<Xta2Config['inbound']>,
  signal: AbortSignal,
): Promise<number> {
  const log = context.logger;
  let listing;
  try {
    listing = await listMessages(client, inbound.batchSize ?? 50, signal);
  } catch (err) {
    throw err instanceof XtaFailure ? asPollError(err) : err;
  }
  let handled = 0;
  for (const listed of listing.messages) {
    if (signal.aborted) break;
    const messageId = listed.messageId;
    let answer;
    try {
      answer = await client.call('msgBox', 'getMessage', {
        body:
          `<osci:MsgBoxFetchRequest xmlns:osci="${OSCI}"><osci:MsgSelector>` +
          `<wsa:MessageID xmlns:wsa="${WSA}">${escapeXml(messageId)}</wsa:MessageID></osci:MsgSelector></osci:MsgBoxFetchRequest>`,
        signal,
      });
    } catch (err) {
      if (!(err instanceof XtaFailure)) throw err;
      if (err.exception?.name === 'InvalidMessageIDException' || err.retryable) {
        log.warn('an XTA message could not be fetched now', { xtaMessageId: messageId, reason: err.message });
        continue;
      }
      throw asPollError(err);
    }
    const metadataElement =
      (answer.header ? child(answer.header, OSCIMETA, 'MessageMetaData') : undefined) ?? listed.metadata;
    if (!metadataElement) {
      log.warn('an XTA message came without MessageMetaData; it stays in the msgBox', {
        xtaMessageId: messageId,
      });
      continue;
    }
    const metadata = readMessageMetaData(metadataElement);
    const route = routeFor(inbound.routes, metadata);
    if (!route) {
      log.warn('no inbound route matches an XTA message; it stays in the msgBox', {
        code: 'AMT_XTA_INBOUND_UNROUTABLE',
        xtaMessageId: messageId,
        service: metadata.service,
        messageType: metadata.messageType?.code,
        businessScenario: metadata.businessScenario?.code,
      });
      continue;
    }
    const container = child(answer.body, XTA, 'GenericContentContainer');
    let content;
    try {
      if (!container) throw new ContentError('the getMessage answer has no GenericContentContainer');
      content = readGenericContentContainer(container, answer.parts);
    } catch (err) {
      if (!(err instanceof ContentError)) throw err;
      log.warn('an XTA message cannot be read; it stays in the msgBox', {
        xtaMessageId: messageId,
        reason: err.message,
      });
      continue;
    }
    const application: InboundApplication = {
      ars: route.ars,
      service: route.leistungsschluessel,
      reference: messageId,
      ...(route.channel !== undefined ? { channel: route.channel } : {}),
      document: { mediaType: 'application/xml', content: textOfContent(content.message) },
      data: { metadata },
      attachments: content.attachments.map((attachment, index) => ({
        filename: attachment.filename ?? `attachment-${index + 1}`,
        mediaType: attachment.contentType,
        content: attachment.content,
        ...(attachment.description !== undefined ? { purpose: attachment.description } : {}),
      })),
    };
    try {
      await context.receive(application);
    } catch (err) {
      log.error('the pipeline did not take an XTA message; it stays in the msgBox for the next poll', {
        xtaMessageId: messageId,
        reason: (err as Error).message,
      });
      continue;
    }
    const requestId =
      (answer.header
        ? child(answer.header, OSCI, 'MsgBoxResponse')?.attributes.MsgBoxRequestID
        : undefined) ?? listing.requestId;
    if (requestId === undefined) {
      log.warn('the XTA server named no MsgBoxRequestID; the message cannot be closed', {
        xtaMessageId: messageId,
      });
      continue;
    }
    try {
      await closeMessage(client, requestId, messageId, signal);
    } catch (err) {
      if (!(err instanceof XtaFailure)) throw err;
      log.warn('an XTA message was received but not closed; it comes again and is recognised', {
        xtaMessageId: messageId,
        reason: err.message,
      });
      continue;
    }
    handled += 1;
  }
  return handled;
}
