import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { Delivery } from '../../src/adapter-contract.js';
import { validateConfig } from '../../src/config/load.js';
import type { AmtError } from '../../src/errors.js';
import { DEFAULT_STATUS_MAPPING } from '../../src/status/mapping.js';
import {
  POSTBOX_ROUTE,
  recipientOf,
  STATUS_NOTICE_CLIENT,
  statusNoticeRoutes,
  StatusNotices,
  WEBHOOK_ROUTE,
} from '../../src/status/notify.js';
import { createWebhookNotifier, signWebhook, verifyWebhookSignature } from '../../src/status/webhook.js';
import type { MessageRecord } from '../../src/store/types.js';
import { createRouter } from '../../src/routing.js';

const NOW = Date.parse('2026-11-22T10:00:00Z');

function message(overrides: Partial<MessageRecord> = {}): MessageRecord {
  return {
    id: '3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
    deliveryId: 'd-1',
    direction: 'outbound',
    tenantId: 'muenster',
    ars: '055150000000',
    service: '99050012104000',
    reference: 'GEW-PORTAL-1',
    clientId: 'portal-ms',
    routeId: 'gewerbe',
    target: 'gewerbe',
    status: 'delivered',
    payload: '{"applicant":{"familyName":"Mustermann"}}',
    attachments: [],
    attempts: 1,
    runAt: NOW,
    leaseOwner: undefined,
    leaseExpiresAt: undefined,
    remoteReference: 'GEW-2026-0815',
    remoteStatus: undefined,
    lastError: undefined,
    createdAt: NOW,
    updatedAt: NOW,
    ...overrides,
  };
}

const config = validateConfig(
  {
    dataDir: '/tmp/amtsbote-notify-test',
    tenants: [{ id: 'muenster', name: 'Stadt Münster', ars: '055150000000' }],
    clients: [
      {
        id: 'portal-ms',
        keyHash: `sha256:${'1'.repeat(64)}`,
        tenants: ['muenster'],
        webhook: { url: 'https://portal.example/hooks', secret: 'a-secret-of-16-chars' },
      },
      { id: 'portal-quiet', keyHash: `sha256:${'2'.repeat(64)}`, tenants: ['muenster'] },
    ],
    adapters: { gewerbe: { type: 'test' }, postfach: { type: 'postbox' } },
    routes: [
      {
        id: 'gewerbe',
        ars: '05515',
        service: '99050012104000',
        adapter: 'gewerbe',
        postbox: { adapter: 'postfach', templates: { PROCESSING: 'Wir bearbeiten {reference}.' } },
      },
      { id: 'ohne-postfach', ars: '05515', service: '99050012104001', adapter: 'gewerbe' },
    ],
  },
  {
    manifests: [
      {
        type: 'test',
        version: '1.0.0',
        description: 'test',
        capabilities: { outbound: true, inbound: false, poll: false },
        configSchema: { type: 'object' },
        secrets: [],
        example: {},
        create: () => ({}),
      },
      {
        type: 'postbox',
        version: '1.0.0',
        description: 'a stand-in of the postbox adapter',
        capabilities: { outbound: true, inbound: false, poll: false },
        statusNotices: () => undefined,
        configSchema: { type: 'object' },
        secrets: [],
        example: {},
        create: () => ({}),
      },
    ],
    baseDir: '/tmp',
    source: undefined,
  },
);

const change = (m: MessageRecord, routeId = m.routeId) => ({
  message: m,
  route: config.routes.find((r) => r.id === routeId),
  mapping: DEFAULT_STATUS_MAPPING,
  values: { reference: m.reference, remoteReference: m.remoteReference },
  citizenStatus: 'PROCESSING' as const,
  citizenText: 'Ihr Antrag wird bearbeitet.',
  remoteStatus: 'IN_BEARBEITUNG',
  at: NOW,
});

describe('status: notices', () => {
  const notices = new StatusNotices(config);

  it('builds a webhook notice and a postbox notice with keys per application and change', () => {
    const [hook, box] = notices.followUps(change(message()), 3);
    expect(hook).to.deep.include({
      direction: 'outbound',
      clientId: STATUS_NOTICE_CLIENT,
      routeId: WEBHOOK_ROUTE,
      target: 'webhook:portal-ms',
      tenantId: 'muenster',
      reference: 'GEW-PORTAL-1',
      receivedAt: NOW,
    });
    expect(hook!.idempotency?.key).to.equal('webhook:3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d:3');
    expect(JSON.parse(hook!.payload)).to.deep.equal({
      event: 'application.status',
      applicationId: '3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
      reference: 'GEW-PORTAL-1',
      tenant: '055150000000',
      service: '99050012104000',
      citizenStatus: 'PROCESSING',
      citizenText: 'Ihr Antrag wird bearbeitet.',
      remoteStatus: 'IN_BEARBEITUNG',
      remoteReference: 'GEW-2026-0815',
      change: 3,
      at: '2026-11-22T10:00:00.000Z',
    });
    expect(box).to.deep.include({ routeId: POSTBOX_ROUTE, target: 'postfach' });
    expect(box!.idempotency?.key).to.equal('postbox:3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d:3');
    expect(JSON.parse(box!.payload)).to.deep.equal({
      recipient: { reference: 'GEW-PORTAL-1' },
      subject: 'Ihr Antrag: In Bearbeitung',
      text: 'Wir bearbeiten GEW-PORTAL-1.',
      status: 'PROCESSING',
      service: '99050012104000',
      reference: 'GEW-PORTAL-1',
      applicationId: '3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
    });
    const [again] = notices.followUps(change(message()), 3);
    expect(again!.idempotency).to.deep.equal(hook!.idempotency);
    expect(again!.id).not.to.equal(hook!.id);
    expect(notices.followUps(change(message()), 4)[0]!.idempotency?.key).to.match(/:4$/);
  });

  it('sends nothing to clients without a webhook or routes without a postbox', () => {
    expect(
      notices.followUps(change(message({ clientId: 'portal-quiet' })), 1).map((m) => m.target),
    ).to.deep.equal(['postfach']);
    const withoutPostbox = message({ routeId: 'ohne-postfach' });
    expect(notices.followUps(change(withoutPostbox), 1).map((m) => m.target)).to.deep.equal([
      'webhook:portal-ms',
    ]);
    expect(
      notices.followUps(change(message({ clientId: 'portal-quiet', routeId: 'ohne-postfach' })), 1),
    ).to.deep.equal([]);
  });

  it('addresses the postbox by the bPK2 pseudonym of a verified identity, else by the reference', () => {
    const verified = message({
      payload: JSON.stringify({
        verifiedIdentity: { pseudonym: 'bPK2-ZmVkZXJhbC1wc2V1ZG9ueW0', trustLevel: 'substantiell' },
      }),
    });
    expect(recipientOf(verified)).to.deep.equal({ pseudonym: 'bPK2-ZmVkZXJhbC1wc2V1ZG9ueW0' });
    expect(recipientOf(message())).to.deep.equal({ reference: 'GEW-PORTAL-1' });
    expect(recipientOf(message({ payload: '{"verifiedIdentity":{"pseudonym":""}}' }))).to.deep.equal({
      reference: 'GEW-PORTAL-1',
    });
    expect(
      recipientOf(message({ payload: '"verifiedIdentity" <xml/>', reference: undefined })),
    ).to.deep.equal({
      reference: '3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
    });
  });

  it('puts notices on routes no application can be routed to', () => {
    const router = createRouter({ ...config, routes: [...config.routes, ...statusNoticeRoutes(config)] });
    expect(router.routeById(WEBHOOK_ROUTE)?.mapping).to.equal(undefined);
    expect(router.routeById(POSTBOX_ROUTE)?.retry).to.deep.equal(config.retry);
    for (const service of ['amtsbote:status-notice', '', '99050012104000']) {
      expect(router.resolve('055150000000', service)?.id).not.to.be.oneOf([WEBHOOK_ROUTE, POSTBOX_ROUTE]);
    }
  });
});

describe('status: webhook signatures', () => {
  const body = '{"event":"application.status"}';

  it('signs t.body with HMAC-SHA256 and verifies within the tolerance only', () => {
    const header = signWebhook(body, 'a-secret-of-16-chars', NOW / 1000);
    expect(header).to.match(/^t=1795341600,v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(header, body, 'a-secret-of-16-chars', { now: NOW + 299_000 })).to.equal(
      true,
    );
    expect(verifyWebhookSignature(header, body, 'a-secret-of-16-chars', { now: NOW + 301_000 })).to.equal(
      false,
    );
    expect(verifyWebhookSignature(header, body, 'a-secret-of-16-chars', { now: NOW - 301_000 })).to.equal(
      false,
    );
    expect(verifyWebhookSignature(header, `${body} `, 'a-secret-of-16-chars', { now: NOW })).to.equal(false);
    expect(
      verifyWebhookSignature(header.replace('t=1795341600', 't=1795341601'), body, 'a-secret-of-16-chars', {
        now: NOW,
      }),
    ).to.equal(false);
  });

  it('accepts any of several v1 values (secret rotation) and refuses malformed headers', () => {
    const good = signWebhook(body, 'new-secret-0123456', NOW / 1000);
    const old = signWebhook(body, 'old-secret-0123456', NOW / 1000).split(',')[1];
    expect(verifyWebhookSignature(`${good},${old}`, body, 'old-secret-0123456', { now: NOW })).to.equal(true);
    for (const header of [
      undefined,
      '',
      'v1=abc',
      't=abc,v1=00',
      `t=${NOW / 1000}`,
      `t=${NOW / 1000},v1=zz`,
    ]) {
      expect(
        verifyWebhookSignature(header, body, 'new-secret-0123456', { now: NOW }),
        String(header),
      ).to.equal(false);
    }
  });
});

describe('status: webhook notifier', () => {
  let server: Server;
  let url: string;
  let answer: { status: number; headers?: Record<string, string> };
  let received: { headers: Record<string, unknown>; body: string }[];

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(answer.status, answer.headers).end('ignored body');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=t0p`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    received = [];
    answer = { status: 200 };
  });

  const delivery: Delivery = {
    messageId: 'n-1',
    deliveryId: 'dlv-n-1',
    tenant: { id: 'muenster', ars: '055150000000', name: 'Stadt Münster' },
    service: '99050012104000',
    reference: 'GEW-PORTAL-1',
    attempt: 1,
    body: {
      contentType: 'application/json',
      content: '{"citizenStatus":"PROCESSING","citizenText":"Ärger"}',
    },
    attachments: [],
  };
  const notifier = () => createWebhookNotifier({ url, secret: 'a-secret-of-16-chars' }, { now: () => NOW });
  const failure = async (): Promise<AmtError> => {
    try {
      await notifier().deliver!(delivery, new AbortController().signal);
    } catch (err) {
      return err as AmtError;
    }
    throw new Error('delivered');
  };

  it('posts the body byte for byte with its signature and delivery id', async () => {
    expect(await notifier().deliver!(delivery, new AbortController().signal)).to.deep.equal({
      detail: { status: 200 },
    });
    const [request] = received;
    expect(request!.body).to.equal(delivery.body.content);
    expect(request!.headers).to.include({
      'content-type': 'application/json',
      'idempotency-key': 'dlv-n-1',
      'x-amtsbote-delivery-id': 'dlv-n-1',
      'x-amtsbote-event': 'application.status',
      'x-amtsbote-signature': signWebhook(
        Buffer.from(delivery.body.content),
        'a-secret-of-16-chars',
        NOW / 1000,
      ),
    });
  });

  it('retries 5xx, 429 and 408 (with Retry-After) and rejects other answers for good', async () => {
    answer = { status: 503, headers: { 'retry-after': '7' } };
    const unavailable = await failure();
    expect(unavailable).to.include({ code: 'AMT_DELIVERY_RETRYABLE', retryAfterSeconds: 7 });
    expect(unavailable.message).to.equal(`the webhook ${url.split('?')[0]} answered 503`);
    for (const status of [429, 408, 500]) {
      answer = { status };
      expect((await failure()).code, String(status)).to.equal('AMT_DELIVERY_RETRYABLE');
    }
    for (const status of [301, 400, 401, 404, 410]) {
      answer = { status, headers: status === 301 ? { location: 'https://elsewhere.example/' } : {} };
      expect((await failure()).code, String(status)).to.equal('AMT_DELIVERY_REJECTED');
    }
  });

  it('retries when the portal cannot be reached', async () => {
    const closed = createWebhookNotifier({ url: 'http://127.0.0.1:9/hook', secret: 'a-secret-of-16-chars' });
    try {
      await closed.deliver!(delivery, new AbortController().signal);
      expect.fail('delivered');
    } catch (err) {
      expect((err as AmtError).code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect((err as AmtError).message).to.include('cannot be reached');
    }
  });
});
