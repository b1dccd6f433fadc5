import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { AdapterInstance, RemoteStatusUpdate } from '../../src/adapter-contract.js';
import { AmtError } from '../../src/errors.js';
import { fileDropAdapter, type FileDropConfig } from './manifest.js';
import { fakeContext, listTree, type RecordingContext } from './test-support.js';

const NS = 'urn:example:meldewesen:rueckmeldung';

describe('file-drop adapter: status inbox', () => {
  let root: string;
  let inbox: string;
  let context: RecordingContext & { findMessage: NonNullable<RecordingContext['findMessage']> };
  let reported: RemoteStatusUpdate[];
  /** deliveryId / remote reference → messageId, as the core would find them for this instance. */
  let known: Map<string, string>;
  let reportFailure: ((update: RemoteStatusUpdate) => AmtError | undefined) | undefined;

  const adapter = (inboxConfig: Partial<NonNullable<FileDropConfig['inbox']>> = {}): AdapterInstance =>
    fileDropAdapter.create(context, {
      directory: path.join(root, 'eingang'),
      inbox: { directory: inbox, minAge: 0, ...inboxConfig },
    });
  const poll = (instance: AdapterInstance) => instance.poll!(new AbortController().signal);

  /** Drops a file as a Fachverfahren would, `ageSeconds` old. */
  function drop(name: string, content: string | object, ageSeconds = 60): void {
    const file = path.join(inbox, name);
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    const at = Date.now() / 1000 - ageSeconds;
    utimesSync(file, at, at);
  }
  const files = (folder: string): string[] => readdirSync(path.join(inbox, folder)).sort();
  const reason = (claim: string) =>
    JSON.parse(readFileSync(path.join(inbox, 'failed', `${claim}.reason.json`), 'utf8')) as {
      file: string;
      code: string;
      message: string;
    };

  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-file-drop-inbox-'));
    inbox = path.join(root, 'rueckmeldungen');
    mkdirSync(inbox);
    reported = [];
    reportFailure = undefined;
    known = new Map([
      ['dlv-1', 'msg-1'],
      ['dlv-2', 'msg-2'],
      ['antrag_dlv-3.xml', 'msg-3'],
    ]);
    const base = fakeContext(path.join(root, 'data'));
    context = {
      ...base,
      reportStatus: async (update) => {
        const failure = reportFailure?.(update);
        if (failure) throw failure;
        reported.push(update);
      },
      findMessage: async (by) => {
        const id = known.get('deliveryId' in by ? by.deliveryId : by.remoteReference);
        return id === undefined ? undefined : { messageId: id };
      },
    };
  });

  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('reports a JSON status file and moves it to processed/', async () => {
    drop('status-1.json', {
      deliveryId: 'dlv-1',
      status: 'ABGESCHLOSSEN',
      text: 'Bescheid liegt bei.',
      extra: 1,
    });
    expect(await poll(adapter())).to.deep.equal({ items: 1 });
    expect(reported).to.deep.equal([
      {
        messageId: 'msg-1',
        status: 'ABGESCHLOSSEN',
        detail: { file: 'status-1.json', text: 'Bescheid liegt bei.' },
      },
    ]);
    expect(files('processed')).to.have.length(1);
    expect(files('processed')[0]).to.match(/^\d{8}T\d{9}Z-[0-9a-f]{8}~status-1\.json$/);
    expect(readdirSync(inbox).sort()).to.deep.equal(['failed', 'processed', 'processing']);
    expect(files('processing')).to.deep.equal([]);
    expect(await poll(adapter())).to.deep.equal({ items: 0 });
    expect(reported).to.have.length(1);
  });

  it('finds the delivery by remote reference or takes the message id as given', async () => {
    drop('a.json', { remoteReference: 'antrag_dlv-3.xml', status: 'IN_BEARBEITUNG' }, 30);
    drop('b.json', { messageId: 'msg-9', status: '0100' }, 20);
    await poll(adapter());
    expect(reported.map((r) => [r.messageId, r.status])).to.deep.equal([
      ['msg-3', 'IN_BEARBEITUNG'],
      ['msg-9', '0100'],
    ]);
  });

  it('reads XML by namespace URI, whatever prefix the sender uses', async () => {
    drop(
      'r.xml',
      `<?xml version="1.0" encoding="UTF-8"?>
<x:Rueckmeldung xmlns:x="${NS}"><x:Vorgang/><x:DeliveryId> dlv-2 </x:DeliveryId><x:Status>NACHFORDERUNG</x:Status><x:Hinweis>Bitte Pass nachreichen.</x:Hinweis></x:Rueckmeldung>`,
    );
    drop(
      'other-namespace.xml',
      `<Rueckmeldung xmlns="urn:example:other"><DeliveryId>dlv-1</DeliveryId><Status>X</Status></Rueckmeldung>`,
    );
    const instance = adapter({
      xml: {
        namespaces: { r: NS },
        deliveryId: '/r:Rueckmeldung/r:DeliveryId',
        status: '/r:Rueckmeldung/r:Status',
        text: '/r:Rueckmeldung/r:Hinweis',
      },
    });
    expect(await poll(instance)).to.deep.equal({ items: 2 });
    expect(reported).to.deep.equal([
      {
        messageId: 'msg-2',
        status: 'NACHFORDERUNG',
        detail: { file: 'r.xml', text: 'Bitte Pass nachreichen.' },
      },
    ]);
    const [failed] = files('failed').filter((f) => !f.endsWith('.reason.json'));
    expect(reason(failed!)).to.include({ file: 'other-namespace.xml', code: 'AMT_VALIDATION_FAILED' });
    expect(reason(failed!).message).to.include('/r:Rueckmeldung/r:DeliveryId');
  });

  it('moves unusable files to failed/ with a reason written next to them', async () => {
    drop('broken.json', '{"deliveryId": "dlv-1", ', 50);
    drop('two-ids.json', { deliveryId: 'dlv-1', messageId: 'msg-1', status: 'X' }, 49);
    drop('no-status.json', { deliveryId: 'dlv-1' }, 48);
    drop('unknown.json', { deliveryId: 'dlv-404', status: 'X' }, 47);
    drop('plain.txt', 'ABGESCHLOSSEN', 46);
    drop('status.xml', '<a/>', 45);
    drop('doctype.xml', '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>', 44);
    drop('big.json', `{"deliveryId":"dlv-1","status":"X","text":"${'a'.repeat(1024 * 1024)}"}`, 43);
    expect(await poll(adapter({ xml: { deliveryId: '/a/b', status: '/a/c' } }))).to.deep.equal({ items: 8 });
    expect(reported).to.deep.equal([]);
    const failed = files('failed');
    const byFile = new Map(
      failed
        .filter((f) => f.endsWith('.reason.json'))
        .map((f) => {
          const r = reason(f.slice(0, -'.reason.json'.length));
          return [r.file, r] as const;
        }),
    );
    expect(failed.filter((f) => !f.endsWith('.reason.json'))).to.have.length(8);
    expect(byFile.get('broken.json')?.message).to.include('not valid JSON');
    expect(byFile.get('two-ids.json')?.message).to.include('exactly one of');
    expect(byFile.get('no-status.json')?.message).to.include('status');
    expect(byFile.get('unknown.json')).to.include({ code: 'AMT_NOT_FOUND' });
    expect(byFile.get('unknown.json')?.message).to.include('dlv-404');
    expect(byFile.get('plain.txt')?.message).to.include('neither a JSON object nor an XML document');
    expect(byFile.get('status.xml')?.message).to.include('no value at /a/b');
    expect(byFile.get('doctype.xml')).to.include({ code: 'AMT_XML_DOCTYPE_FORBIDDEN' });
    expect(byFile.get('big.json')?.message).to.include('larger than');
    expect(files('processing')).to.deep.equal([]);
  });

  it('reads XML only when configured to', async () => {
    drop('r.xml', `<r:Rueckmeldung xmlns:r="${NS}"/>`);
    await poll(adapter());
    const [failed] = files('failed').filter((f) => !f.endsWith('.reason.json'));
    expect(reason(failed!).message).to.include('no inbox.xml paths configured');
  });

  it('reports what a crash left in processing/ again, before new files, oldest claim first', async () => {
    mkdirSync(path.join(inbox, 'processing'), { recursive: true });
    const leftover = (claim: string, body: object) =>
      writeFileSync(path.join(inbox, 'processing', claim), JSON.stringify(body));
    leftover('20261122T101500000Z-0000000b~second.json', { deliveryId: 'dlv-1', status: 'IN_BEARBEITUNG' });
    leftover('20261122T101400000Z-0000000a~first.json', { deliveryId: 'dlv-1', status: 'EINGANG' });
    drop('new.json', { deliveryId: 'dlv-1', status: 'ABGESCHLOSSEN' });
    expect(await poll(adapter())).to.deep.equal({ items: 3 });
    expect(reported.map((r) => [r.status, r.detail?.file])).to.deep.equal([
      ['EINGANG', 'first.json'],
      ['IN_BEARBEITUNG', 'second.json'],
      ['ABGESCHLOSSEN', 'new.json'],
    ]);
    expect(files('processed').map((f) => f.replace(/^.*~/, ''))).to.have.members([
      'first.json',
      'second.json',
      'new.json',
    ]);
    expect(files('processing')).to.deep.equal([]);
  });

  it('keeps a file claimed while its delivery is not recorded yet, and reports it once it is', async () => {
    drop('early.json', { deliveryId: 'dlv-1', status: 'EINGANG' });
    reportFailure = () => new AmtError('AMT_STATUS_NOT_DELIVERED', 'msg-1 is delivering');
    expect(await poll(adapter())).to.deep.equal({ items: 0 });
    expect(files('processing')).to.have.length(1);
    expect(
      context.lines.some((l) => l.level === 'warn' && l.meta?.reason === 'AMT_STATUS_NOT_DELIVERED'),
    ).to.equal(true);
    reportFailure = undefined;
    expect(await poll(adapter())).to.deep.equal({ items: 1 });
    expect(reported.map((r) => r.messageId)).to.deep.equal(['msg-1']);
    expect(files('processing')).to.deep.equal([]);
    expect(files('processed')).to.have.length(1);
  });

  it('fails a file the core refuses for good (a message of another instance)', async () => {
    drop('wrong.json', { messageId: 'msg-of-another-adapter', status: 'X' });
    reportFailure = () =>
      new AmtError('AMT_NOT_FOUND', 'no application this reporter may report on has this id');
    await poll(adapter());
    const [failed] = files('failed').filter((f) => !f.endsWith('.reason.json'));
    expect(reason(failed!)).to.include({ file: 'wrong.json', code: 'AMT_NOT_FOUND' });
  });

  it('leaves unfinished and too young files alone', async () => {
    drop('.hidden.json', { deliveryId: 'dlv-1', status: 'A' });
    drop('writing.json.tmp', { deliveryId: 'dlv-1', status: 'B' });
    drop('writing.json.part', { deliveryId: 'dlv-1', status: 'C' });
    drop('young.json', { deliveryId: 'dlv-1', status: 'D' }, 0);
    mkdirSync(path.join(inbox, 'a-directory.json'));
    expect(await poll(adapter({ minAge: '30s' }))).to.deep.equal({ items: 0 });
    expect(reported).to.deep.equal([]);
    expect(readdirSync(inbox).sort()).to.include.members([
      '.hidden.json',
      'writing.json.tmp',
      'writing.json.part',
      'young.json',
      'a-directory.json',
    ]);
    expect(await poll(adapter({ minAge: 0 }))).to.deep.equal({ items: 1 });
    expect(reported.map((r) => r.status)).to.deep.equal(['D']);
  });

  it('lets exactly one of two instances polling the same share take each file', async () => {
    for (let i = 0; i < 40; i++)
      drop(`s-${String(i).padStart(2, '0')}.json`, { deliveryId: 'dlv-1', status: `S${i}` });
    const [a, b] = await Promise.all([poll(adapter()), poll(adapter())]);
    expect(a.items + b.items).to.equal(40);
    expect(reported.map((r) => r.status).sort()).to.deep.equal(
      Array.from({ length: 40 }, (_, i) => `S${i}`).sort(),
    );
    expect(files('processed')).to.have.length(40);
    expect(listTree(path.join(inbox, 'processing'))).to.deep.equal([]);
  });

  it('refuses XML paths with undeclared prefixes at start', () => {
    expect(() => adapter({ xml: { deliveryId: '/r:Rueckmeldung/r:Id', status: '/r:Rueckmeldung/r:Status' } }))
      .to.throw(AmtError)
      .with.property('code', 'AMT_CONFIG_INVALID');
  });

  it('has no poll without an inbox', () => {
    const instance = fileDropAdapter.create(context, { directory: path.join(root, 'eingang') });
    expect(instance.poll).to.equal(undefined);
  });
});
