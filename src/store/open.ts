/** Opens the configured store, runs its migrations and wraps it for group commits. */
import type { StoreConfig } from '../config/types.js';
import { withGroupCommit, type CommitObserver } from './group-commit.js';
import type { Store } from './types.js';

export interface OpenedStore {
  /** Group-committing store for the hot paths (intake, outcomes). */
  readonly store: Store;
  /** Subscribes to "new work" notifications from other instances, where the store supports it. */
  readonly onWork: ((listener: () => void) => Promise<() => Promise<void>>) | undefined;
}

export async function openStore(
  config: StoreConfig,
  options: {
    migrate?: boolean;
    /** SQLite: intake commits, claims and outcomes on a store thread (the gateway's choice). */
    writerThread?: boolean;
    /** Told of every group commit (the gateway's metrics). */
    onCommit?: CommitObserver;
  } = {},
): Promise<OpenedStore> {
  let raw: Store & { onWork?: (listener: () => void) => Promise<() => Promise<void>> };
  if (config.type === 'sqlite') {
    const { SqliteStore } = await import('./sqlite.js');
    raw = SqliteStore.open(config.path, { writerThread: options.writerThread ?? false });
  } else {
    const { PostgresStore } = await import('./postgres.js');
    raw = await PostgresStore.open(config.url, { poolSize: config.poolSize });
  }
  if (options.migrate !== false) await raw.migrate();
  // Starts the store thread, if there is one, so that a database it cannot open fails the start.
  await raw.ping();
  return {
    store: withGroupCommit(raw, options.onCommit ? { onCommit: options.onCommit } : {}),
    onWork: raw.onWork?.bind(raw),
  };
}
