import { expect } from 'chai';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { AttachmentStore } from '../src/attachments.js';

describe('attachment store', () => {
  let dir: string;
  let store: AttachmentStore;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amt-attachments-'));
    store = new AttachmentStore(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

  it('stores a buffer under its SHA-256, once, leaving no temp file', async () => {
    const content = Buffer.from('%PDF-1.7 Meldebescheinigung');
    const first = await store.saveBuffer(content);
    expect(first).to.deep.equal({ sha256: sha256(content), size: content.length });
    const file = store.pathOf(first.sha256);
    expect(readFileSync(file)).to.deep.equal(content);
    const inode = statSync(file).ino;
    expect(await store.saveBuffer(Buffer.from(content))).to.deep.equal(first);
    expect(statSync(file).ino).to.equal(inode); // not written again
    expect(readdirSync(path.join(dir, '.tmp'))).to.deep.equal([]);
  });

  it('stores a stream and a buffer of the same content as the same file', async () => {
    const content = Buffer.alloc(300_000, 7);
    const streamed = await store.save(
      Readable.from([content.subarray(0, 1000), content.subarray(1000)]),
      1e6,
    );
    expect(await store.saveBuffer(content)).to.deep.equal(streamed);
    expect(readdirSync(path.join(dir, streamed.sha256.slice(0, 2)))).to.deep.equal([streamed.sha256]);
  });

  it('a disk that cannot take the file is AMT_ATTACHMENTS_UNAVAILABLE (503, retryable), a failing source is not', async () => {
    // A file where the temp directory should be: every write fails as on a broken disk.
    rmSync(path.join(dir, '.tmp'), { recursive: true });
    writeFileSync(path.join(dir, '.tmp'), '');
    const streamed = await store.save(Readable.from([Buffer.from('a')]), 1e6).catch((e: unknown) => e);
    const buffered = await store.saveBuffer(Buffer.from('b')).catch((e: unknown) => e);
    for (const err of [streamed, buffered]) {
      expect((err as { code?: string }).code).to.equal('AMT_ATTACHMENTS_UNAVAILABLE');
      expect((err as { status?: number }).status).to.equal(503);
      expect((err as { retryable?: boolean }).retryable).to.equal(true);
      expect((err as Error).message).to.equal('an attachment file cannot be written: ENOTDIR');
    }
    rmSync(path.join(dir, '.tmp'));
    store = new AttachmentStore(dir);
    const broken = new Readable({
      read() {
        this.destroy(new Error('the client went away'));
      },
    });
    const fromSource = await store.save(broken, 1e6).catch((e: unknown) => e);
    expect((fromSource as Error).message).to.equal('the client went away');
  });

  it('refuses a stream over the limit and keeps nothing of it', async () => {
    const err = await store.save(Readable.from([Buffer.alloc(2048)]), 1024).catch((e: unknown) => e);
    expect((err as { code?: string }).code).to.equal('AMT_ATTACHMENT_TOO_LARGE');
    expect(readdirSync(dir).filter((f) => f !== '.tmp')).to.deep.equal([]);
    expect(readdirSync(path.join(dir, '.tmp'))).to.deep.equal([]);
  });

  describe('deleting what no message uses, while intake may take the same content', () => {
    const content = Buffer.from('%PDF-1.7 Nachweis');
    const HOUR_AGO = (): number => Date.now() - 3_600_000;
    /** Stores the content with file times two hours back, as a file of an earlier message. */
    async function oldFile(): Promise<string> {
      const { sha256: sum } = await store.saveBuffer(content);
      const old = (Date.now() - 7_200_000) / 1000;
      utimesSync(store.pathOf(sum), old, old);
      return sum;
    }

    it('deletes an old file no message uses, and keeps one a message uses', async () => {
      const sum = await oldFile();
      expect(await store.removeUnlessUsed(sum, async () => true, HOUR_AGO())).to.equal(false);
      expect(existsSync(store.pathOf(sum))).to.equal(true);
      expect(await store.removeUnlessUsed(sum, async () => false, HOUR_AGO())).to.equal(true);
      expect(existsSync(store.pathOf(sum))).to.equal(false);
      expect(readdirSync(path.join(dir, '.tmp'))).to.deep.equal([]);
      expect(await store.removeUnlessUsed(sum, async () => false, HOUR_AGO())).to.equal(false);
    });

    it('a reused file is touched, and a touched file is kept', async () => {
      const sum = await oldFile();
      const before = statSync(store.pathOf(sum)).mtimeMs;
      await store.saveBuffer(Buffer.from(content));
      expect(statSync(store.pathOf(sum)).mtimeMs).to.be.greaterThan(before + 3_600_000);
      expect(await store.removeUnlessUsed(sum, async () => false, HOUR_AGO())).to.equal(false);
      expect(readFileSync(store.pathOf(sum))).to.deep.equal(content);
    });

    it('puts the file back when a message took it after the first look', async () => {
      const sum = await oldFile();
      let asked = 0;
      // First asked: no message; asked again after the file was moved aside: a new message has
      // committed — it found the file before it was moved (had it not, it would have written it).
      const removed = await store.removeUnlessUsed(sum, async () => ++asked > 1, HOUR_AGO());
      expect(removed).to.equal(false);
      expect(asked).to.equal(2);
      expect(readFileSync(store.pathOf(sum))).to.deep.equal(content);
      expect(readdirSync(path.join(dir, '.tmp'))).to.deep.equal([]);
    });

    it('a save while the file is moved aside writes it anew, and putting it back keeps it whole', async () => {
      const sum = await oldFile();
      let asked = 0;
      const removed = await store.removeUnlessUsed(
        sum,
        async () => {
          if (++asked === 2) {
            expect(existsSync(store.pathOf(sum))).to.equal(false); // moved aside
            await store.saveBuffer(Buffer.from(content)); // a new message's inline attachment
          }
          return asked > 1;
        },
        HOUR_AGO(),
      );
      expect(removed).to.equal(false);
      expect(readFileSync(store.pathOf(sum))).to.deep.equal(content);
      // Not used after all: the copy moved aside goes, the one the save wrote stays.
      const sum2 = await oldFile();
      asked = 0;
      await store.removeUnlessUsed(
        sum2,
        async () => {
          if (++asked === 2) await store.saveBuffer(Buffer.from(content));
          return false;
        },
        HOUR_AGO(),
      );
      expect(readFileSync(store.pathOf(sum2))).to.deep.equal(content);
      expect(readdirSync(path.join(dir, '.tmp'))).to.deep.equal([]);
    });

    it('puts back at start what a purge had moved aside when it stopped', async () => {
      const sum = await oldFile();
      renameSync(store.pathOf(sum), path.join(dir, '.tmp', `purged-${sum}-crash`));
      const again = new AttachmentStore(dir);
      expect(readFileSync(again.pathOf(sum))).to.deep.equal(content);
      expect(readdirSync(path.join(dir, '.tmp'))).to.deep.equal([]);
    });
  });
});
