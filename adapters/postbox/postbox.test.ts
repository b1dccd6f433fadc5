import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { AdapterContext, AdapterInstance, Delivery } from '../../src/adapter-contract.js';
import { AmtError } from '../../src/errors.js';
import type { PostboxNotice } from '../../src/status/notify.js';
import { postboxAdapter, type PostboxConfig } from './manifest.js';

interface Seen {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface Answer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

/** A loopback server answering from a queue (the last answer repeats) and recording requests. */
async function loopback(): Promise<{ url: string; seen: Seen[]; answers: Answer[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const answers: Answer[] = [{ status: 200, body: {} }];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    answers,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const notice: PostboxNotice = {
  recipient: { pseudonym: 'bPK2-ZmVkZXJhbC1wc2V1ZG9ueW0' },
  subject: 'Ihr Antrag „Gewerbeanmeldung“: Abgelehnt',
  text: 'Ihr Antrag „Gewerbeanmeldung“ (Vorgangsnummer GEW-1) konnte nicht angenommen werden.',
  status: 'REJECTED',
  service: '99050012104000',
  reference: 'GEW-1',
  applicationId: '7c1f0e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b',
};

function delivery(content: unknown = notice, deliveryId = 'dlv-notice-1'): Delivery {
  return {
    messageId: 'notice-1',
    deliveryId,
    tenant: { id: 'muenster', ars: '055150000000', name: 'Stadt Münster' },
    service: '99050012104000',
    reference: 'GEW-1',
    attempt: 1,
    body: {
      contentType: 'application/json',
      content: typeof content === 'string' ? content : JSON.stringify(content),
    },
    attachments: [],
  };
}

describe('postbox adapter', () => {
  let api: Awaited<ReturnType<typeof loopback>>;
  let sso: Awaited<ReturnType<typeof loopback>>;
  let dir: string;
  let context: AdapterContext;

  const create = (config: Partial<PostboxConfig> = {}): AdapterInstance =>
    postboxAdapter.create(context, { url: `${api.url}/api/v1/nachrichten`, ...config });
  const send = (instance: AdapterInstance, d = delivery()) =>
    instance.deliver!(d, new AbortController().signal);
  async function failure(instance: AdapterInstance, d = delivery()): Promise<AmtError> {
    try {
      await send(instance, d);
    } catch (err) {
      expect(err).to.be.instanceOf(AmtError);
      return err as AmtError;
    }
    throw new Error('the notice was delivered');
  }
  const oauth2 = {
    auth: {
      type: 'oauth2' as const,
      tokenUrl: '',
      clientId: 'amtsbote ms',
      clientSecret: 's3cr3t:&=',
      scope: 'postfach.schreiben',
    },
  };

  beforeEach(async () => {
    api = await loopback();
    sso = await loopback();
    oauth2.auth.tokenUrl = `${sso.url}/oauth2/token`;
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-postbox-'));
    const quiet = () => undefined;
    context = {
      instanceId: 'postfach',
      dataDir: dir,
      resolvePath: (p) => path.resolve(dir, p),
      logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
      receive: async () => ({ messageId: 'unused' }),
      reportStatus: async () => undefined,
      awaitingStatus: async () => [],
      rememberOnce: async () => true,
    };
  });

  afterEach(async () => {
    await Promise.all([api.close(), sso.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('posts the notice as JSON, idempotent by delivery id, REJECTED sent as COMPLETED', async () => {
    api.answers.splice(0, 1, { status: 201, body: { id: 'PB-4711' } });
    const result = await send(
      create({
        auth: { type: 'bearer', token: 'pb-token' },
        sender: 'Stadt Münster',
        headers: { 'X-Mandant': '055150000000' },
      }),
    );
    expect(result).to.deep.equal({ remoteReference: 'PB-4711', detail: { status: 201 } });
    const [request] = api.seen;
    expect(request!.url).to.equal('/api/v1/nachrichten');
    expect(request!.headers).to.include({
      authorization: 'Bearer pb-token',
      'content-type': 'application/json',
      'idempotency-key': 'dlv-notice-1',
      'x-mandant': '055150000000',
    });
    expect(JSON.parse(request!.body)).to.deep.equal({
      recipient: { pseudonym: 'bPK2-ZmVkZXJhbC1wc2V1ZG9ueW0' },
      subject: notice.subject,
      text: notice.text,
      status: 'COMPLETED',
      service: '99050012104000',
      reference: 'GEW-1',
      sender: 'Stadt Münster',
    });
  });

  it('maps statuses as configured and reads the reference from Location when the body has no id', async () => {
    api.answers.splice(0, 1, { status: 202, headers: { location: '/api/v1/nachrichten/88' } });
    const instance = create({ statusValues: { REJECTED: 'ABGELEHNT', PROCESSING: 'IN_BEARBEITUNG' } });
    expect((await send(instance)).remoteReference).to.equal('/api/v1/nachrichten/88');
    await send(instance, delivery({ ...notice, status: 'PROCESSING', recipient: { reference: 'GEW-1' } }));
    await send(instance, delivery({ ...notice, status: 'ACTION_REQUIRED' }));
    expect(api.seen.map((s) => JSON.parse(s.body).status)).to.deep.equal([
      'ABGELEHNT',
      'IN_BEARBEITUNG',
      'ACTION_REQUIRED',
    ]);
    expect(JSON.parse(api.seen[1]!.body).recipient).to.deep.equal({ reference: 'GEW-1' });
    expect(JSON.parse(api.seen[0]!.body)).not.to.have.property('sender');
    expect(api.seen[0]!.headers).not.to.have.property('authorization');
  });

  it('fetches one OAuth 2.0 token for all notices and renews it once after a 401', async () => {
    sso.answers.splice(
      0,
      1,
      { status: 200, body: { access_token: 'tok-1', expires_in: 1800 } },
      { status: 200, body: { access_token: 'tok-2', expires_in: 1800 } },
    );
    const instance = create(oauth2);
    await Promise.all([send(instance), send(instance, delivery(notice, 'dlv-2'))]);
    expect(sso.seen).to.have.length(1);
    const [token] = sso.seen;
    const expected = Buffer.from('amtsbote+ms:s3cr3t%3A%26%3D').toString('base64');
    expect(token!.headers.authorization).to.equal(`Basic ${expected}`);
    expect(new URLSearchParams(token!.body).get('grant_type')).to.equal('client_credentials');
    expect(new URLSearchParams(token!.body).get('scope')).to.equal('postfach.schreiben');
    expect(api.seen.map((s) => s.headers.authorization)).to.deep.equal(['Bearer tok-1', 'Bearer tok-1']);

    api.answers.splice(0, api.answers.length, { status: 401 }, { status: 200, body: {} });
    await send(instance, delivery(notice, 'dlv-3'));
    expect(sso.seen).to.have.length(2);
    expect(api.seen.slice(2).map((s) => s.headers.authorization)).to.deep.equal([
      'Bearer tok-1',
      'Bearer tok-2',
    ]);
    expect(api.seen.slice(2).map((s) => s.headers['idempotency-key'])).to.deep.equal(['dlv-3', 'dlv-3']);
  });

  it('rejects for good when the token endpoint refuses the credentials, retries when it is down', async () => {
    sso.answers.splice(0, 1, { status: 401, body: { error: 'invalid_client' } });
    expect((await failure(create(oauth2))).code).to.equal('AMT_DELIVERY_REJECTED');
    sso.answers.splice(0, 1, { status: 503 });
    expect((await failure(create(oauth2))).code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(api.seen).to.deep.equal([]);
  });

  it('retries 5xx and 429 with Retry-After, rejects other answers for good', async () => {
    api.answers.splice(0, 1, { status: 429, headers: { 'retry-after': '12' } });
    expect(await failure(create())).to.include({ code: 'AMT_DELIVERY_RETRYABLE', retryAfterSeconds: 12 });
    for (const status of [500, 502, 503, 408]) {
      api.answers.splice(0, api.answers.length, { status });
      expect((await failure(create())).code, String(status)).to.equal('AMT_DELIVERY_RETRYABLE');
    }
    for (const status of [302, 400, 403, 404, 422]) {
      api.answers.splice(0, api.answers.length, { status });
      expect((await failure(create())).code, String(status)).to.equal('AMT_DELIVERY_REJECTED');
    }
    const unreachable = postboxAdapter.create(context, { url: 'http://127.0.0.1:9/nachrichten' });
    expect((await failure(unreachable)).code).to.equal('AMT_DELIVERY_RETRYABLE');
  });

  it('sends nothing that is not a status notice, nor one without a pseudonym when one is required', async () => {
    for (const content of [
      '<xml/>',
      { hello: 'world' },
      { ...notice, status: 'DONE' },
      { ...notice, recipient: {} },
    ]) {
      expect((await failure(create(), delivery(content))).code).to.equal('AMT_DELIVERY_REJECTED');
    }
    const strict = create({ requirePseudonym: true });
    const refused = await failure(strict, delivery({ ...notice, recipient: { reference: 'GEW-1' } }));
    expect(refused.message).to.include('no verified citizen identity');
    await send(strict);
    expect(api.seen).to.have.length(1);
  });

  it('refuses headers the adapter sets itself', () => {
    expect(() => create({ headers: { Authorization: 'Basic x' } }))
      .to.throw(AmtError)
      .with.property('code', 'AMT_CONFIG_INVALID');
  });
});
