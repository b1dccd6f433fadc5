/**
 * Delivery into a drop directory (and, with `inbox`, status files read back: see inbox.ts). Attachments and sidecar are put in place first and the main
 * file last, so an importer that sees the main file sees everything that belongs to it. The main
 * file is written once per delivery and never overwritten.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  rejectPermanently,
  retryLater,
  type AdapterContext,
  type AdapterInstance,
  type Delivery,
  type DeliveryResult,
} from '../../src/adapter-contract.js';
import { parseDuration } from '../../src/config/units.js';
import { AmtError, isAmtError } from '../../src/errors.js';
import {
  publishWithoutReplacing,
  removeAll,
  sha256OfFile,
  streamDurably,
  syncDirectory,
  writeDurably,
} from './durable-files.js';
import {
  attachmentFileNames,
  isUsableName,
  mainFileName,
  unknownPlaceholders,
  workFileNames,
} from './file-names.js';
import { StatusInbox } from './inbox.js';
import type { FileDropConfig } from './manifest.js';

/** One attachment as listed in the sidecar. */
export interface SidecarAttachment {
  /** Path relative to the drop directory; null when attachments are omitted. */
  readonly file: string | null;
  readonly filename: string;
  readonly mediaType: string;
  readonly size: number;
  readonly sha256: string;
  readonly purpose?: string;
}

/** Content of `<name>.meta.json`. */
export interface Sidecar {
  readonly messageId: string;
  readonly deliveryId: string;
  readonly tenant: { readonly id: string; readonly ars: string; readonly name: string };
  readonly service: string;
  readonly reference: string | null;
  readonly file: string;
  readonly contentType: string;
  readonly size: number;
  readonly sha256: string;
  readonly attachments: readonly SidecarAttachment[];
  readonly createdAt: string;
}

/** Failures a later attempt cannot overcome: the configured path itself is unusable. */
const PERMANENT_CODES = new Set(['ENOTDIR', 'EISDIR', 'ENAMETOOLONG', 'ELOOP']);

export function createFileDrop(context: AdapterContext, config: FileDropConfig): AdapterInstance {
  return new FileDrop(context, config);
}

class FileDrop implements AdapterInstance {
  private readonly directory: string;
  private readonly pattern: string;
  private readonly sidecar: boolean;
  private readonly copyAttachments: boolean;
  private readonly fileMode: number;
  private readonly directoryMode: number;

  constructor(
    private readonly context: AdapterContext,
    config: FileDropConfig,
  ) {
    this.directory = context.resolvePath(config.directory);
    this.pattern = config.fileName ?? '{deliveryId}{ext}';
    const unknown = unknownPlaceholders(this.pattern);
    if (unknown.length > 0 || this.pattern.startsWith('.') || /[/\\\0]/.test(this.pattern)) {
      throw configError('/fileName', `not a usable file name pattern: ${this.pattern}`);
    }
    const mode = config.fileMode ?? '0640';
    if (!/^0?[0-7]{3}$/.test(mode)) throw configError('/fileMode', `not an octal file mode: ${mode}`);
    this.fileMode = Number.parseInt(mode, 8);
    // Directories need the execute bit wherever the files are readable.
    this.directoryMode = this.fileMode | ((this.fileMode & 0o444) >> 2);
    this.sidecar = config.sidecar ?? true;
    this.copyAttachments = (config.attachments ?? 'copy') === 'copy';
    if (config.inbox) {
      const inbox = new StatusInbox(
        context,
        config.inbox,
        parseDuration(config.inbox.minAge ?? '2s'),
        this.fileMode,
        this.directoryMode,
      );
      this.poll = (signal) => inbox.poll(signal);
    }
  }

  /** Reads the inbox once (only with `inbox` configured). */
  readonly poll?: (signal: AbortSignal) => Promise<{ items: number }>;

  async deliver(delivery: Delivery, signal: AbortSignal): Promise<DeliveryResult> {
    const name = mainFileName(this.pattern, delivery);
    if (!isUsableName(name)) {
      throw rejectPermanently(
        `the file name pattern ${this.pattern} gives an unusable name for this message`,
      );
    }
    const work = workFileNames(delivery.deliveryId);
    const workPaths = [work.main, work.sidecar, work.attachments].map((n) => path.join(this.directory, n));
    const [mainWork, sidecarWork, attachmentsWork] = workPaths as [string, string, string];
    const target = path.join(this.directory, name);
    const body = Buffer.isBuffer(delivery.body.content)
      ? delivery.body.content
      : Buffer.from(delivery.body.content, 'utf8');
    const sha256 = createHash('sha256').update(body).digest('hex');
    try {
      await this.prepareDirectory();
      const earlier = await this.earlierDelivery(target, name, sha256);
      if (earlier) return earlier;
      await removeAll(workPaths); // whatever a crashed attempt of this delivery left behind
      const attachments = await this.putAttachments(delivery, name, attachmentsWork, signal);
      if (this.sidecar) {
        const sidecar: Sidecar = {
          messageId: delivery.messageId,
          deliveryId: delivery.deliveryId,
          tenant: { id: delivery.tenant.id, ars: delivery.tenant.ars, name: delivery.tenant.name },
          service: delivery.service,
          reference: delivery.reference ?? null,
          file: name,
          contentType: delivery.body.contentType,
          size: body.length,
          sha256,
          attachments,
          createdAt: new Date().toISOString(),
        };
        await writeDurably(
          sidecarWork,
          Buffer.from(`${JSON.stringify(sidecar, null, 2)}\n`, 'utf8'),
          this.fileMode,
        );
        await fsp.rename(sidecarWork, path.join(this.directory, `${name}.meta.json`));
      }
      throwIfAborted(signal);
      await writeDurably(mainWork, body, this.fileMode);
      // Sidecar and attachments must be durable before the main file can appear.
      await syncDirectory(this.directory);
      if (!(await publishWithoutReplacing(mainWork, target))) {
        await removeAll([mainWork]);
        const raced = await this.earlierDelivery(target, name, sha256);
        if (raced) return raced;
        throw retryLater(`${name} was taken by another writer and released again`);
      }
      await syncDirectory(this.directory);
      this.context.logger.debug('written to the drop directory', {
        instance: this.context.instanceId,
        deliveryId: delivery.deliveryId,
        file: name,
      });
      return { remoteReference: name, detail: { sha256, attachments: delivery.attachments.length } };
    } catch (err) {
      await removeAll(workPaths).catch(() => undefined);
      throw classifyFileFailure(err, this.directory, signal.aborted);
    }
  }

  private async prepareDirectory(): Promise<void> {
    try {
      await fsp.mkdir(this.directory, { recursive: true, mode: this.directoryMode });
      if ((await fsp.stat(this.directory)).isDirectory()) return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTDIR') throw err;
    }
    throw rejectPermanently(
      `the drop directory ${this.directory} is not a directory; check the configuration`,
    );
  }

  /** The result of an earlier write of this message, or a rejection if another content holds the name. */
  private async earlierDelivery(
    target: string,
    name: string,
    sha256: string,
  ): Promise<DeliveryResult | undefined> {
    let stats;
    try {
      stats = await fsp.stat(target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    if (stats.isFile() && (await sha256OfFile(target)) === sha256) {
      return { remoteReference: name, detail: { sha256, alreadyPresent: true } };
    }
    throw rejectPermanently(
      `${name} already exists in ${this.directory} with different content; it is never overwritten`,
    );
  }

  private async putAttachments(
    delivery: Delivery,
    name: string,
    workDirectory: string,
    signal: AbortSignal,
  ): Promise<SidecarAttachment[]> {
    const listing = (
      file: string | null,
      a: Delivery['attachments'][number],
      sha256 = a.ref.sha256,
      size = a.ref.size,
    ) => ({
      file,
      filename: a.ref.filename,
      mediaType: a.ref.mediaType,
      size,
      sha256,
      ...(a.ref.purpose === undefined ? {} : { purpose: a.ref.purpose }),
    });
    if (!this.copyAttachments || delivery.attachments.length === 0) {
      return delivery.attachments.map((a) => listing(null, a));
    }
    const folder = `${name}.attachments`;
    const fileNames = attachmentFileNames(delivery.attachments.map((a) => a.ref.filename));
    await fsp.mkdir(workDirectory, { mode: this.directoryMode });
    await fsp.chmod(workDirectory, this.directoryMode);
    const listed: SidecarAttachment[] = [];
    for (const [index, attachment] of delivery.attachments.entries()) {
      throwIfAborted(signal);
      const fileName = fileNames[index]!;
      const written = await streamDurably(
        path.join(workDirectory, fileName),
        attachment.open(),
        this.fileMode,
        signal,
      );
      if (written.sha256 !== attachment.ref.sha256) {
        throw rejectPermanently(
          `attachment ${index + 1} does not match its SHA-256: the stored copy is damaged`,
        );
      }
      listed.push(listing(`${folder}/${fileName}`, attachment, written.sha256, written.size));
    }
    await syncDirectory(workDirectory);
    const finalDirectory = path.join(this.directory, folder);
    await removeAll([finalDirectory]); // only a crashed attempt can have left it: the main file is absent
    await fsp.rename(workDirectory, finalDirectory);
    return listed;
  }
}

/** Maps a file-system failure to the contract's retry / reject decision. */
export function classifyFileFailure(err: unknown, directory: string, aborted: boolean): AmtError {
  if (isAmtError(err)) return err;
  if (aborted || (err as Error | null)?.name === 'AbortError') {
    return retryLater(`writing to ${directory} was aborted`, { cause: err });
  }
  const code = (err as NodeJS.ErrnoException | null)?.code ?? 'error';
  if (PERMANENT_CODES.has(code)) {
    return rejectPermanently(`cannot write to ${directory} (${code}); check the configuration`, {
      cause: err,
    });
  }
  // ENOSPC, EACCES, EIO, EROFS, a share that went away …: an operator can fix these without a config change.
  return retryLater(`writing to ${directory} failed (${code})`, { cause: err });
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw retryLater('the delivery was aborted');
}

function configError(pointer: string, message: string): AmtError {
  return new AmtError('AMT_CONFIG_INVALID', `file-drop adapter: ${message}`, {
    problems: [{ path: pointer, message }],
  });
}
