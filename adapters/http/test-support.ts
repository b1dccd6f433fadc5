/**
 * Test helpers for the `http` adapter tests: a recording adapter context, deliveries with real
 * attachment files, and real HTTP(S) servers on 127.0.0.1 with an ephemeral port.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
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
    instanceId: 'fachverfahren-test',
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
    messageId: '0b9a4c1e-7d2f-4f53-9a51-6f7c1d2e3a40',
    deliveryId: 'dlv-7f3e2a10-5c44-4b8e-9d7a-2e1f0c9b8a76',
    tenant: { id: 'muenster', ars: '055150000000', name: 'Stadt Münster' },
    service: '99050012104000',
    reference: 'ANT-2026-000123',
    attempt: 1,
    body: { contentType: 'application/xml', content: '<antrag><art>Gewerbeanmeldung</art></antrag>' },
    attachments: [],
    ...overrides,
  };
}

/** An attachment backed by a real file, as the attachment store hands it out. */
export function fileAttachment(
  file: string,
  mediaType: string,
  filename = path.basename(file),
): DeliveryAttachment {
  const content = readFileSync(file);
  return {
    ref: {
      sha256: createHash('sha256').update(content).digest('hex'),
      size: content.length,
      filename,
      mediaType,
    },
    path: file,
    open: () => createReadStream(file),
  };
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startServer(
  handler: http.RequestListener,
  tls?: https.ServerOptions,
): Promise<RunningServer> {
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port that was just free and now has no listener: connecting to it is refused. */
export async function closedPort(): Promise<number> {
  const probe = await startServer((_req, res) => res.end());
  await probe.close();
  return probe.port;
}

export async function settle<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}

export const fixture = (name: string): string => path.join(import.meta.dirname, 'fixtures', name);
