import type { WalSyncOptions } from '../../src/store/wal-sync.js';

/**
 * For tests on a fake clock, which let the gateway settle for a number of event-loop turns: a
 * WAL flush that answers at once instead of after a real fdatasync on the thread pool. What the
 * flush guarantees is tested in test/store/sqlite.test.ts.
 */
export const instantWalFlush: WalSyncOptions = {
  open: async () => ({ datasync: async () => undefined, close: async () => undefined }),
};
