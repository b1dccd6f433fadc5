/**
 * Sending one delivery as a FIT-Connect submission: find the destination (configured or routed),
 * fetch and check its key, announce the submission, upload each attachment encrypted, then submit
 * the encrypted metadata and Fachdaten.
 *
 * A retry after a failure between announcing and submitting announces a new submission; the
 * Zustelldienst discards the incomplete one on its own. Attachment ids derive from the delivery
 * id, so every attempt of one delivery uses the same ids.
 */
import type { Readable } from 'node:stream';
import type { Delivery, DeliveryAttachment, DeliveryResult } from '../../src/adapter-contract.js';
import { rejectPermanently, retryLater } from '../../src/adapter-contract.js';
import { leistungsschluesselUrn } from '../../src/domain.js';
import type { SubmissionApiClient } from './client.js';
import type { ResolvedConfig } from './config.js';
import type { Destination, DestinationDirectory } from './destinations.js';
import { encryptJwe, nameBasedUuid, sha512Hex } from './jwe.js';
import type { IdentificationReports } from './identification-report.js';
import { buildMetadata, type MetadataAttachment } from './metadata.js';
import { postboxSubmission, UNCONFIRMED_POSTBOX_SCHEMA_URI } from './postbox.js';
import type { RoutingDirectory } from './routing.js';

/** Namespace of the attachment ids this gateway derives (a fixed, random UUID). */
const ATTACHMENT_ID_NAMESPACE = '6f1c2d7e-3b7a-4c55-9a0e-5d8e2f4b9c31';

export interface SenderDeps {
  readonly client: SubmissionApiClient;
  readonly destinations: DestinationDirectory;
  readonly routing: RoutingDirectory | undefined;
  readonly config: ResolvedConfig;
  /** Builds `authenticationInformation` from the delivery's verified identity; none without it. */
  readonly reports?: IdentificationReports;
}

/** The remote reference stored with a delivered message: `<submissionId>:<caseId>`. */
export function formatRemoteReference(submissionId: string, caseId: string): string {
  return `${submissionId}:${caseId}`;
}

export function parseRemoteReference(
  value: string | undefined,
): { submissionId: string; caseId: string } | undefined {
  const match = /^([0-9a-fA-F-]{32,36}):([0-9a-fA-F-]{32,36})$/.exec(value ?? '');
  return match ? { submissionId: match[1]!, caseId: match[2]! } : undefined;
}

export function attachmentIdFor(deliveryId: string, index: number): string {
  return nameBasedUuid(ATTACHMENT_ID_NAMESPACE, `${deliveryId}/${index}`);
}

export async function deliverSubmission(
  deps: SenderDeps,
  delivery: Delivery,
  signal: AbortSignal,
): Promise<DeliveryResult> {
  const { client, config } = deps;
  if (config.sending.postbox) return deliverNotice(deps, delivery, signal);
  const dataMimeType = fachdatenMimeType(delivery.body.contentType);
  for (const a of delivery.attachments) {
    if (a.ref.size > config.sending.maxAttachmentBytes) {
      throw rejectPermanently(
        `attachment ${a.ref.filename} has ${a.ref.size} bytes, FIT-Connect sending allows ${config.sending.maxAttachmentBytes}`,
      );
    }
  }
  const destinationId = await resolveDestinationId(deps, delivery, signal);
  const target = await deps.destinations.encryptionTarget(destinationId, signal);
  const schemaUri = submissionSchemaUri(config, target.destination, delivery.service, dataMimeType);
  const attachmentIds = delivery.attachments.map((_, i) => attachmentIdFor(delivery.deliveryId, i));

  const { submissionId, caseId } = await createSubmission(
    deps,
    {
      destinationId,
      announcedAttachments: attachmentIds,
      serviceType: {
        identifier: leistungsschluesselUrn(delivery.service),
        name: config.sending.services[delivery.service]?.name ?? `Leistung ${delivery.service}`,
      },
    },
    signal,
  );

  const described: MetadataAttachment[] = [];
  for (const [i, attachment] of delivery.attachments.entries()) {
    const attachmentId = attachmentIds[i]!;
    const content = await readAll(attachment, config.sending.maxAttachmentBytes);
    const jwe = await encryptJwe(content, target.key, target.kid, attachment.ref.mediaType);
    await client.request('PUT', `/submissions/${submissionId}/attachments/${attachmentId}`, {
      step: `upload attachment ${i + 1} of ${delivery.attachments.length}`,
      signal,
      body: jwe,
      contentType: 'application/jose',
    });
    described.push({
      attachmentId,
      hash: { type: 'sha512', content: sha512Hex(content) },
      mimeType: attachment.ref.mediaType,
      filename: attachment.ref.filename,
      ...(attachment.ref.purpose ? { description: attachment.ref.purpose } : {}),
      purpose: 'attachment',
    });
  }

  const data =
    typeof delivery.body.content === 'string'
      ? Buffer.from(delivery.body.content, 'utf8')
      : delivery.body.content;
  const authenticationInformation = (await deps.reports?.for(delivery)) ?? [];
  await submitEncrypted(
    deps,
    target,
    submissionId,
    { data, mimeType: dataMimeType, schemaUri, attachments: described, authenticationInformation },
    signal,
  );
  return {
    remoteReference: formatRemoteReference(submissionId, caseId),
    detail: { submissionId, caseId, destinationId, attachments: attachmentIds.length },
  };
}

/**
 * A citizen status notice to the postbox destination: the postbox message as JSON Fachdaten, no
 * attachments, announced as the configured postbox service.
 */
async function deliverNotice(
  deps: SenderDeps,
  delivery: Delivery,
  signal: AbortSignal,
): Promise<DeliveryResult> {
  const { config } = deps;
  const postbox = config.sending.postbox!;
  const destinationId = config.sending.destinationId;
  if (!destinationId) {
    throw rejectPermanently(
      'FIT-Connect sending.postbox needs sending.destinationId, the postbox destination',
    );
  }
  const notice = postboxSubmission(delivery, postbox);
  const target = await deps.destinations.encryptionTarget(destinationId, signal);
  const mimeType = 'application/json';
  const declared = target.destination.services
    ?.find((s) => s.identifier === notice.serviceType.identifier)
    ?.submissionSchemas?.find((s) => s.mimeType === undefined || s.mimeType === mimeType)?.schemaUri;
  const schemaUri = notice.schemaUri ?? declared ?? UNCONFIRMED_POSTBOX_SCHEMA_URI;

  const { submissionId, caseId } = await createSubmission(
    deps,
    { destinationId, announcedAttachments: [], serviceType: notice.serviceType },
    signal,
  );
  await submitEncrypted(
    deps,
    target,
    submissionId,
    { data: notice.data, mimeType, schemaUri, attachments: [], authenticationInformation: [] },
    signal,
  );
  return {
    remoteReference: formatRemoteReference(submissionId, caseId),
    detail: { submissionId, caseId, destinationId, notice: true },
  };
}

/** Announces a submission; its id and case id come back. */
async function createSubmission(
  deps: SenderDeps,
  body: {
    readonly destinationId: string;
    readonly announcedAttachments: readonly string[];
    readonly serviceType: { readonly identifier: string; readonly name: string };
  },
  signal: AbortSignal,
): Promise<{ submissionId: string; caseId: string }> {
  const created = await deps.client.json<{ submissionId?: unknown; caseId?: unknown }>(
    'POST',
    '/submissions',
    { step: 'create submission', signal, json: body },
  );
  if (typeof created.submissionId !== 'string' || typeof created.caseId !== 'string') {
    throw retryLater('FIT-Connect create submission: the answer carries no submissionId or caseId');
  }
  return { submissionId: created.submissionId, caseId: created.caseId };
}

/** Encrypts metadata and Fachdaten for the destination and submits them (attachments are uploaded before). */
async function submitEncrypted(
  deps: SenderDeps,
  target: { readonly key: Parameters<typeof encryptJwe>[1]; readonly kid: string },
  submissionId: string,
  content: {
    readonly data: Buffer;
    readonly mimeType: 'application/json' | 'application/xml';
    readonly schemaUri: string;
    readonly attachments: MetadataAttachment[];
    readonly authenticationInformation: Parameters<typeof buildMetadata>[0]['authenticationInformation'];
  },
  signal: AbortSignal,
): Promise<void> {
  const { config } = deps;
  const metadata = buildMetadata({
    version: config.sending.metadataVersion,
    data: { hash: sha512Hex(content.data), schemaUri: content.schemaUri, mimeType: content.mimeType },
    attachments: content.attachments,
    authenticationInformation: content.authenticationInformation,
    ...(config.sending.replyChannel ? { replyChannel: config.sending.replyChannel } : {}),
  });
  const encryptedMetadata = await encryptJwe(
    Buffer.from(JSON.stringify(metadata), 'utf8'),
    target.key,
    target.kid,
    'application/json',
  );
  const encryptedData = await encryptJwe(content.data, target.key, target.kid, content.mimeType);
  await deps.client.request('PUT', `/submissions/${submissionId}`, {
    step: 'submit submission',
    signal,
    json: { encryptedMetadata, encryptedData },
  });
}

async function resolveDestinationId(
  deps: SenderDeps,
  delivery: Delivery,
  signal: AbortSignal,
): Promise<string> {
  const configured = deps.config.sending.destinationId;
  if (configured) return configured;
  if (!deps.routing) {
    throw rejectPermanently(
      'FIT-Connect sending needs sending.destinationId or routingApiUrl in the configuration',
    );
  }
  return deps.routing.destinationFor(delivery.tenant.ars, delivery.service, signal);
}

/** FIT-Connect Fachdaten are JSON or XML; the mapped body's content type says which. */
export function fachdatenMimeType(contentType: string): 'application/json' | 'application/xml' {
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  if (base === 'application/json' || base.endsWith('+json')) return 'application/json';
  if (base === 'application/xml' || base === 'text/xml' || base.endsWith('+xml')) return 'application/xml';
  throw rejectPermanently(`FIT-Connect carries JSON or XML Fachdaten, the mapped body is ${contentType}`);
}

function submissionSchemaUri(
  config: ResolvedConfig,
  destination: Destination,
  service: string,
  mimeType: string,
): string {
  const configured = config.sending.services[service]?.schemaUri;
  if (configured) return configured;
  const urn = leistungsschluesselUrn(service);
  const offered = destination.services?.find((s) => s.identifier === urn || s.identifier === service);
  const schema = offered?.submissionSchemas?.find((s) => s.mimeType === undefined || s.mimeType === mimeType);
  if (schema) return schema.schemaUri;
  throw rejectPermanently(
    `FIT-Connect destination ${destination.destinationId} declares no ${mimeType} submission schema for service ${service}; ` +
      `set sending.services.${service}.schemaUri`,
  );
}

async function readAll(attachment: DeliveryAttachment, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const stream: Readable = attachment.open();
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += buffer.length;
    if (size > maxBytes) {
      stream.destroy();
      throw rejectPermanently(`attachment ${attachment.ref.filename} is larger than ${maxBytes} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks, size);
}
