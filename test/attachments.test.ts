import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
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

  it('refuses a stream over the limit and keeps nothing of it', async () => {
    const err = await store.save(Readable.from([Buffer.alloc(2048)]), 1024).catch((e: unknown) => e);
    expect((err as { code?: string }).code).to.equal('AMT_ATTACHMENT_TOO_LARGE');
    expect(readdirSync(dir).filter((f) => f !== '.tmp')).to.deep.equal([]);
    expect(readdirSync(path.join(dir, '.tmp'))).to.deep.equal([]);
  });
});
