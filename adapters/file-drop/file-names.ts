/**
 * File names for the drop directory. Every value that comes from a message (reference,
 * attachment names …) is reduced to `A-Z a-z 0-9 . _ -`, so no value can leave the directory,
 * hide a file from an importer (leading dot) or trip a Windows share (reserved names).
 */
import { createHash } from 'node:crypto';
import type { Delivery } from '../../src/adapter-contract.js';

export const FILE_NAME_PLACEHOLDERS = [
  'deliveryId',
  'messageId',
  'service',
  'ars',
  'reference',
  'ext',
] as const;
type Placeholder = (typeof FILE_NAME_PLACEHOLDERS)[number];

/** Longest name written; leaves room for `.meta.json` within the 255 bytes most file systems allow. */
const MAX_NAME_LENGTH = 200;
const MAX_VALUE_LENGTH = 100;
const GERMAN: Readonly<Record<string, string>> = {
  ä: 'ae',
  ö: 'oe',
  ü: 'ue',
  Ä: 'Ae',
  Ö: 'Oe',
  Ü: 'Ue',
  ß: 'ss',
};
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\.|$)/i;

/** Reduces a value to safe file-name characters (German umlauts transliterated). */
export function safeFileNamePart(value: string, maxLength = MAX_VALUE_LENGTH): string {
  return value
    .normalize('NFC')
    .replace(/[äöüÄÖÜß]/g, (c) => GERMAN[c] ?? '_')
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .slice(0, maxLength);
}

/** `.xml`, `.json`, `.txt` or `.bin` for a media type. */
export function extensionFor(contentType: string): string {
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  if (type === 'application/xml' || type === 'text/xml' || type.endsWith('+xml')) return '.xml';
  if (type === 'application/json' || type.endsWith('+json')) return '.json';
  if (type === 'text/plain') return '.txt';
  return '.bin';
}

/** The main file's name: the pattern with its placeholders filled by sanitised values. */
export function mainFileName(pattern: string, delivery: Delivery): string {
  const values: Record<Placeholder, string> = {
    deliveryId: safeFileNamePart(delivery.deliveryId),
    messageId: safeFileNamePart(delivery.messageId),
    service: safeFileNamePart(delivery.service),
    ars: safeFileNamePart(delivery.tenant.ars),
    reference: safeFileNamePart(delivery.reference ?? ''),
    ext: extensionFor(delivery.body.contentType),
  };
  const filled = pattern.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in values ? values[name as Placeholder] : whole,
  );
  return notReserved(withoutLeadingDots(filled));
}

/** Placeholders in a pattern that this adapter does not know. */
export function unknownPlaceholders(pattern: string): string[] {
  return [...pattern.matchAll(/\{([^}]*)\}/g)]
    .map((m) => m[1] ?? '')
    .filter((name) => !(FILE_NAME_PLACEHOLDERS as readonly string[]).includes(name));
}

/** True when a filled name can be written as it is. */
export function isUsableName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= MAX_NAME_LENGTH &&
    !name.startsWith('.') &&
    /^[A-Za-z0-9._-]+$/.test(name)
  );
}

/**
 * Safe, distinct names for the attachments of one message, in their order. Distinct also when
 * compared case-insensitively, because Windows shares are.
 */
export function attachmentFileNames(filenames: readonly string[]): string[] {
  const taken = new Set<string>();
  return filenames.map((original, index) => {
    let name = withoutLeadingDots(safeFileNamePart(original, 120));
    if (name === '' || /^[._-]*$/.test(name)) name = `attachment-${index + 1}`;
    name = notReserved(name);
    const dot = name.lastIndexOf('.');
    const stem = dot > 0 ? name.slice(0, dot) : name;
    const extension = dot > 0 ? name.slice(dot) : '';
    let candidate = stem + extension;
    for (let n = 2; taken.has(candidate.toLowerCase()); n++) candidate = `${stem}-${n}${extension}`;
    taken.add(candidate.toLowerCase());
    return candidate;
  });
}

/**
 * Names of the work files of one delivery: dot-names importers ignore, fixed per delivery so a
 * retry after a crash finds and removes what the crashed attempt left behind.
 */
export function workFileNames(deliveryId: string): { main: string; sidecar: string; attachments: string } {
  const digest = createHash('sha256').update(deliveryId).digest('hex').slice(0, 12);
  const base = `.amtsbote-${safeFileNamePart(deliveryId, 60)}-${digest}`;
  return { main: `${base}.tmp`, sidecar: `${base}.meta.tmp`, attachments: `${base}.attachments.tmp` };
}

function withoutLeadingDots(name: string): string {
  return name.replace(/^\.+/, '_');
}

/** Windows refuses `CON`, `NUL.xml` … on a share even with an extension. */
function notReserved(name: string): string {
  return WINDOWS_RESERVED.test(name) ? `_${name}` : name;
}
