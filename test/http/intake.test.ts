import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { application, KEYS, messageCount, startHarness, type Harness } from './harness.js';

describe('http: intake', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('accepts a JSON application durably and answers 202 with its location', async () => {
    const pdf = Buffer.from('%PDF-1.7\nNachweis Wohnsitz\n');
    const res = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: application({
        channel: 'online',
        attachments: [
          {
            filename: 'meldebescheinigung.pdf',
            mediaType: 'application/pdf',
            purpose: 'Nachweis Wohnsitz',
            contentBase64: pdf.toString('base64'),
          },
        ],
      }),
    });
    expect(res.status).to.equal(202);
    expect(res.body.status).to.equal('received');
    expect(res.headers.get('location')).to.equal(`/api/v1/applications/${res.body.id}`);
    expect(res.body.links.self).to.equal(res.headers.get('location'));
    expect(h.state.accepted).to.equal(1);

    const stored = await h.store.getMessage(res.body.id);
    expect(stored).to.not.equal(undefined);
    expect(stored!.tenantId).to.equal('muenster');
    expect(stored!.ars).to.equal('055150000000');
    expect(stored!.service).to.equal('99058012104000');
    expect(stored!.reference).to.equal('PORTAL-2026-000123');
    expect(stored!.clientId).to.equal('portal-ms');
    expect(stored!.routeId).to.equal('ms-parking');
    expect(stored!.target).to.equal('dms');
    expect(stored!.direction).to.equal('outbound');
    expect(stored!.deliveryId)
      .to.match(/^[0-9a-f-]{36}$/)
      .and.not.equal(stored!.id);
    const sha256 = createHash('sha256').update(pdf).digest('hex');
    expect(stored!.attachments).to.deep.equal([
      {
        sha256,
        size: pdf.length,
        filename: 'meldebescheinigung.pdf',
        mediaType: 'application/pdf',
        purpose: 'Nachweis Wohnsitz',
      },
    ]);
    expect(readFileSync(h.attachments.pathOf(sha256)).equals(pdf)).to.equal(true);
    // The payload is the canonical application content, unicode intact, without routing fields.
    const payload = JSON.parse(stored!.payload);
    expect(payload).to.deep.equal({
      reference: 'PORTAL-2026-000123',
      channel: 'online',
      applicant: application().applicant,
      data: application().data,
    });
    expect(stored!.payload).to.include('Münster');
    expect(Object.keys(payload)).to.have.members(['applicant', 'channel', 'data', 'reference']);
  });

  it('accepts through the router’s spellings of the path with the same answer', async () => {
    const headersOf = (res: { headers: Headers }): Record<string, string | null> =>
      Object.fromEntries(
        ['content-type', 'cache-control', 'content-length'].map((name) => [name, res.headers.get(name)]),
      );
    const canonical = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: application(),
    });
    for (const spelling of ['/api/v1/applications/', '/api/v1/applications?via=router']) {
      const routed = await h.request('POST', spelling, {
        key: KEYS.muenster,
        json: application(),
        documentedAs: '/api/v1/applications',
      });
      expect(routed.status).to.equal(202);
      expect(routed.body.status).to.equal(canonical.body.status);
      expect(routed.headers.get('location')).to.equal(`/api/v1/applications/${routed.body.id}`);
      expect(headersOf(routed)).to.deep.equal(headersOf(canonical));
      expect(await h.store.getMessage(routed.body.id)).to.not.equal(undefined);
    }
    expect(await messageCount(h.store)).to.equal(3);
  });

  it('accepts the URN form of the service key and stores the bare key', async () => {
    const res = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: application({ service: 'urn:de:fim:leika:leistung:99058012104000' }),
    });
    expect(res.status).to.equal(202);
    expect((await h.store.getMessage(res.body.id))!.service).to.equal('99058012104000');
  });

  it('accepts escaped text XML can carry and stores it unchanged: tab, line breaks, umlauts, emoji', async () => {
    const data = { note: 'Zeile 1\r\nZeile 2\tEnde', street: 'Lütke Gasse', plate: '🚗 MS-EM 123' };
    // Escaped as a portal with ASCII-only JSON output would send it.
    const ascii = JSON.stringify(application({ data })).replace(
      /[\u007f-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
    expect(ascii).to.match(/^[\x20-\x7e]+$/);
    const res = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      body: ascii,
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status, res.text).to.equal(202);
    const stored = await h.store.getMessage(res.body.id);
    expect(JSON.parse(stored!.payload).data).to.deep.equal(data);
  });

  it('accepts a multipart application with a streamed file and a purpose', async () => {
    const content = Buffer.alloc(200_000, 'Lageplan ');
    const form = new FormData();
    form.append('application', JSON.stringify(application()));
    form.append('purpose', 'Lageplan');
    form.append('attachment', new Blob([content], { type: 'image/png' }), 'lageplan.png');
    const res = await h.request('POST', '/api/v1/applications', { key: KEYS.muenster, body: form });
    expect(res.status).to.equal(202);
    const stored = await h.store.getMessage(res.body.id);
    const sha256 = createHash('sha256').update(content).digest('hex');
    expect(stored!.attachments).to.deep.equal([
      { sha256, size: content.length, filename: 'lageplan.png', mediaType: 'image/png', purpose: 'Lageplan' },
    ]);
    expect(existsSync(h.attachments.pathOf(sha256))).to.equal(true);
    expect(readFileSync(h.attachments.pathOf(sha256)).equals(content)).to.equal(true);
    expect(JSON.parse(stored!.payload).applicant.familyName).to.equal('Mustermann');
  });

  it('takes the application part as a JSON file part too, with several attachments in order', async () => {
    const form = new FormData();
    form.append(
      'application',
      new Blob([JSON.stringify(application())], { type: 'application/json' }),
      'application.json',
    );
    form.append('attachment', new Blob(['eins'], { type: 'text/plain' }), 'a.txt');
    form.append('attachment', new Blob(['zwei'], { type: 'text/plain' }), 'b.txt');
    const res = await h.request('POST', '/api/v1/applications', { key: KEYS.muenster, body: form });
    expect(res.status).to.equal(202);
    const stored = await h.store.getMessage(res.body.id);
    expect(stored!.attachments.map((a) => a.filename)).to.deep.equal(['a.txt', 'b.txt']);
    expect(stored!.attachments[1]!.sha256).to.equal(createHash('sha256').update('zwei').digest('hex'));
  });

  it('shows status and history to the submitting tenant, never the content', async () => {
    const accepted = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: application(),
    });
    const res = await h.request('GET', accepted.headers.get('location')!, { key: KEYS.muenster });
    expect(res.status).to.equal(200);
    expect(res.body).to.include({
      id: accepted.body.id,
      tenant: '055150000000',
      service: '99058012104000',
      status: 'received',
    });
    expect(res.body.reference).to.equal('PORTAL-2026-000123');
    expect(res.body.remoteStatus).to.equal(null);
    expect(res.body.history).to.have.length(1);
    expect(res.body.history[0]).to.include({ event: 'received', status: 'received' });
    expect(res.text).to.not.include('Mustermann');
    expect(res.body).to.not.have.property('payload');
  });

  it('shows delivery progress and remote status once the pipeline reports them', async () => {
    const accepted = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: application(),
    });
    const now = Date.now();
    const [claimed] = await h.store.claimDue('worker-1', 10, 60_000, now);
    await h.store.complete(
      [
        {
          kind: 'delivered',
          messageId: claimed!.id,
          leaseOwner: 'worker-1',
          attempt: { startedAt: now, endedAt: now + 5, target: 'dms' },
          remoteReference: 'AZ-2026-4711',
        },
      ],
      now + 5,
    );
    await h.store.recordRemoteStatus(claimed!.id, 'PROCESSING', undefined, now + 10);
    const res = await h.request('GET', `/api/v1/applications/${accepted.body.id}`, { key: KEYS.muenster });
    expect(res.body).to.include({
      status: 'delivered',
      remoteStatus: 'PROCESSING',
      remoteReference: 'AZ-2026-4711',
    });
    expect(res.body.history.map((e: { event: string }) => e.event)).to.include.members([
      'received',
      'delivered',
      'remote-status',
    ]);
  });

  describe('Idempotency-Key', () => {
    it('the same key and body return the same message without storing a second one', async () => {
      const headers = { 'idempotency-key': 'portal-2026-000123-try' };
      const first = await h.request('POST', '/api/v1/applications', {
        key: KEYS.muenster,
        json: application(),
        headers,
      });
      const second = await h.request('POST', '/api/v1/applications', {
        key: KEYS.muenster,
        json: application(),
        headers,
      });
      expect(first.status).to.equal(202);
      expect(second.status).to.equal(202);
      expect(second.body.id).to.equal(first.body.id);
      expect(second.headers.get('location')).to.equal(first.headers.get('location'));
      expect(await messageCount(h.store)).to.equal(1);
    });

    it('key order and whitespace of the body do not matter, the canonical form does', async () => {
      const headers = { 'idempotency-key': 'k-1', 'content-type': 'application/json' };
      const app = application();
      const reordered = Object.fromEntries(Object.entries(app).reverse());
      const first = await h.request('POST', '/api/v1/applications', {
        key: KEYS.muenster,
        body: JSON.stringify(app),
        headers,
      });
      const second = await h.request('POST', '/api/v1/applications', {
        key: KEYS.muenster,
        body: JSON.stringify(reordered, null, 2),
        headers,
      });
      expect(second.body.id).to.equal(first.body.id);
      expect(await messageCount(h.store)).to.equal(1);
    });

    it('the same key with a different body is 409 and stores nothing new', async () => {
      const headers = { 'idempotency-key': 'portal-2026-000123-try' };
      await h.request('POST', '/api/v1/applications', { key: KEYS.muenster, json: application(), headers });
      const res = await h.request('POST', '/api/v1/applications', {
        key: KEYS.muenster,
        json: application({ data: { zone: 'B' } }),
        headers,
      });
      expect(res.status).to.equal(409);
      expect(res.body.code).to.equal('AMT_IDEMPOTENCY_CONFLICT');
      expect(await messageCount(h.store)).to.equal(1);
    });

    it('a different attachment under the same key is a conflict too', async () => {
      const headers = { 'idempotency-key': 'with-file' };
      const withFile = (text: string): Record<string, unknown> =>
        application({
          attachments: [
            {
              filename: 'a.txt',
              mediaType: 'text/plain',
              contentBase64: Buffer.from(text).toString('base64'),
            },
          ],
        });
      expect(
        (
          await h.request('POST', '/api/v1/applications', {
            key: KEYS.muenster,
            json: withFile('eins'),
            headers,
          })
        ).status,
      ).to.equal(202);
      const res = await h.request('POST', '/api/v1/applications', {
        key: KEYS.muenster,
        json: withFile('zwei'),
        headers,
      });
      expect(res.status).to.equal(409);
      expect(await messageCount(h.store)).to.equal(1);
    });

    it('keys are per client: another client may use the same key', async () => {
      const headers = { 'idempotency-key': 'shared-key' };
      const a = await h.request('POST', '/api/v1/applications', {
        key: KEYS.muenster,
        json: application(),
        headers,
      });
      const b = await h.request('POST', '/api/v1/applications', {
        key: KEYS.bielefeld,
        json: application({ tenant: '057110000000' }),
        headers,
      });
      expect(a.status).to.equal(202);
      expect(b.status).to.equal(202);
      expect(b.body.id).to.not.equal(a.body.id);
      expect(await messageCount(h.store)).to.equal(2);
    });

    it('20 identical requests at once yield one message', async () => {
      const headers = { 'idempotency-key': 'burst-1' };
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          h.request('POST', '/api/v1/applications', { key: KEYS.muenster, json: application(), headers }),
        ),
      );
      expect(results.map((r) => r.status)).to.deep.equal(Array(20).fill(202));
      expect(new Set(results.map((r) => r.body.id)).size).to.equal(1);
      expect(await messageCount(h.store)).to.equal(1);
    });

    it('a multipart retry with the same key and file is the same message', async () => {
      const send = (): Promise<Awaited<ReturnType<Harness['request']>>> => {
        const form = new FormData();
        form.append('application', JSON.stringify(application()));
        form.append('attachment', new Blob(['Grundriss'], { type: 'application/pdf' }), 'grundriss.pdf');
        return h.request('POST', '/api/v1/applications', {
          key: KEYS.muenster,
          body: form,
          headers: { 'idempotency-key': 'mp-1' },
        });
      };
      const first = await send();
      const second = await send();
      expect(second.body.id).to.equal(first.body.id);
      expect(await messageCount(h.store)).to.equal(1);
    });
  });

  it('without Idempotency-Key two identical submissions are two messages', async () => {
    await h.request('POST', '/api/v1/applications', { key: KEYS.muenster, json: application() });
    await h.request('POST', '/api/v1/applications', { key: KEYS.muenster, json: application() });
    expect(await messageCount(h.store)).to.equal(2);
  });

  it('answers 503 with Retry-After while shutting down and stores nothing', async () => {
    h.state.shuttingDown = true;
    const res = await h.request('POST', '/api/v1/applications', { key: KEYS.muenster, json: application() });
    expect(res.status).to.equal(503);
    expect(res.body.code).to.equal('AMT_SHUTTING_DOWN');
    expect(Number(res.headers.get('retry-after'))).to.be.greaterThan(0);
    expect(await messageCount(h.store)).to.equal(0);
  });
});
