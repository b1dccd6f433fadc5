/**
 * A fake `AdapterContext` for adapter tests: it records what the adapter hands to the core
 * (received applications, reported statuses, log lines) and serves `awaitingStatus` from a list
 * the test controls. `receive` is idempotent by reference, like the real one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type {
  AdapterContext,
  AwaitingStatus,
  InboundApplication,
  RemoteStatusUpdate,
} from '../../../src/adapter-contract.js';

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly meta: Record<string, unknown> | undefined;
}

export interface FakeContext extends AdapterContext {
  readonly received: InboundApplication[];
  /** Every call to `receive`, also the ones that threw. */
  readonly receiveCalls: InboundApplication[];
  readonly statuses: RemoteStatusUpdate[];
  readonly logs: LogLine[];
  /** What `awaitingStatus` returns; the test edits it. */
  awaiting: AwaitingStatus[];
  /** When set, `receive` calls it first; throwing simulates a crash before the store commit. */
  beforeReceive: ((application: InboundApplication) => void) | undefined;
  cleanup(): void;
}

export function createFakeContext(instanceId = 'test-instance'): FakeContext {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-adapter-'));
  const byReference = new Map<string, string>();
  const seen = new Map<string, number>();
  let counter = 0;
  const logs: LogLine[] = [];
  const log =
    (level: LogLine['level']) =>
    (message: string, meta?: Record<string, unknown>): void => {
      logs.push({ level, message, meta });
    };
  const context: FakeContext = {
    instanceId,
    dataDir,
    resolvePath: (configured) => path.resolve(configured),
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    received: [],
    receiveCalls: [],
    statuses: [],
    logs,
    awaiting: [],
    beforeReceive: undefined,
    receive: async (application) => {
      context.receiveCalls.push(application);
      context.beforeReceive?.(application);
      const known = byReference.get(application.reference);
      if (known !== undefined) return { messageId: known };
      counter += 1;
      const messageId = `msg-${counter}`;
      byReference.set(application.reference, messageId);
      context.received.push(application);
      return { messageId };
    },
    reportStatus: async (update) => {
      context.statuses.push(update);
    },
    awaitingStatus: async (finalStatuses, limit) =>
      context.awaiting
        .filter((item) => item.remoteStatus === undefined || !finalStatuses.includes(item.remoteStatus))
        .slice(0, limit),
    rememberOnce: async (key, expiresAt) => {
      const until = seen.get(key);
      if (until !== undefined && until > Date.now()) return false;
      seen.set(key, expiresAt);
      return true;
    },
    cleanup: () => rmSync(dataDir, { recursive: true, force: true }),
  };
  return context;
}
