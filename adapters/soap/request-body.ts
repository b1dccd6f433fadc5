/**
 * Turns a delivery's mapped body into the arguments of the SOAP operation, and its attachments into
 * MTOM parts. JSON bodies become the operation's argument object; XML bodies travel as raw XML.
 * A body the adapter cannot send is the mapping's fault, so every problem here is permanent.
 */
import { readFile } from 'node:fs/promises';
import { rejectPermanently, type Delivery } from '../../src/adapter-contract.js';
import { parseXml, XmlSyntaxError } from '../../src/xml/element-tree.js';

export const XOP_NAMESPACE = 'http://www.w3.org/2004/08/xop/include';
/** Marker a JSON mapping puts where an attachment's bytes belong: `{ "$attachment": "<sha256>" }`. */
export const ATTACHMENT_MARKER = '$attachment';

export interface MtomPart {
  readonly mimetype: string;
  readonly contentId: string;
  readonly name: string;
  readonly body: Buffer;
}

export interface SoapRequestBody {
  /** Arguments for the soap package: an object, or `{ _xml }` / `{ $xml }` for raw XML. */
  readonly args: Record<string, unknown>;
  readonly parts: readonly MtomPart[];
}

/** The Content-ID of an attachment: its SHA-256, so a mapping can compute it from the attachment list. */
export function contentIdOf(sha256: string): string {
  return `${sha256}@amtsbote`;
}

export function xopInclude(sha256: string): string {
  return `<xop:Include xmlns:xop="${XOP_NAMESPACE}" href="cid:${contentIdOf(sha256)}"/>`;
}

function isJson(contentType: string): boolean {
  return /^application\/([a-z0-9.+-]+\+)?json\b/i.test(contentType);
}

function isXml(contentType: string): boolean {
  return /^(application|text)\/([a-z0-9.+-]+\+)?xml\b/i.test(contentType);
}

/** Replaces `{ $attachment: sha256 }` markers by xop:Include elements; collects what was referenced. */
function replaceMarkers(value: unknown, mode: 'mtom' | 'omit', referenced: Set<string>): unknown {
  if (Array.isArray(value)) return value.map((item) => replaceMarkers(item, mode, referenced));
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  if (ATTACHMENT_MARKER in record) {
    const sha256 = record[ATTACHMENT_MARKER];
    if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) {
      throw rejectPermanently(
        `the mapped body has an ${ATTACHMENT_MARKER} marker that is not a SHA-256 hex string`,
      );
    }
    if (mode === 'omit') {
      throw rejectPermanently(
        `the mapped body references attachment ${sha256} but this adapter instance omits attachments (attachments: omit)`,
      );
    }
    referenced.add(sha256);
    return { $xml: xopInclude(sha256) };
  }
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, replaceMarkers(v, mode, referenced)]));
}

function jsonArgs(content: string, mode: 'mtom' | 'omit', referenced: Set<string>): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch (cause) {
    throw rejectPermanently(`the mapped body is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw rejectPermanently('the mapped JSON body must be an object (the operation arguments)');
  }
  return replaceMarkers(parsed, mode, referenced) as Record<string, unknown>;
}

function xmlArgs(
  content: string,
  xmlBody: 'element' | 'content',
  inputElement: string,
): Record<string, unknown> {
  const withoutDeclaration = content.replace(/^\uFEFF?\s*<\?xml[^?]*\?>\s*/, '');
  // `content` may hold several sibling elements; a wrapper makes it a document for the check.
  const checked = xmlBody === 'element' ? withoutDeclaration : `<wrapper>${withoutDeclaration}</wrapper>`;
  try {
    const root = parseXml(checked);
    if (xmlBody === 'element' && root.local !== inputElement) {
      throw rejectPermanently(
        `the mapped XML body's root element is ${root.local}, but the operation expects ${inputElement} (set xmlBody: content if the mapping produces only its content)`,
      );
    }
  } catch (err) {
    if (err instanceof XmlSyntaxError) {
      throw rejectPermanently(`the mapped body is not well-formed XML: ${err.message}`, { cause: err });
    }
    throw err;
  }
  // `_xml` replaces the whole body content; `$xml` becomes the content of the operation element.
  return xmlBody === 'element' ? { _xml: withoutDeclaration } : { $xml: withoutDeclaration };
}

function bodyText(content: string | Buffer): string {
  return typeof content === 'string' ? content : content.toString('utf8');
}

/** xop:Include references in raw XML, by SHA-256. */
function referencedInXml(xml: string): Set<string> {
  const found = new Set<string>();
  for (const match of xml.matchAll(/cid:([0-9a-f]{64})@amtsbote/g)) found.add(match[1]!);
  return found;
}

export async function buildRequestBody(
  delivery: Delivery,
  options: {
    readonly xmlBody: 'element' | 'content';
    readonly attachments: 'mtom' | 'omit';
    readonly inputElement: string;
  },
): Promise<SoapRequestBody> {
  const { contentType, content } = delivery.body;
  const referenced = new Set<string>();
  let args: Record<string, unknown>;
  if (isJson(contentType)) {
    args = jsonArgs(bodyText(content), options.attachments, referenced);
  } else if (isXml(contentType)) {
    const xml = bodyText(content);
    args = xmlArgs(xml, options.xmlBody, options.inputElement);
    for (const sha256 of referencedInXml(xml)) referenced.add(sha256);
  } else {
    throw rejectPermanently(`the soap adapter sends JSON or XML bodies, not ${contentType}`);
  }
  if (options.attachments === 'omit') return { args, parts: [] };

  const known = new Set(delivery.attachments.map((a) => a.ref.sha256));
  const unknown = [...referenced].filter((sha256) => !known.has(sha256));
  if (unknown.length > 0) {
    throw rejectPermanently(
      `the mapped body references attachments the message does not have: ${unknown.join(', ')}`,
    );
  }
  // Every attachment travels once, referenced or not: the same bytes need one MIME part.
  const parts: MtomPart[] = [];
  const sent = new Set<string>();
  for (const attachment of delivery.attachments) {
    if (sent.has(attachment.ref.sha256)) continue;
    sent.add(attachment.ref.sha256);
    parts.push({
      mimetype: attachment.ref.mediaType,
      contentId: contentIdOf(attachment.ref.sha256),
      name: attachment.ref.filename.replace(/["\r\n]/g, '_'),
      body: await readFile(attachment.path),
    });
  }
  return { args, parts };
}
