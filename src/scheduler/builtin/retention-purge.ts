/**
 * Retention: N days after a message reached its final state (delivered or dead), its payload
 * and attachment references go; the message row stays as a minimal audit record (status, ids,
 * history with the event `purged`, attempts). Attachment files no message references any more
 * are deleted from disk.
 *
 * Safe to interrupt and repeat: each batch is one commit, and a batch's files are deleted right
 * after it. A file written or reused within the last hour is kept, and one a new message takes
 * while it is being deleted is put back (see `AttachmentStore.removeUnlessUsed`). Last, every
 * file no message references and nobody wrote or reused for a day is deleted: what an intake
 * that failed after writing its files left, and what a purge that stopped between its commit
 * and the deletion left.
 */
import type { AttachmentStore } from '../../attachments.js';
import { MAX_ATTACHMENT_LOOKUP, type Store } from '../../store/types.js';
import type { JobTask, SchedulerLogger } from '../types.js';
import type { RetentionPurgeOptions } from './options.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface RetentionPurgeDeps {
  readonly store: Store;
  readonly attachments: AttachmentStore;
  readonly logger: SchedulerLogger;
  readonly now?: () => number;
  /** Messages per commit (default 500). */
  readonly batchSize?: number;
  /** Files younger than this are kept (default 1 h). */
  readonly freshFileMs?: number;
  /** Files no message references are deleted once unused this long (default 24 h). */
  readonly unreferencedFileMs?: number;
}

export function retentionPurgeTask(options: RetentionPurgeOptions, deps: RetentionPurgeDeps): JobTask {
  const now = deps.now ?? Date.now;
  const batchSize = deps.batchSize ?? 500;
  const freshFileMs = deps.freshFileMs ?? 60 * 60 * 1000;
  const unreferencedFileMs = deps.unreferencedFileMs ?? DAY_MS;
  return async ({ signal, progress }) => {
    const before = now() - options.days * DAY_MS;
    let purged = 0;
    let filesDeleted = 0;
    for (;;) {
      signal.throwIfAborted();
      const batch = await deps.store.purgePayloads(
        { before, routeIds: options.routes, limit: batchSize },
        now(),
      );
      purged += batch.purged;
      for (const sha256 of batch.unreferencedAttachments) {
        if (await deleteIfUnreferenced(sha256, deps, now() - freshFileMs)) filesDeleted += 1;
      }
      progress(purged);
      if (batch.purged < batchSize) break;
    }
    // Files no message references at all: left by an intake that failed after its files were
    // written, or by a purge that stopped between its commit and the deletion.
    // The store is asked about a chunk of files at once: one query per chunk, not per file.
    const unusedBefore = now() - unreferencedFileMs;
    let unreferencedDeleted = 0;
    let chunk: string[] = [];
    const sweep = async (): Promise<void> => {
      const referenced = chunk.length === 0 ? new Set() : await deps.store.referencedAttachments(chunk);
      for (const sha256 of chunk) {
        if (!referenced.has(sha256) && (await deleteIfUnreferenced(sha256, deps, unusedBefore))) {
          unreferencedDeleted += 1;
        }
      }
      chunk = [];
    };
    for await (const file of deps.attachments.storedFiles()) {
      signal.throwIfAborted();
      if (file.modifiedMs >= unusedBefore) continue;
      chunk.push(file.sha256);
      if (chunk.length === MAX_ATTACHMENT_LOOKUP) await sweep();
    }
    await sweep();
    deps.logger.info('retention purge done', {
      purged,
      attachmentFilesDeleted: filesDeleted,
      unreferencedFilesDeleted: unreferencedDeleted,
      days: options.days,
      routes: options.routes ?? 'all',
    });
    return { items: purged };
  };
}

async function deleteIfUnreferenced(
  sha256: string,
  deps: RetentionPurgeDeps,
  freshAfter: number,
): Promise<boolean> {
  return deps.attachments.removeUnlessUsed(
    sha256,
    async () => (await deps.store.referencedAttachments([sha256])).has(sha256),
    freshAfter,
  );
}
