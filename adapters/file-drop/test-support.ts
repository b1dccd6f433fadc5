/**
 * Test helpers for the `file-drop` adapter tests: a recording adapter context and deliveries
 * whose attachments are real files, as the attachment store hands them out.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { AdapterContext, Delivery, DeliveryAttachment } from '../../src/adapter-contract.js';

export interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly meta: Record<string, unknown> | undefined;
}

export type RecordingContext = AdapterContext & { readonly lines: LogLine[] };

export function fakeContext(dataDir: string): RecordingContext {
  const lines: LogLine[] = [];
  const record = (level: string) => (message: string, meta?: Record<string, unknown>) => {
    lines.push({ level, message, meta });
  };
  return {
    instanceId: 'meldewesen-drop',
    dataDir,
    resolvePath: (configured: string) => path.resolve(dataDir, configured),
    lines,
    logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') },
    receive: async () => ({ messageId: 'not-used' }),
    reportStatus: async () => undefined,
    awaitingStatus: async () => [],
    rememberOnce: async () => true,
  };
}

export function makeDelivery(overrides: Partial<Delivery> = {}): Delivery {
  return {
    messageId: '5d0c7e4a-31b2-4f0e-8a6d-9c1b2e3f4a50',
    deliveryId: 'dlv-2b7c9e1f-4d3a-4e8b-a1c2-7f6e5d4c3b2a',
    tenant: { id: 'bielefeld', ars: '057110000000', name: 'Stadt Bielefeld' },
    service: '99115005001000',
    reference: 'WSA-2026-00042',
    attempt: 1,
    body: { contentType: 'application/xml', content: '<meldung><art>Wohnsitzanmeldung</art></meldung>' },
    attachments: [],
    ...overrides,
  };
}

export const sha256 = (content: string | Buffer): string =>
  createHash('sha256').update(content).digest('hex');

export function fileAttachment(
  file: string,
  mediaType: string,
  filename = path.basename(file),
): DeliveryAttachment {
  const content = readFileSync(file);
  return {
    ref: { sha256: sha256(content), size: content.length, filename, mediaType },
    path: file,
    open: () => createReadStream(file),
  };
}

/** Every entry below `dir`, relative, sorted — to see exactly what a delivery left behind. */
export function listTree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((p) => p.split(path.sep).join('/'))
    .sort();
}

export async function settle<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}
