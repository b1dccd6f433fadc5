/**
 * Retention: N days after a message reached its final state (delivered or dead), its payload
 * and attachment references go; the message row stays as a minimal audit record (status, ids,
 * history with the event `purged`, attempts). Attachment files no message references any more
 * are deleted from disk.
 *
 * Safe to interrupt and repeat: each batch is one commit, and a batch's files are deleted right
 * after it. A crash between the two leaves those files on disk with no reference to them (a
 * later run does not find them again) — the only leftover, and it holds no link to any person.
 * A file written or reused within the last hour is kept, and one a new message takes while it is
 * being deleted is put back (see `AttachmentStore.removeUnlessUsed`).
 */
import type { AttachmentStore } from '../../attachments.js';
import type { Store } from '../../store/types.js';
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
}

export function retentionPurgeTask(options: RetentionPurgeOptions, deps: RetentionPurgeDeps): JobTask {
  const now = deps.now ?? Date.now;
  const batchSize = deps.batchSize ?? 500;
  const freshFileMs = deps.freshFileMs ?? 60 * 60 * 1000;
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
    deps.logger.info('retention purge done', {
      purged,
      attachmentFilesDeleted: filesDeleted,
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
    () => deps.store.isAttachmentReferenced(sha256),
    freshAfter,
  );
}
