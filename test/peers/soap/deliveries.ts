/** Builds `Delivery` objects for adapter tests, with attachments written to a temporary directory. */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Delivery, DeliveryAttachment } from '../../../src/adapter-contract.js';

export const GEWERBE_APPLICATION = {
  ars: '055150000000',
  leistungsschluessel: '99050012104000',
  betriebsbezeichnung: 'Bäckerei Beispiel & Söhne',
  taetigkeit: 'Herstellung und Verkauf von Backwaren',
  beginn: '2026-03-01',
  inhaber: { vorname: 'Erika', nachname: 'Mustermann' },
  betriebsstaette: { strasse: 'Prinzipalmarkt', hausnummer: '1', plz: '01067', ort: 'Münster' },
} as const;

export function makeDelivery(overrides: Partial<Delivery> = {}): Delivery {
  return {
    messageId: `m-${randomUUID()}`,
    deliveryId: randomUUID(),
    tenant: { id: 'muenster', ars: '055150000000', name: 'Stadt Münster' },
    service: '99050012104000',
    reference: 'PORTAL-2026-0001',
    attempt: 1,
    body: { contentType: 'application/json', content: JSON.stringify(GEWERBE_APPLICATION) },
    attachments: [],
    ...overrides,
  };
}

/** Writes `content` into `dir` and describes it the way the pipeline does. */
export function makeAttachment(
  dir: string,
  filename: string,
  mediaType: string,
  content: Buffer,
): DeliveryAttachment {
  const sha256 = createHash('sha256').update(content).digest('hex');
  const file = path.join(dir, sha256);
  writeFileSync(file, content);
  return {
    ref: { sha256, size: content.length, filename, mediaType, purpose: 'Nachweis' },
    path: file,
    open: () => createReadStream(file),
  };
}
