import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import type { AdapterInstance, Delivery, DeliveryAttachment } from '../../src/adapter-contract.js';
import { AmtError } from '../../src/errors.js';
import type { Sidecar } from './file-drop.js';
import { workFileNames } from './file-names.js';
import { fileDropAdapter, type FileDropConfig } from './manifest.js';
import {
  fakeContext,
  fileAttachment,
  listTree,
  makeDelivery,
  settle,
  sha256,
  type RecordingContext,
} from './test-support.js';

describe('file-drop adapter', () => {
  let root: string;
  let drop: string;
  let context: RecordingContext;
  let files: string;

  const adapter = (config: Partial<FileDropConfig> = {}): AdapterInstance =>
    fileDropAdapter.create(context, { directory: drop, ...config });

  const deliver = (instance: AdapterInstance, delivery: Delivery, signal = new AbortController().signal) =>
    instance.deliver!(delivery, signal);

  async function failure(
    instance: AdapterInstance,
    delivery: Delivery,
    signal?: AbortSignal,
  ): Promise<AmtError> {
    const outcome = await settle(deliver(instance, delivery, signal));
    expect(outcome.error, 'the delivery should fail').to.be.instanceOf(AmtError);
    return outcome.error as AmtError;
  }

  function withAttachments(): Delivery {
    const pdf = path.join(files, 'meldebescheinigung.pdf');
    writeFileSync(pdf, Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(70_000, 7)]));
    const photo = path.join(files, 'photo.jpg');
    writeFileSync(photo, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
    const certificate = fileAttachment(pdf, 'application/pdf', 'Meldebescheinigung Müller.pdf');
    return makeDelivery({
      attachments: [
        { ...certificate, ref: { ...certificate.ref, purpose: 'Nachweis' } },
        fileAttachment(photo, 'image/jpeg', '../../passbild.jpg'),
      ],
    });
  }

  const readSidecar = (name: string): Sidecar =>
    JSON.parse(readFileSync(path.join(drop, `${name}.meta.json`), 'utf8'));

  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-file-drop-'));
    drop = path.join(root, 'share', 'eingang');
    files = path.join(root, 'store');
    mkdirSync(files);
    context = fakeContext(path.join(root, 'data'));
  });

  afterEach(() => {
    chmodSync(root, 0o700);
    rmSync(root, { recursive: true, force: true });
  });

  it('creates the directory and writes the main file, sidecar and attachments with their hashes', async () => {
    const delivery = withAttachments();
    const result = await deliver(adapter(), delivery);
    const name = `${delivery.deliveryId}.xml`;
    expect(result.remoteReference).to.equal(name);
    expect(readFileSync(path.join(drop, name), 'utf8')).to.equal(delivery.body.content);
    expect(listTree(drop)).to.deep.equal([
      name,
      `${name}.attachments`,
      `${name}.attachments/Meldebescheinigung_Mueller.pdf`,
      `${name}.attachments/__.._passbild.jpg`,
      `${name}.meta.json`,
    ]);
    const sidecar = readSidecar(name);
    expect(sidecar).to.deep.include({
      messageId: delivery.messageId,
      deliveryId: delivery.deliveryId,
      tenant: delivery.tenant,
      service: delivery.service,
      reference: delivery.reference,
      file: name,
      contentType: 'application/xml',
      size: Buffer.byteLength(delivery.body.content),
      sha256: sha256(delivery.body.content),
    });
    expect(new Date(sidecar.createdAt).toISOString()).to.equal(sidecar.createdAt);
    expect(sidecar.attachments).to.have.length(2);
    for (const [index, listed] of sidecar.attachments.entries()) {
      const ref = delivery.attachments[index]!.ref;
      expect(listed.filename).to.equal(ref.filename);
      expect(listed.mediaType).to.equal(ref.mediaType);
      expect(listed.sha256).to.equal(ref.sha256);
      expect(listed.size).to.equal(ref.size);
      // The hash in the sidecar is the hash of the file that was actually written.
      expect(sha256(readFileSync(path.join(drop, listed.file!)))).to.equal(ref.sha256);
    }
    expect(sidecar.attachments[0]!.purpose).to.equal('Nachweis');
  });

  it('writes files with the configured mode, regardless of the umask', async () => {
    const delivery = withAttachments();
    await deliver(adapter({ fileMode: '0604' }), delivery);
    const name = `${delivery.deliveryId}.xml`;
    expect(statSync(path.join(drop, name)).mode & 0o777).to.equal(0o604);
    expect(statSync(path.join(drop, `${name}.meta.json`)).mode & 0o777).to.equal(0o604);
    expect(statSync(path.join(drop, `${name}.attachments`)).mode & 0o777).to.equal(0o705);
    expect(statSync(path.join(drop, `${name}.attachments`, '__.._passbild.jpg')).mode & 0o777).to.equal(
      0o604,
    );
  });

  it('uses 0640 by default', async () => {
    const delivery = makeDelivery();
    await deliver(adapter(), delivery);
    expect(statSync(path.join(drop, `${delivery.deliveryId}.xml`)).mode & 0o777).to.equal(0o640);
  });

  it('fills the file name pattern and picks the extension from the content type', async () => {
    const delivery = makeDelivery({
      body: { contentType: 'application/json; charset=utf-8', content: Buffer.from('{"a":1}') },
    });
    const result = await deliver(
      adapter({ fileName: 'antrag_{ars}_{service}_{reference}_{messageId}{ext}' }),
      delivery,
    );
    const expected = `antrag_057110000000_99115005001000_WSA-2026-00042_${delivery.messageId}.json`;
    expect(result.remoteReference).to.equal(expected);
    expect(readFileSync(path.join(drop, expected), 'utf8')).to.equal('{"a":1}');
  });

  it('keeps an unsafe reference inside the directory', async () => {
    const delivery = makeDelivery({ reference: '../../etc/passwd' });
    const result = await deliver(adapter({ fileName: '{reference}{ext}', sidecar: false }), delivery);
    expect(result.remoteReference).not.to.contain('/');
    expect(result.remoteReference).not.to.match(/^\./);
    expect(listTree(drop)).to.deep.equal([result.remoteReference]);
    expect(listTree(path.join(root, 'share'))).to.deep.equal([
      'eingang',
      `eingang/${result.remoteReference}`,
    ]);
    expect(existsSync(path.join(root, 'etc'))).to.equal(false);
  });

  it('counts a second delivery of the same content as delivered, without rewriting anything', async () => {
    const delivery = withAttachments();
    const instance = adapter();
    const first = await deliver(instance, delivery);
    const name = first.remoteReference!;
    const sidecarBefore = readFileSync(path.join(drop, `${name}.meta.json`), 'utf8');
    const mtimeBefore = statSync(path.join(drop, name)).mtimeMs;
    const second = await deliver(instance, { ...delivery, attempt: 2 });
    expect(second.remoteReference).to.equal(name);
    expect(second.detail).to.include({ alreadyPresent: true });
    expect(readFileSync(path.join(drop, `${name}.meta.json`), 'utf8')).to.equal(sidecarBefore);
    expect(statSync(path.join(drop, name)).mtimeMs).to.equal(mtimeBefore);
  });

  it('rejects other content under an existing name and leaves the existing file alone', async () => {
    const delivery = makeDelivery();
    const instance = adapter();
    await deliver(instance, delivery);
    const changed = {
      ...delivery,
      body: { contentType: 'application/xml', content: '<meldung>geändert</meldung>' },
    };
    const error = await failure(instance, changed);
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(error.message).to.contain('never overwritten');
    expect(readFileSync(path.join(drop, `${delivery.deliveryId}.xml`), 'utf8')).to.equal(
      delivery.body.content,
    );
    expect(listTree(drop).filter((f) => f.startsWith('.'))).to.deep.equal([]);
  });

  it('cleans up what a crashed attempt left and completes the delivery', async () => {
    const delivery = withAttachments();
    const name = `${delivery.deliveryId}.xml`;
    const work = workFileNames(delivery.deliveryId);
    // The state after a crash between putting the attachments in place and the main file.
    mkdirSync(drop, { recursive: true });
    writeFileSync(path.join(drop, work.main), '<meldung>halb');
    writeFileSync(path.join(drop, work.sidecar), '{"half":');
    mkdirSync(path.join(drop, work.attachments));
    writeFileSync(path.join(drop, work.attachments, 'photo.jpg'), 'partial');
    mkdirSync(path.join(drop, `${name}.attachments`));
    writeFileSync(path.join(drop, `${name}.attachments`, 'stale.bin'), 'from the crashed attempt');
    writeFileSync(path.join(drop, `${name}.meta.json`), '{"stale":true}');
    expect(work.main.startsWith('.')).to.equal(true);

    await deliver(adapter(), delivery);
    expect(listTree(drop)).to.deep.equal([
      name,
      `${name}.attachments`,
      `${name}.attachments/Meldebescheinigung_Mueller.pdf`,
      `${name}.attachments/__.._passbild.jpg`,
      `${name}.meta.json`,
    ]);
    expect(readFileSync(path.join(drop, name), 'utf8')).to.equal(delivery.body.content);
    expect(readSidecar(name).sha256).to.equal(sha256(delivery.body.content));
  });

  it('puts attachments and sidecar in place before the main file', async () => {
    const delivery = withAttachments();
    const name = `${delivery.deliveryId}.xml`;
    const seen: string[][] = [];
    const [first, second] = delivery.attachments as [DeliveryAttachment, DeliveryAttachment];
    const watched: DeliveryAttachment = {
      ...second,
      open: () => {
        seen.push(listTree(drop).filter((f) => !f.startsWith('.')));
        return second.open();
      },
    };
    await deliver(adapter(), { ...delivery, attachments: [first, watched] });
    expect(seen).to.deep.equal([[]]);
    expect(listTree(drop)).to.include(name);
  });

  it('leaves nothing visible when an attachment cannot be read, and retries later', async () => {
    const delivery = withAttachments();
    const broken: DeliveryAttachment = {
      ...delivery.attachments[1]!,
      open: () =>
        new Readable({
          read() {
            this.push(Buffer.from('first bytes'));
            this.destroy(Object.assign(new Error('input/output error'), { code: 'EIO' }));
          },
        }),
    };
    const error = await failure(adapter(), { ...delivery, attachments: [delivery.attachments[0]!, broken] });
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(error.message).to.contain('EIO');
    expect(listTree(drop)).to.deep.equal([]);
  });

  it('rejects an attachment whose content does not match its hash', async () => {
    const delivery = withAttachments();
    const damaged = {
      ...delivery.attachments[1]!,
      ref: { ...delivery.attachments[1]!.ref, sha256: 'f'.repeat(64) },
    };
    const error = await failure(adapter(), { ...delivery, attachments: [delivery.attachments[0]!, damaged] });
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(listTree(drop)).to.deep.equal([]);
  });

  it('stops and cleans up when the signal aborts', async () => {
    const delivery = withAttachments();
    const controller = new AbortController();
    const aborting: DeliveryAttachment = {
      ...delivery.attachments[1]!,
      open: () => {
        controller.abort();
        return delivery.attachments[1]!.open();
      },
    };
    const error = await failure(
      adapter(),
      { ...delivery, attachments: [delivery.attachments[0]!, aborting] },
      controller.signal,
    );
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(listTree(drop)).to.deep.equal([]);
  });

  it('classifies a directory it cannot write to', async () => {
    mkdirSync(drop, { recursive: true });
    chmodSync(drop, 0o555);
    const runsAsRoot = process.getuid?.() === 0;
    if (!runsAsRoot) {
      const error = await failure(adapter(), makeDelivery());
      expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect(error.message).to.contain('EACCES');
      return;
    }
    // root writes through chmod 0555: make the configured directory a regular file instead.
    const notADirectory = path.join(root, 'eingang.txt');
    writeFileSync(notADirectory, 'a file, not a directory');
    const error = await failure(adapter({ directory: notADirectory }), makeDelivery());
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(error.message).to.contain('not a directory');
    expect(readFileSync(notADirectory, 'utf8')).to.equal('a file, not a directory');
  });

  it('rejects a directory below a regular file as a configuration problem', async () => {
    const file = path.join(root, 'share.txt');
    writeFileSync(file, 'x');
    const error = await failure(adapter({ directory: path.join(file, 'eingang') }), makeDelivery());
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
  });

  it('lists but does not copy attachments with attachments: omit', async () => {
    const delivery = withAttachments();
    const name = `${delivery.deliveryId}.xml`;
    await deliver(adapter({ attachments: 'omit' }), delivery);
    expect(listTree(drop)).to.deep.equal([name, `${name}.meta.json`]);
    const sidecar = readSidecar(name);
    expect(sidecar.attachments.map((a) => a.file)).to.deep.equal([null, null]);
    expect(sidecar.attachments.map((a) => a.sha256)).to.deep.equal(
      delivery.attachments.map((a) => a.ref.sha256),
    );
  });

  it('writes no sidecar with sidecar: false', async () => {
    const delivery = makeDelivery({ body: { contentType: 'text/plain', content: 'Meldung' } });
    await deliver(adapter({ sidecar: false }), delivery);
    expect(listTree(drop)).to.deep.equal([`${delivery.deliveryId}.txt`]);
  });

  it('gives attachments with the same or unsafe names distinct safe names', async () => {
    const a = path.join(files, 'a.pdf');
    writeFileSync(a, 'A');
    const b = path.join(files, 'b.pdf');
    writeFileSync(b, 'B');
    const c = path.join(files, 'c.pdf');
    writeFileSync(c, 'C');
    const delivery = makeDelivery({
      attachments: [
        fileAttachment(a, 'application/pdf', 'Nachweis.pdf'),
        fileAttachment(b, 'application/pdf', 'nachweis.PDF'),
        fileAttachment(c, 'application/pdf', '.htaccess'),
      ],
    });
    await deliver(adapter(), delivery);
    const folder = `${delivery.deliveryId}.xml.attachments`;
    expect(listTree(path.join(drop, folder))).to.deep.equal(['Nachweis.pdf', '_htaccess', 'nachweis-2.PDF']);
    expect(readFileSync(path.join(drop, folder, 'nachweis-2.PDF'), 'utf8')).to.equal('B');
  });

  it('refuses unusable patterns and modes at creation', () => {
    for (const config of [
      { fileName: '{deliveryId}{tenant}' },
      { fileName: '.{deliveryId}' },
      { fileName: 'a/{deliveryId}' },
      { fileMode: '640x' },
    ]) {
      expect(() => adapter(config), JSON.stringify(config))
        .to.throw(AmtError)
        .with.property('code', 'AMT_CONFIG_INVALID');
    }
  });

  it('rejects a message whose pattern gives an empty name', async () => {
    const error = await failure(adapter({ fileName: '{reference}' }), makeDelivery({ reference: undefined }));
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
  });
});
