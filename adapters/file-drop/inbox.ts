/**
 * The receiving side of a drop directory: response and status files the Fachverfahren leaves in
 * the inbox are claimed, reported to the core and moved to `processed/` (or `failed/` with a
 * reason file next to them). A file is first renamed into `processing/`, which only one gateway
 * instance can win; after a crash, what is still in `processing/` is reported again at the next
 * poll. Reporting the same status again changes nothing, so a file is never lost and never
 * counts twice.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { AdapterContext } from '../../src/adapter-contract.js';
import { AmtError, isAmtError } from '../../src/errors.js';
import { syncDirectory, writeDurably } from './durable-files.js';
import {
  MAX_RESPONSE_BYTES,
  ResponseFileReader,
  type ResponseLocator,
  type XmlResponseConfig,
} from './response-file.js';

export interface InboxConfig {
  readonly directory: string;
  readonly minAge?: number | string;
  readonly xml?: XmlResponseConfig;
}

/** Names a Fachverfahren uses while it is still writing; such files are left alone. */
const UNFINISHED = /(^\.|\.tmp$|\.part$|\.partial$|~$)/i;
const FOLDERS = ['processing', 'processed', 'failed'] as const;

type Outcome = 'processed' | 'failed' | 'later';

export class StatusInbox {
  private readonly inbox: string;
  private readonly processing: string;
  private readonly processed: string;
  private readonly failed: string;
  private readonly reader: ResponseFileReader;

  constructor(
    private readonly context: AdapterContext,
    config: InboxConfig,
    private readonly minAgeMs: number,
    private readonly fileMode: number,
    private readonly directoryMode: number,
    private readonly now: () => number = Date.now,
  ) {
    this.inbox = context.resolvePath(config.directory);
    this.processing = path.join(this.inbox, 'processing');
    this.processed = path.join(this.inbox, 'processed');
    this.failed = path.join(this.inbox, 'failed');
    this.reader = new ResponseFileReader(config.xml);
  }

  /** One pass: leftovers in `processing/` first (oldest claim first), then new files (oldest first). */
  async poll(signal: AbortSignal): Promise<{ items: number }> {
    for (const folder of [this.inbox, ...FOLDERS.map((f) => path.join(this.inbox, f))]) {
      await fsp.mkdir(folder, { recursive: true, mode: this.directoryMode });
    }
    let items = 0;
    const leftovers = (await this.regularFiles(this.processing)).map((f) => f.name).sort();
    for (const claim of leftovers) {
      if (signal.aborted) return { items };
      if ((await this.handle(claim)) !== 'later') items++;
    }
    const cutoff = this.now() - this.minAgeMs;
    const fresh = (await this.regularFiles(this.inbox))
      .filter((f) => !UNFINISHED.test(f.name) && f.mtimeMs <= cutoff)
      .sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const file of fresh) {
      if (signal.aborted) break;
      const claim = await this.claim(file.name);
      if (claim !== undefined && (await this.handle(claim)) !== 'later') items++;
    }
    return { items };
  }

  /** Renames the file into `processing/` under a unique, sortable name; undefined when another instance won. */
  private async claim(name: string): Promise<string | undefined> {
    const stamp = new Date(this.now()).toISOString().replace(/[-:.]/g, '');
    const claim = `${stamp}-${randomBytes(4).toString('hex')}~${name}`;
    try {
      await fsp.rename(path.join(this.inbox, name), path.join(this.processing, claim));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    await syncDirectory(this.processing);
    await syncDirectory(this.inbox);
    return claim;
  }

  private async handle(claim: string): Promise<Outcome> {
    const original = claim.slice(claim.indexOf('~') + 1);
    const file = path.join(this.processing, claim);
    let content: Buffer;
    try {
      const { size } = await fsp.stat(file);
      if (size > MAX_RESPONSE_BYTES) {
        return await this.fail(claim, {
          code: 'AMT_VALIDATION_FAILED',
          message: `larger than ${MAX_RESPONSE_BYTES} bytes`,
        });
      }
      content = await fsp.readFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'later'; // another instance finished it
      throw err;
    }
    try {
      const response = this.reader.read(content, original);
      const messageId = await this.messageOf(response.locator);
      if (messageId === undefined) {
        return await this.fail(claim, {
          code: 'AMT_NOT_FOUND',
          message: `no message of adapter instance ${this.context.instanceId} matches ${describe(response.locator)}`,
        });
      }
      await this.context.reportStatus({
        messageId,
        status: response.status,
        detail: { file: original, ...(response.text === undefined ? {} : { text: response.text }) },
      });
      await this.move(claim, this.processed);
      this.context.logger.info('status file processed', {
        file: original,
        messageId,
        status: response.status,
      });
      return 'processed';
    } catch (err) {
      if (isAmtError(err) && !err.retryable) {
        return await this.fail(claim, {
          code: err.code,
          message: err.message,
          ...(err.problems.length > 0 ? { problems: err.problems } : {}),
        });
      }
      // Not delivered yet, store unavailable …: the file stays claimed and is tried at the next poll.
      this.context.logger.warn('status file left for the next poll', {
        file: original,
        reason: isAmtError(err) ? err.code : (err as Error).message,
      });
      return 'later';
    }
  }

  private async messageOf(locator: ResponseLocator): Promise<string | undefined> {
    if ('messageId' in locator) return locator.messageId;
    if (!this.context.findMessage) {
      throw new AmtError(
        'AMT_INTERNAL',
        'this gateway offers adapters no message lookup; the response file must name the messageId',
        { retryable: false },
      );
    }
    return (await this.context.findMessage(locator))?.messageId;
  }

  /** Writes the reason next to where the file goes, then moves the file: a reason never goes missing. */
  private async fail(
    claim: string,
    reason: { code: string; message: string; problems?: unknown },
  ): Promise<Outcome> {
    const original = claim.slice(claim.indexOf('~') + 1);
    const sidecar = { file: original, failedAt: new Date(this.now()).toISOString(), ...reason };
    await writeDurably(
      path.join(this.failed, `${claim}.reason.json`),
      Buffer.from(`${JSON.stringify(sidecar, null, 2)}\n`, 'utf8'),
      this.fileMode,
    );
    await this.move(claim, this.failed);
    this.context.logger.warn('status file failed', { file: original, code: reason.code });
    return 'failed';
  }

  private async move(claim: string, folder: string): Promise<void> {
    try {
      await fsp.rename(path.join(this.processing, claim), path.join(folder, claim));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await syncDirectory(folder);
    await syncDirectory(this.processing);
  }

  private async regularFiles(directory: string): Promise<{ name: string; mtimeMs: number }[]> {
    const entries = await fsp.readdir(directory, { withFileTypes: true });
    const files: { name: string; mtimeMs: number }[] = [];
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      try {
        files.push({ name: entry.name, mtimeMs: (await fsp.stat(path.join(directory, entry.name))).mtimeMs });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return files;
  }
}

function describe(locator: ResponseLocator): string {
  if ('deliveryId' in locator) return `deliveryId ${locator.deliveryId}`;
  if ('remoteReference' in locator) return `remoteReference ${locator.remoteReference}`;
  return `messageId ${locator.messageId}`;
}
