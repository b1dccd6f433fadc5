/**
 * The XTA `GenericContentContainer`: one message and its attachments, each base64 with MIME
 * attributes (`xta:ContentType`). Incoming content may also arrive MTOM-optimised, as an
 * xop:Include pointing at a MIME part of the answer.
 */
import { escapeXml, XTA } from './metadata.js';
import { child, childrenNamed, type XmlElement } from '../../src/xml/element-tree.js';

const XOP = 'http://www.w3.org/2004/08/xop/include';

export interface ContentItem {
  readonly content: Buffer;
  readonly contentType: string;
  readonly filename?: string | undefined;
  readonly encoding?: string | undefined;
  readonly description?: string | undefined;
  readonly id?: string | undefined;
}

export class ContentError extends Error {
  override readonly name = 'ContentError';
}

function contentXml(element: 'Message' | 'Attachment', item: ContentItem): string {
  const attributes: Record<string, string | undefined> = {
    contentDescription: item.description,
    contentType: item.contentType,
    encoding: item.encoding,
    filename: item.filename,
    id: item.id,
    size: item.content.length > 0 ? String(item.content.length) : undefined,
  };
  const rendered = Object.entries(attributes)
    .filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== '')
    .map(([name, value]) => ` ${name}="${escapeXml(value)}"`)
    .join('');
  return `<xta:${element}${rendered}>${item.content.toString('base64')}</xta:${element}>`;
}

export function genericContentContainerXml(
  message: ContentItem,
  attachments: readonly ContentItem[],
): string {
  return (
    `<xta:GenericContentContainer xmlns:xta="${XTA}"><xta:ContentContainer>` +
    contentXml('Message', message) +
    attachments.map((attachment) => contentXml('Attachment', attachment)).join('') +
    '</xta:ContentContainer></xta:GenericContentContainer>'
  );
}

function bytesOf(element: XmlElement, parts: ReadonlyMap<string, Buffer>): Buffer {
  const include = child(element, XOP, 'Include');
  if (include) {
    const href = include.attributes.href ?? '';
    const contentId = decodeURIComponent(href.replace(/^cid:/, ''));
    const part = parts.get(contentId);
    if (!part)
      throw new ContentError(`the answer refers to MIME part ${contentId}, which it does not contain`);
    return part;
  }
  const base64 = element.text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64))
    throw new ContentError(`the ${element.local} content is not base64`);
  return Buffer.from(base64, 'base64');
}

function itemOf(element: XmlElement, parts: ReadonlyMap<string, Buffer>): ContentItem {
  const a = element.attributes;
  return {
    content: bytesOf(element, parts),
    contentType: a.contentType ?? 'application/octet-stream',
    filename: a.filename,
    encoding: a.encoding,
    description: a.contentDescription,
    id: a.id,
  };
}

/** Reads a container; `parts` holds MTOM parts by Content-ID (without angle brackets). */
export function readGenericContentContainer(
  container: XmlElement,
  parts: ReadonlyMap<string, Buffer> = new Map(),
): { readonly message: ContentItem; readonly attachments: readonly ContentItem[] } {
  const contentContainer = child(container, XTA, 'ContentContainer');
  if (!contentContainer) {
    const encrypted = container.children.some((c) => c.local === 'EncryptedData');
    throw new ContentError(
      encrypted
        ? 'the content is end-to-end encrypted (xenc:EncryptedData), which this adapter cannot open'
        : 'the GenericContentContainer has no ContentContainer',
    );
  }
  const message = child(contentContainer, XTA, 'Message');
  if (!message) throw new ContentError('the ContentContainer has no Message');
  return {
    message: itemOf(message, parts),
    attachments: childrenNamed(contentContainer, XTA, 'Attachment').map((a) => itemOf(a, parts)),
  };
}

/** Decodes a message's bytes as text, honouring its `encoding` attribute (UTF-8 by default). */
export function textOfContent(item: ContentItem): string {
  const encoding = (item.encoding ?? 'utf-8').toLowerCase().replace(/_/g, '-');
  try {
    return new TextDecoder(encoding).decode(item.content);
  } catch {
    return new TextDecoder('utf-8').decode(item.content);
  }
}
