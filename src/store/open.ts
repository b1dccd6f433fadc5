/** Opens the configured store, runs its migrations and wraps it for group commits. */
import type { StoreConfig } from '../config/types.js';
import { withGroupCommit } from './group-commit.js';
import type { Store } from './types.js';

export interface OpenedStore {
  /** Group-committing store for the hot paths (intake, outcomes). */
  readonly store: Store;
  /** Subscribes to "new work" notifications from other instances, where the store supports it. */
  readonly onWork: ((listener: () => void) => Promise<() => Promise<void>>) | undefined;
}

export async function openStore(
  config: StoreConfig,
  options: { migrate?: boolean } = {},
): Promise<OpenedStore> {
  let raw: Store & { onWork?: (listener: () => void) => Promise<() => Promise<void>> };
  if (config.type === 'sqlite') {
    const { SqliteStore } = await import('./sqlite.js');
    raw = SqliteStore.open(config.path);
  } else {
    const { PostgresStore } = await import('./postgres.js');
    raw = await PostgresStore.open(config.url, { poolSize: config.poolSize });
  }
  if (options.migrate !== false) await raw.migrate();
  return { store: withGroupCommit(raw), onWork: raw.onWork?.bind(raw) };
}
