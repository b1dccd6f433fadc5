import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withGroupCommit } from '../../src/store/group-commit.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { describeStoreContract } from './contract.js';

const dirs = new Map<Store, string>();

function openFresh(wrap: (s: Store) => Store): () => Promise<Store> {
  return async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-sqlite-'));
    const store = wrap(SqliteStore.open(path.join(dir, 'data', 'amtsbote.db')));
    dirs.set(store, dir);
    return store;
  };
}

async function removeDir(store: Store): Promise<void> {
  const dir = dirs.get(store);
  dirs.delete(store);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

describeStoreContract(
  'SQLite',
  openFresh((s) => s),
  removeDir,
);
describeStoreContract(
  'SQLite with group commit',
  openFresh((s) => withGroupCommit(s)),
  removeDir,
);
