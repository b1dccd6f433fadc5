/**
 * An AdapterContext for adapter tests: records what the adapter hands to the pipeline
 * (`receive`, `reportStatus`), answers `awaitingStatus` from a list the test fills and keeps
 * up to date like the store would, and implements `rememberOnce` with a Map.
 */
import { createHash, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type {
  AdapterContext,
  AwaitingStatus,
  Delivery,
  InboundApplication,
  RemoteStatusUpdate,
} from '../../../src/adapter-contract.js';

export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly meta: Record<string, unknown> | undefined;
}

export interface FakeContext extends AdapterContext {
  readonly received: InboundApplication[];
  readonly statuses: RemoteStatusUpdate[];
  /** Delivered messages waiting for a final status; `reportStatus` updates their remoteStatus. */
  readonly awaiting: AwaitingStatus[];
  readonly logs: LogEntry[];
  readonly remembered: Map<string, number>;
  /** When set, `receive` rejects with it (the store is down). */
  failReceive: Error | undefined;
}

export function fakeContext(instanceId = 'fit-connect-test'): FakeContext {
  const logs: LogEntry[] = [];
  const log =
    (level: LogEntry['level']) =>
    (message: string, meta?: Record<string, unknown>): void => {
      logs.push({ level, message, meta });
    };
  const messageIds = new Map<string, string>();
  const context: FakeContext = {
    instanceId,
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    // The adapter keeps no files of its own; nothing is created here.
    dataDir: os.tmpdir(),
    resolvePath: (configured) => path.resolve(configured),
    received: [],
    statuses: [],
    awaiting: [],
    logs,
    remembered: new Map(),
    failReceive: undefined,
    async receive(application) {
      if (context.failReceive) throw context.failReceive;
      let messageId = messageIds.get(application.reference);
      if (!messageId) {
        messageId = randomUUID();
        messageIds.set(application.reference, messageId);
        context.received.push(application);
      }
      return { messageId };
    },
    async reportStatus(update) {
      context.statuses.push(update);
      const i = context.awaiting.findIndex((a) => a.messageId === update.messageId);
      if (i >= 0) context.awaiting[i] = { ...context.awaiting[i]!, remoteStatus: update.status };
    },
    async awaitingStatus(finalStatuses, limit) {
      return context.awaiting
        .filter((a) => a.remoteStatus === undefined || !finalStatuses.includes(a.remoteStatus))
        .slice(0, limit);
    },
    async rememberOnce(key, expiresAt) {
      const seen = context.remembered.get(key);
      if (seen !== undefined && seen > Date.now()) return false;
      context.remembered.set(key, expiresAt);
      return true;
    },
  };
  return context;
}

export interface TestAttachment {
  readonly filename: string;
  readonly mediaType: string;
  readonly content: Buffer;
  readonly purpose?: string;
}

/** A delivery as the pipeline would hand it over, attachments readable from memory. */
export function makeDelivery(input: {
  service: string;
  ars?: string;
  body: string | Buffer;
  contentType?: string;
  attachments?: readonly TestAttachment[];
  deliveryId?: string;
  attempt?: number;
  identity?: Delivery['identity'];
}): Delivery {
  return {
    messageId: randomUUID(),
    deliveryId: input.deliveryId ?? randomUUID(),
    tenant: { id: 'muenster', ars: input.ars ?? '055150000000', name: 'Stadt Münster' },
    service: input.service,
    reference: 'PORTAL-2026-0001',
    attempt: input.attempt ?? 1,
    body: { contentType: input.contentType ?? 'application/json', content: input.body },
    attachments: (input.attachments ?? []).map((a) => ({
      ref: {
        sha256: createHash('sha256').update(a.content).digest('hex'),
        size: a.content.length,
        filename: a.filename,
        mediaType: a.mediaType,
        purpose: a.purpose,
      },
      path: `/nonexistent/${a.filename}`,
      open: () => Readable.from([a.content]),
    })),
    ...(input.identity ? { identity: input.identity } : {}),
  };
}

/** Waits until `condition` holds (for work a callback starts in the background). */
export async function eventually(condition: () => boolean, what: string, attempts = 200): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (condition()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`gave up waiting for ${what}`);
}
