import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import express from 'express';
import type { AdapterInstance } from '../../src/adapter-contract.js';
import { AmtError } from '../../src/errors.js';
import { createHttpDelivery } from './http-delivery.js';
import { httpAdapter, type HttpAdapterConfig } from './manifest.js';
import { REFUSAL_PAUSE_MS } from './oauth2.js';
import {
  closedPort,
  fakeContext,
  makeDelivery,
  settle,
  startServer,
  type RecordingContext,
  type RunningServer,
} from './test-support.js';

const BEARER_TOKEN = 'bearer-Zk9s2LqX81';
const BASIC_PASSWORD = 'basic-pw-Qm7#t4:Ue';
const CLIENT_ID = 'amtsbote-muenster';
const CLIENT_SECRET = 'oauth-secret-Yh3$Vx90';

/** Everything a secret could have leaked into: error texts, causes, and every recorded log line. */
function leakedText(context: RecordingContext, error?: unknown): string {
  const parts: string[] = context.lines.map((l) => `${l.message} ${JSON.stringify(l.meta ?? {})}`);
  let current: unknown = error;
  while (current instanceof Error) {
    parts.push(current.message, String(current.stack), JSON.stringify(current));
    current = current.cause;
  }
  return parts.join('\n');
}

function expectNoSecrets(text: string): void {
  const basic = Buffer.from(`user:${BASIC_PASSWORD}`).toString('base64');
  for (const secret of [BEARER_TOKEN, BASIC_PASSWORD, CLIENT_SECRET, basic, 'issued-token-']) {
    expect(text).not.to.contain(secret);
  }
}

describe('http adapter: authentication', () => {
  let dir: string;
  let context: RecordingContext;
  let server: RunningServer;
  let tokenRequests: { authorization: string | undefined; form: Record<string, string> }[];
  let validTokens: Set<string>;
  let tokenLifetime: number | undefined;
  let tokenStatus: number;
  let refusalCode: string;
  let resourceAuthorizations: (string | undefined)[];
  let issued: number;
  const instances: AdapterInstance[] = [];

  const oauth2 = (overrides: Partial<Extract<HttpAdapterConfig['auth'], { type: 'oauth2' }>> = {}) =>
    ({
      type: 'oauth2',
      tokenUrl: `${server.url}/token`,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      ...overrides,
    }) as const;

  function adapter(config: Partial<HttpAdapterConfig>, now?: () => number): AdapterInstance {
    const full: HttpAdapterConfig = { url: `${server.url}/api/antraege`, ...config };
    const instance = now ? createHttpDelivery(context, full, { now }) : httpAdapter.create(context, full);
    instances.push(instance);
    return instance;
  }

  const deliver = (instance: AdapterInstance) =>
    instance.deliver!(makeDelivery(), new AbortController().signal);

  before(async () => {
    const app = express();
    app.post('/token', express.urlencoded({ extended: false }), (req, res) => {
      const form = { ...(req.body as Record<string, string>) };
      tokenRequests.push({ authorization: req.headers.authorization, form });
      const basic = req.headers.authorization?.startsWith('Basic ')
        ? Buffer.from(req.headers.authorization.slice(6), 'base64')
            .toString('utf8')
            .split(':')
            .map(decodeURIComponent)
        : undefined;
      const [id, secret] = basic ?? [form.client_id, form.client_secret];
      if (
        tokenStatus !== 200 ||
        id !== CLIENT_ID ||
        secret !== CLIENT_SECRET ||
        form.grant_type !== 'client_credentials'
      ) {
        res
          .status(tokenStatus === 200 ? 401 : tokenStatus)
          .json({ error: refusalCode, error_description: `bad ${secret}` });
        return;
      }
      const token = `issued-token-${++issued}`;
      validTokens.add(token);
      res.json({
        access_token: token,
        token_type: 'Bearer',
        ...(tokenLifetime === undefined ? {} : { expires_in: tokenLifetime }),
      });
    });
    app.post('/api/antraege', (req, res) => {
      const authorization = req.headers.authorization;
      resourceAuthorizations.push(authorization);
      const ok =
        authorization === `Bearer ${BEARER_TOKEN}` ||
        authorization === `Basic ${Buffer.from(`user:${BASIC_PASSWORD}`).toString('base64')}` ||
        (authorization?.startsWith('Bearer ') === true && validTokens.has(authorization.slice(7)));
      if (!ok) {
        res
          .status(401)
          .set('WWW-Authenticate', 'Bearer error="invalid_token"')
          .type('application/problem+json');
        res.json({ title: 'Unauthorized', detail: `token ${authorization ?? ''} is not valid` });
        return;
      }
      res.status(201).location('/api/antraege/1').end();
    });
    server = await startServer(app);
  });

  after(async () => {
    await server.close();
  });

  beforeEach(() => {
    refusalCode = 'invalid_client';
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-http-auth-'));
    context = fakeContext(dir);
    tokenRequests = [];
    validTokens = new Set();
    tokenLifetime = 3600;
    tokenStatus = 200;
    resourceAuthorizations = [];
    issued = 0;
  });

  afterEach(async () => {
    await Promise.all(instances.splice(0).map((i) => i.close?.()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends no Authorization header with auth none', async () => {
    const error = (await settle(deliver(adapter({ auth: { type: 'none' } })))).error as AmtError;
    expect(resourceAuthorizations).to.deep.equal([undefined]);
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(error.message).to.contain('401');
  });

  it('sends a static bearer token', async () => {
    const result = await deliver(adapter({ auth: { type: 'bearer', token: BEARER_TOKEN } }));
    expect(result.remoteReference).to.equal('/api/antraege/1');
    expect(resourceAuthorizations).to.deep.equal([`Bearer ${BEARER_TOKEN}`]);
    expectNoSecrets(leakedText(context));
  });

  it('sends HTTP Basic credentials', async () => {
    await deliver(adapter({ auth: { type: 'basic', username: 'user', password: BASIC_PASSWORD } }));
    expect(resourceAuthorizations).to.deep.equal([
      `Basic ${Buffer.from(`user:${BASIC_PASSWORD}`).toString('base64')}`,
    ]);
  });

  it('rejects a wrong basic password permanently without revealing it', async () => {
    const instance = adapter({
      auth: { type: 'basic', username: 'user', password: `${BASIC_PASSWORD}-old` },
    });
    const error = (await settle(deliver(instance))).error as AmtError;
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
    // The receiver echoes the presented Authorization header in its problem detail.
    expect(error.message).to.contain('***');
    const text = leakedText(context, error);
    expect(text).not.to.contain(`${BASIC_PASSWORD}-old`);
    expect(text).not.to.contain(Buffer.from(`user:${BASIC_PASSWORD}-old`).toString('base64'));
  });

  it('fetches an OAuth2 token once and reuses it across deliveries', async () => {
    const instance = adapter({ auth: oauth2() });
    for (let i = 0; i < 3; i++) await deliver(instance);
    expect(tokenRequests).to.have.length(1);
    expect(resourceAuthorizations).to.deep.equal(Array(3).fill('Bearer issued-token-1'));
    const [request] = tokenRequests;
    expect(request!.form).to.deep.equal({ grant_type: 'client_credentials' });
    expect(request!.authorization).to.equal(
      `Basic ${Buffer.from(`${CLIENT_ID}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64')}`,
    );
  });

  it('shares one token request between concurrent deliveries', async () => {
    const instance = adapter({ auth: oauth2() });
    await Promise.all([deliver(instance), deliver(instance), deliver(instance)]);
    expect(tokenRequests).to.have.length(1);
  });

  it('sends client credentials and scope in the form body when configured', async () => {
    await deliver(adapter({ auth: oauth2({ clientAuthentication: 'body', scope: 'antraege:write' }) }));
    expect(tokenRequests[0]!.authorization).to.equal(undefined);
    expect(tokenRequests[0]!.form).to.deep.equal({
      grant_type: 'client_credentials',
      scope: 'antraege:write',
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
    });
  });

  it('renews the token shortly before expires_in runs out', async () => {
    let clock = 1_000_000;
    tokenLifetime = 300;
    const instance = adapter({ auth: oauth2() }, () => clock);
    await deliver(instance);
    clock += 250_000;
    await deliver(instance);
    expect(tokenRequests).to.have.length(1);
    clock += 25_000; // 275 s: inside the renewal margin of 30 s before expiry
    await deliver(instance);
    expect(tokenRequests).to.have.length(2);
    expect(resourceAuthorizations).to.deep.equal([
      'Bearer issued-token-1',
      'Bearer issued-token-1',
      'Bearer issued-token-2',
    ]);
  });

  it('treats a token without expires_in as valid for a while, not forever', async () => {
    let clock = 0;
    tokenLifetime = undefined;
    const instance = adapter({ auth: oauth2() }, () => clock);
    await deliver(instance);
    await deliver(instance);
    expect(tokenRequests).to.have.length(1);
    clock += 3_600_000;
    await deliver(instance);
    expect(tokenRequests).to.have.length(2);
  });

  it('drops a cached token the receiver refuses with 401 and fetches one new token', async () => {
    const instance = adapter({ auth: oauth2() });
    await deliver(instance);
    validTokens.delete('issued-token-1'); // revoked before its expiry
    const result = await deliver(instance);
    expect(result.remoteReference).to.equal('/api/antraege/1');
    expect(tokenRequests).to.have.length(2);
    expect(resourceAuthorizations).to.deep.equal([
      'Bearer issued-token-1',
      'Bearer issued-token-1',
      'Bearer issued-token-2',
    ]);
  });

  it('fails permanently when the renewed token is refused too, after exactly one renewal', async () => {
    const instance = adapter({ auth: oauth2() });
    await deliver(instance);
    validTokens.clear();
    validTokens.add = () => validTokens; // the receiver now refuses every token
    const error = (await settle(deliver(instance))).error as AmtError;
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(error.message).to.contain('401');
    expect(tokenRequests).to.have.length(2);
    expect(resourceAuthorizations).to.have.length(3);
    expectNoSecrets(leakedText(context, error));
  });

  it('does not renew a token that was fetched for this very request', async () => {
    validTokens.add = () => validTokens; // the receiver accepts no token at all
    const error = (await settle(deliver(adapter({ auth: oauth2() })))).error as AmtError;
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(tokenRequests).to.have.length(1);
    expect(resourceAuthorizations).to.have.length(1);
  });

  it('retries later when the token endpoint refuses the client, without quoting the secret', async () => {
    const instance = adapter({ auth: oauth2({ clientSecret: `${CLIENT_SECRET}-rotated` }) });
    const error = (await settle(deliver(instance))).error as AmtError;
    // The application is not at fault: once the secret is fixed, it goes out without a replay.
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(error.message).to.contain('invalid_client').and.to.contain('auth.clientSecret');
    expect(error.retryAfterSeconds).to.equal(REFUSAL_PAUSE_MS / 1000);
    expect(resourceAuthorizations).to.have.length(0);
    const text = leakedText(context, error);
    expect(text).not.to.contain(`${CLIENT_SECRET}-rotated`);
    expect(text).not.to.contain(encodeURIComponent(`${CLIENT_SECRET}-rotated`));
  });

  it('names the OAuth error code of a refusal, but not free text in its place', async () => {
    refusalCode = 'Antragstellerin Erika Mustermann ist unbekannt';
    const instance = adapter({ auth: oauth2({ clientSecret: `${CLIENT_SECRET}-rotated` }) });
    const error = (await settle(deliver(instance))).error as AmtError;
    expect(error.message).to.match(
      /^token endpoint http:\/\/127\.0\.0\.1:\d+\/token answered 401: the client/,
    );
    expect(error.message).not.to.contain('Mustermann');
  });

  it('does not present refused credentials again for a while, then asks once more', async () => {
    let now = 1_000_000;
    const instance = adapter({ auth: oauth2({ clientSecret: `${CLIENT_SECRET}-rotated` }) }, () => now);
    await settle(deliver(instance));
    now += REFUSAL_PAUSE_MS - 1_000;
    const backlog = await Promise.all([1, 2, 3].map(() => settle(deliver(instance))));
    for (const { error } of backlog) {
      expect((error as AmtError).code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect((error as AmtError).message)
        .to.contain('invalid_client')
        .and.to.contain('not asked again for 1 s');
      expect((error as AmtError).retryAfterSeconds).to.equal(1);
    }
    expect(tokenRequests).to.have.length(1);
    now += 1_000;
    await settle(deliver(instance));
    expect(tokenRequests).to.have.length(2);
    expect(resourceAuthorizations).to.have.length(0);
  });

  it('retries later when the token endpoint is down or overloaded', async () => {
    tokenStatus = 503;
    const overloaded = (await settle(deliver(adapter({ auth: oauth2() })))).error as AmtError;
    expect(overloaded.code).to.equal('AMT_DELIVERY_RETRYABLE');
    const port = await closedPort();
    const down = (
      await settle(deliver(adapter({ auth: oauth2({ tokenUrl: `http://127.0.0.1:${port}/token` }) })))
    ).error as AmtError;
    expect(down.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(down.message).to.contain('ECONNREFUSED');
    expectNoSecrets(leakedText(context, overloaded) + leakedText(context, down));
  });

  it('never puts a secret into errors or logs when the receiver is unreachable', async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/api/antraege`;
    const errors: unknown[] = [];
    for (const auth of [
      { type: 'bearer', token: BEARER_TOKEN },
      { type: 'basic', username: 'user', password: BASIC_PASSWORD },
    ] as const) {
      errors.push((await settle(deliver(adapter({ url, auth })))).error);
    }
    expect(errors.every((e) => e instanceof AmtError && e.code === 'AMT_DELIVERY_RETRYABLE')).to.equal(true);
    expectNoSecrets(errors.map((e) => leakedText(context, e)).join('\n'));
  });
});
