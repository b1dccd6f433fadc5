/**
 * The status back-channel end to end, in process: a portal submits, an adapter delivers to a
 * Fachverfahren, the Fachverfahren reports a status (HTTP or a response file), and the citizen
 * status reaches the status API, the portal's signed webhook and the citizen's postbox. Real
 * SQLite store, real pipeline, real adapters, real loopback servers.
 */
import { createHmac } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { fileDropAdapter } from '../../adapters/file-drop/manifest.js';
import { httpAdapter } from '../../adapters/http/manifest.js';
import { postboxAdapter } from '../../adapters/postbox/manifest.js';
import { validateConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { hashApiKey } from '../../src/http/auth.js';
import { verifyWebhookSignature } from '../../src/status/webhook.js';
import type { MessageRecord } from '../../src/store/types.js';
import { startPeer, startStatusGateway, type Json, type Peer, type StatusGateway } from './harness.js';

const MUENSTER = '055150000000';
const GEWERBE = '99050012104000';
const MELDE = '99115005001000';
const SECRET = 'whsec-7Qm2Lx9Vt4Rb8Kp1';
const KEYS = {
  portal: 'portal-ms-key-1f3a',
  gewerbe: 'fv-gewerbe-key-9c2e',
  melde: 'fv-melde-key-44b1',
  bielefeld: 'fv-bielefeld-key-a07d',
  admin: 'ops-key-5e6f',
} as const;
const manifests = [httpAdapter, fileDropAdapter, postboxAdapter];

describe('status back-channel end to end', function () {
  this.timeout(30_000);
  let dir: string;
  let drop: string;
  let inbox: string;
  let fachverfahren: Peer;
  let webhook: Peer;
  let postbox: Peer;
  let config: GatewayConfig;
  let gw: StatusGateway;

  function buildConfig(): GatewayConfig {
    writeFileSync(
      path.join(dir, 'gewerbe.status.yaml'),
      `service: Gewerbeanmeldung
statuses:
  IN_BEARBEITUNG: PROCESSING
  NACHFORDERUNG: ACTION_REQUIRED
  ERLEDIGT: COMPLETED
`,
    );
    writeFileSync(
      path.join(dir, 'melde.status.yaml'),
      `service: Wohnsitzanmeldung
statuses:
  EINGEGANGEN: RECEIVED
  IN_BEARBEITUNG: PROCESSING
  ANGEMELDET:
    status: COMPLETED
    text: 'Ihre Wohnsitzanmeldung {reference} ist erledigt.[ {text}]'
`,
    );
    return validateConfig(
      {
        dataDir: dir,
        tenants: [
          { id: 'muenster', name: 'Stadt Münster', ars: MUENSTER },
          { id: 'bielefeld', name: 'Stadt Bielefeld', ars: '057110000000' },
        ],
        clients: [
          {
            id: 'portal-ms',
            keyHash: hashApiKey(KEYS.portal),
            tenants: ['muenster'],
            webhook: { url: `${webhook.url}/hooks/amtsbote?channel=status`, secret: SECRET },
          },
          {
            id: 'fv-gewerbe',
            keyHash: hashApiKey(KEYS.gewerbe),
            tenants: ['muenster'],
            statusReporter: ['gewerbe'],
          },
          { id: 'fv-melde', keyHash: hashApiKey(KEYS.melde), tenants: ['muenster'], statusReporter: true },
          {
            id: 'fv-bielefeld',
            keyHash: hashApiKey(KEYS.bielefeld),
            tenants: ['bielefeld'],
            statusReporter: true,
          },
          { id: 'ops', keyHash: hashApiKey(KEYS.admin), admin: true },
        ],
        adapters: {
          gewerbe: {
            type: 'http',
            config: {
              url: `${fachverfahren.url}/antraege`,
              remoteReference: { jsonPointer: '/vorgangsnummer' },
            },
          },
          melde: { type: 'file-drop', config: { directory: drop, inbox: { directory: inbox, minAge: 0 } } },
          postfach: {
            type: 'postbox',
            config: {
              url: `${postbox.url}/nachrichten`,
              auth: { type: 'bearer', token: 'postbox-token-123' },
              sender: 'Stadt Münster',
            },
          },
        },
        routes: [
          {
            id: 'gewerbe',
            ars: '05515',
            service: GEWERBE,
            adapter: 'gewerbe',
            statusMapping: 'gewerbe.status.yaml',
            postbox: { adapter: 'postfach' },
          },
          {
            id: 'melde',
            ars: '05515',
            service: MELDE,
            adapter: 'melde',
            statusMapping: 'melde.status.yaml',
            postbox: {
              adapter: 'postfach',
              subject: 'Neuigkeiten zu Ihrer Wohnsitzanmeldung',
              templates: { COMPLETED: 'Ihre Anmeldung ist abgeschlossen.[ {text}]' },
            },
          },
        ],
        retry: { maxAttempts: 6, initialDelay: 30, maxDelay: 200, jitter: 0 },
        pipeline: {
          concurrency: 8,
          batchSize: 10,
          lease: 5000,
          pollInterval: 20,
          deliveryTimeout: 5000,
          drainTimeout: 1000,
        },
      },
      { manifests, baseDir: dir, source: undefined },
    );
  }

  function application(service: string, reference: string): Record<string, unknown> {
    return {
      tenant: MUENSTER,
      service,
      reference,
      applicant: { givenName: 'Erika', familyName: 'Mustermann' },
      data: { betrieb: 'Café am Dom' },
    };
  }

  async function submit(service: string, reference: string): Promise<MessageRecord> {
    const res = await gw.request('POST', '/api/v1/applications', {
      key: KEYS.portal,
      json: application(service, reference),
    });
    expect(res.status).to.equal(202);
    return gw.messageWithStatus(res.body.id, 'delivered');
  }

  const report = (key: string, json: Record<string, unknown>) =>
    gw.request('POST', '/api/v1/status', { key, json });
  const remoteEvents = async (id: string) =>
    (await gw.store.history(id)).filter((h) => h.event === 'remote-status').map((h) => h.detail);
  const notices = async (target: string): Promise<MessageRecord[]> =>
    (await gw.store.listMessages({ limit: 100 })).items.filter((m) => m.target === target);
  const requestsUntil = (peer: Peer, n: number) =>
    gw.until(async () => (peer.requests.length >= n ? peer.requests : undefined), `${n} requests`);

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-status-e2e-'));
    drop = path.join(dir, 'share', 'eingang');
    inbox = path.join(dir, 'share', 'rueckmeldungen');
    mkdirSync(inbox, { recursive: true });
    fachverfahren = await startPeer([
      { status: 201, body: JSON.stringify({ vorgangsnummer: 'GEW-2026-0815' }) },
    ]);
    webhook = await startPeer([{ status: 204, body: '' }]);
    postbox = await startPeer([{ status: 201, body: JSON.stringify({ id: 'PB-1' }) }]);
    config = buildConfig();
    gw = await startStatusGateway(config, manifests);
  });

  afterEach(async () => {
    await gw.stop();
    await Promise.all([fachverfahren.close(), webhook.close(), postbox.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('carries a Fachverfahren status to the status API, the signed portal webhook and the postbox', async () => {
    webhook.answers = [
      { status: 503, headers: { 'retry-after': '0' } },
      { status: 204, body: '' },
    ];
    const message = await submit(GEWERBE, 'GEW-PORTAL-1');
    const [delivery] = fachverfahren.requests;
    expect(delivery?.headers['x-amtsbote-message-id']).to.equal(message.id);
    expect(message.remoteReference).to.equal('GEW-2026-0815');

    // The Fachverfahren names the application by the delivery id it got as Idempotency-Key.
    const res = await report(KEYS.gewerbe, {
      deliveryId: delivery!.headers['idempotency-key'],
      status: 'IN_BEARBEITUNG',
      detail: { sachgebiet: 'Gewerbeamt' },
    });
    expect(res.status).to.equal(200);
    const text =
      'Ihr Antrag „Gewerbeanmeldung“ (Vorgangsnummer GEW-PORTAL-1) wird bearbeitet. Aktenzeichen der Behörde: GEW-2026-0815.';
    expect(res.body).to.deep.equal({
      applicationId: message.id,
      remoteStatus: 'IN_BEARBEITUNG',
      citizenStatus: 'PROCESSING',
      citizenText: text,
      repeated: false,
      notifications: 2,
    });

    const view = await gw.request('GET', `/api/v1/applications/${message.id}`, { key: KEYS.portal });
    expect(view.body).to.include({
      status: 'delivered',
      remoteStatus: 'IN_BEARBEITUNG',
      citizenStatus: 'PROCESSING',
      citizenText: text,
    });
    const last = view.body.history.at(-1);
    expect(last).to.deep.include({ event: 'remote-status', status: 'delivered' });
    expect(last.detail).to.deep.equal({
      sachgebiet: 'Gewerbeamt',
      status: 'IN_BEARBEITUNG',
      citizenStatus: 'PROCESSING',
      citizenText: text,
    });

    // The webhook was down once: the notice is retried with the same delivery id, then arrives.
    const [down, hook] = await requestsUntil(webhook, 2);
    expect(down!.headers['idempotency-key']).to.equal(hook!.headers['idempotency-key']);
    expect(hook!.url).to.equal('/hooks/amtsbote?channel=status');
    const signature = String(hook!.headers['x-amtsbote-signature']);
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(signature) ?? [];
    expect(v1).to.equal(createHmac('sha256', SECRET).update(`${t}.${hook!.body}`).digest('hex'));
    expect(Math.abs(Number(t) - Date.now() / 1000)).to.be.below(60);
    expect(verifyWebhookSignature(signature, hook!.body, SECRET)).to.equal(true);
    expect(verifyWebhookSignature(signature, hook!.body.replace('PROCESSING', 'COMPLETED'), SECRET)).to.equal(
      false,
    );
    expect(verifyWebhookSignature(signature, hook!.body, 'another-secret-xyz')).to.equal(false);
    const notice: Json = JSON.parse(hook!.body);
    expect(notice).to.deep.include({
      event: 'application.status',
      applicationId: message.id,
      reference: 'GEW-PORTAL-1',
      tenant: MUENSTER,
      service: GEWERBE,
      citizenStatus: 'PROCESSING',
      citizenText: text,
      remoteStatus: 'IN_BEARBEITUNG',
      remoteReference: 'GEW-2026-0815',
      change: 1,
    });
    const [webhookMessage] = await notices('webhook:portal-ms');
    const delivered = await gw.messageWithStatus(webhookMessage!.id, 'delivered');
    expect((await gw.store.history(delivered.id)).map((h) => h.event)).to.include.ordered.members([
      'received',
      'claimed',
      'attempt-failed',
      'claimed',
      'delivered',
    ]);

    // The citizen's postbox gets the German notice, addressed by the portal reference.
    const [sent] = await requestsUntil(postbox, 1);
    expect(sent!.headers.authorization).to.equal('Bearer postbox-token-123');
    expect(JSON.parse(sent!.body)).to.deep.equal({
      recipient: { reference: 'GEW-PORTAL-1' },
      subject: 'Ihr Antrag „Gewerbeanmeldung“: In Bearbeitung',
      text,
      status: 'PROCESSING',
      service: GEWERBE,
      reference: 'GEW-PORTAL-1',
      sender: 'Stadt Münster',
    });
    const [postboxMessage] = await notices('postfach');
    expect((await gw.messageWithStatus(postboxMessage!.id, 'delivered')).remoteReference).to.equal('PB-1');

    // The same report again changes nothing and notifies nobody.
    const again = await report(KEYS.gewerbe, { messageId: message.id, status: 'IN_BEARBEITUNG' });
    expect(again.body).to.include({ repeated: true, notifications: 0, citizenStatus: 'PROCESSING' });
    expect(await remoteEvents(message.id)).to.have.length(1);
    expect(await notices('webhook:portal-ms')).to.have.length(1);
    expect(await notices('postfach')).to.have.length(1);

    // The next status, by the Fachverfahren's own case number.
    const done = await report(KEYS.gewerbe, { remoteReference: 'GEW-2026-0815', status: 'ERLEDIGT' });
    expect(done.body).to.include({ citizenStatus: 'COMPLETED', notifications: 2 });
    const hooks = await requestsUntil(webhook, 3);
    expect(JSON.parse(hooks[2]!.body)).to.include({ citizenStatus: 'COMPLETED', change: 2 });
    const views = await gw.request('GET', `/api/v1/applications/${message.id}`, { key: KEYS.portal });
    expect(views.body.citizenText).to.equal(
      'Die Bearbeitung Ihres Antrags „Gewerbeanmeldung“ (Vorgangsnummer GEW-PORTAL-1) ist abgeschlossen.',
    );
  });

  it('keeps a notice the webhook refuses as its own dead letter, and replays it after a fix', async () => {
    webhook.answers = [{ status: 410 }, { status: 204, body: '' }];
    const message = await submit(GEWERBE, 'GEW-PORTAL-2');
    await report(KEYS.gewerbe, {
      messageId: message.id,
      status: 'NACHFORDERUNG',
      detail: { text: 'Es fehlt die Gewerbeerlaubnis.' },
    });
    const [notice] = await gw.until(async () => {
      const found = await notices('webhook:portal-ms');
      return found.length === 1 && found[0]!.status === 'dead' ? found : undefined;
    }, 'a dead webhook notice');
    const dead = await gw.request('GET', '/api/v1/admin/dead-letters', { key: KEYS.admin });
    expect(dead.body.items.map((d: Json) => d.id)).to.deep.equal([notice!.id]);
    expect(dead.body.items[0].error.message).to.include('answered 410');
    // The application itself is untouched by its notice's failure.
    const view = await gw.request('GET', `/api/v1/applications/${message.id}`, { key: KEYS.portal });
    expect(view.body).to.include({ status: 'delivered', citizenStatus: 'ACTION_REQUIRED' });
    expect(view.body.citizenText).to.include('Es fehlt die Gewerbeerlaubnis.');

    const replay = await gw.request('POST', '/api/v1/admin/replay', {
      key: KEYS.admin,
      json: { ids: [notice!.id] },
    });
    expect(replay.body.replayed).to.deep.equal([notice!.id]);
    await gw.messageWithStatus(notice!.id, 'delivered');
    expect(webhook.requests).to.have.length(2);
    expect(webhook.requests[1]!.headers['idempotency-key']).to.equal(
      webhook.requests[0]!.headers['idempotency-key'],
    );
    expect(JSON.parse(webhook.requests[1]!.body)).to.include({ citizenStatus: 'ACTION_REQUIRED' });
  });

  it('writes an application with file-drop and reads its response file back as COMPLETED', async () => {
    const message = await submit(MELDE, 'WSA-2026-00042');
    const sidecar = JSON.parse(readFileSync(path.join(drop, `${message.remoteReference}.meta.json`), 'utf8'));
    writeFileSync(
      path.join(inbox, 'antwort-0001.json'),
      JSON.stringify({
        deliveryId: sidecar.deliveryId,
        status: 'ANGEMELDET',
        text: 'Die Meldebescheinigung liegt bei.',
      }),
    );
    expect(await gw.adapters.get('melde')!.poll!(new AbortController().signal)).to.deep.equal({ items: 1 });
    const view = await gw.request('GET', `/api/v1/applications/${message.id}`, { key: KEYS.portal });
    expect(view.body).to.include({
      remoteStatus: 'ANGEMELDET',
      citizenStatus: 'COMPLETED',
      citizenText: 'Ihre Wohnsitzanmeldung WSA-2026-00042 ist erledigt. Die Meldebescheinigung liegt bei.',
    });
    expect(view.body.history.at(-1).detail).to.include({ file: 'antwort-0001.json' });
    expect(readdirSync(path.join(inbox, 'processed'))).to.have.length(1);
    const [sent] = await requestsUntil(postbox, 1);
    expect(JSON.parse(sent!.body)).to.include({
      subject: 'Neuigkeiten zu Ihrer Wohnsitzanmeldung',
      text: 'Ihre Anmeldung ist abgeschlossen. Die Meldebescheinigung liegt bei.',
      status: 'COMPLETED',
    });
  });

  it('reports files a crash left in processing/ once after the restart, without a second history event', async () => {
    const message = await submit(MELDE, 'WSA-2026-00043');
    writeFileSync(
      path.join(inbox, 'a.json'),
      JSON.stringify({ deliveryId: message.deliveryId, status: 'IN_BEARBEITUNG' }),
    );
    await gw.adapters.get('melde')!.poll!(new AbortController().signal);
    expect(await remoteEvents(message.id)).to.have.length(1);
    await requestsUntil(webhook, 1);

    // A crash after reporting a.json but before moving it: it is still in processing/. Another
    // file was claimed and the gateway died before reporting it.
    const processed = path.join(inbox, 'processed');
    const [claimA] = readdirSync(processed);
    renameSync(path.join(processed, claimA!), path.join(inbox, 'processing', claimA!));
    writeFileSync(
      path.join(inbox, 'processing', `${claimA!.slice(0, 19)}-ffffffff~b.json`),
      JSON.stringify({ deliveryId: message.deliveryId, status: 'ANGEMELDET' }),
    );
    await gw.stop();

    gw = await startStatusGateway(config, manifests);
    expect(await gw.adapters.get('melde')!.poll!(new AbortController().signal)).to.deep.equal({ items: 2 });
    expect((await remoteEvents(message.id)).map((d) => [d?.status, d?.file])).to.deep.equal([
      ['IN_BEARBEITUNG', 'a.json'],
      ['ANGEMELDET', 'b.json'],
    ]);
    expect(readdirSync(path.join(inbox, 'processing'))).to.deep.equal([]);
    expect(readdirSync(processed)).to.have.length(2);
    // One notice per change: a.json counted once.
    expect((await notices('webhook:portal-ms')).length).to.equal(2);
    const hooks = await requestsUntil(webhook, 2);
    expect(hooks.map((h) => JSON.parse(h.body).citizenStatus)).to.deep.equal(['PROCESSING', 'COMPLETED']);
    const view = await gw.request('GET', `/api/v1/applications/${message.id}`, { key: KEYS.portal });
    expect(view.body.citizenStatus).to.equal('COMPLETED');
  });

  describe('POST /api/v1/status refuses what a reporter may not report', () => {
    it('answers 403 to a client that is no status reporter', async () => {
      const message = await submit(GEWERBE, 'GEW-PORTAL-3');
      const res = await report(KEYS.portal, { messageId: message.id, status: 'ERLEDIGT' });
      expect(res.status).to.equal(403);
      expect(res.body.code).to.equal('AMT_FORBIDDEN');
      expect(await remoteEvents(message.id)).to.deep.equal([]);
    });

    it('answers 404 for another tenant, another adapter instance and unknown ids alike', async () => {
      const message = await submit(GEWERBE, 'GEW-PORTAL-4');
      for (const [key, body] of [
        [KEYS.bielefeld, { messageId: message.id }],
        [KEYS.bielefeld, { deliveryId: message.deliveryId }],
        [KEYS.gewerbe, { messageId: 'no-such-application' }],
        [KEYS.gewerbe, { remoteReference: 'NO-SUCH-CASE' }],
      ] as const) {
        const res = await report(key, { ...body, status: 'ERLEDIGT' });
        expect(res.status, JSON.stringify(body)).to.equal(404);
        expect(res.body.code).to.equal('AMT_NOT_FOUND');
      }
      const melde = await submit(MELDE, 'WSA-2026-00044');
      expect((await report(KEYS.gewerbe, { messageId: melde.id, status: 'ANGEMELDET' })).status).to.equal(
        404,
      );
      expect((await report(KEYS.melde, { messageId: melde.id, status: 'ANGEMELDET' })).status).to.equal(200);
      expect(await remoteEvents(message.id)).to.deep.equal([]);
    });

    it('answers 409 while the application is not delivered, and for an ambiguous remote reference', async () => {
      const [accepted] = await gw.store.accept([
        {
          id: 'a6f1c1d2-5b7e-4c55-9a10-3d2b1c0e9f01',
          deliveryId: 'b0c8e7a2-1f3d-4e6b-8c9a-7d5e4f3a2b10',
          direction: 'outbound',
          tenantId: 'muenster',
          ars: MUENSTER,
          service: GEWERBE,
          reference: 'GEW-LATER',
          clientId: 'portal-ms',
          routeId: 'gewerbe',
          target: 'gewerbe',
          payload: '{}',
          attachments: [],
          idempotency: undefined,
          receivedAt: Date.now() + 3_600_000, // not due for an hour
        },
      ]);
      expect(accepted?.kind).to.equal('created');
      const early = await report(KEYS.gewerbe, {
        deliveryId: 'b0c8e7a2-1f3d-4e6b-8c9a-7d5e4f3a2b10',
        status: 'ERLEDIGT',
      });
      expect(early.status).to.equal(409);
      expect(early.body.code).to.equal('AMT_STATUS_NOT_DELIVERED');

      await submit(GEWERBE, 'GEW-PORTAL-5');
      await submit(GEWERBE, 'GEW-PORTAL-6'); // the Fachverfahren answers both with GEW-2026-0815
      const ambiguous = await report(KEYS.gewerbe, { remoteReference: 'GEW-2026-0815', status: 'ERLEDIGT' });
      expect(ambiguous.status).to.equal(409);
      expect(ambiguous.body.code).to.equal('AMT_STATUS_AMBIGUOUS');
    });

    it('answers 422 to a report that does not match its schema', async () => {
      const message = await submit(GEWERBE, 'GEW-PORTAL-7');
      for (const body of [
        { status: 'ERLEDIGT' },
        { messageId: message.id, deliveryId: message.deliveryId, status: 'ERLEDIGT' },
        { messageId: message.id },
        { messageId: message.id, status: '' },
        { messageId: message.id, status: 'ERLE\nDIGT' },
        { messageId: message.id, status: 'ERLEDIGT', detail: { text: 42 } },
        { messageId: message.id, status: 'ERLEDIGT', extra: true },
      ]) {
        const res = await report(KEYS.gewerbe, body);
        expect(res.status, JSON.stringify(body)).to.equal(422);
        expect(res.body.code).to.equal('AMT_VALIDATION_FAILED');
      }
      expect(await remoteEvents(message.id)).to.deep.equal([]);
    });

    it('records an unmapped status as the remote status only', async () => {
      const message = await submit(GEWERBE, 'GEW-PORTAL-8');
      const res = await report(KEYS.gewerbe, { messageId: message.id, status: 'WIEDERVORLAGE' });
      expect(res.body).to.deep.include({
        citizenStatus: null,
        citizenText: null,
        notifications: 0,
        repeated: false,
      });
      const view = await gw.request('GET', `/api/v1/applications/${message.id}`, { key: KEYS.portal });
      expect(view.body).to.include({ remoteStatus: 'WIEDERVORLAGE', citizenStatus: null, citizenText: null });
      expect(await notices('webhook:portal-ms')).to.deep.equal([]);
    });
  });
});
