import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { isAmtError } from '../../src/errors.js';
import { startFitConnectEmulator, type FitConnectEmulator } from '../../test/peers/fit-connect/emulator.js';
import { ClientCredentialsTokens } from './token.js';

describe('FIT-Connect access tokens', function () {
  let emulator: FitConnectEmulator;
  let client: { clientId: string; clientSecret: string };

  before(async function () {
    this.timeout(180_000);
    emulator = await startFitConnectEmulator({ tokenLifetimeSeconds: 300 });
    client = emulator.state.addClient();
  });
  after(async () => emulator.close());

  it('reuses a token and replaces it shortly before it expires, without asking for a scope', async () => {
    let now = Date.now();
    const tokens = new ClientCredentialsTokens({
      tokenUrl: emulator.tokenUrl,
      ...client,
      timeoutMs: 5000,
      now: () => now,
    });
    const first = await tokens.get();
    expect(await tokens.get()).to.equal(first);
    now += 250_000; // 50 s left of 300: still fine
    expect(await tokens.get()).to.equal(first);
    now += 25_000; // 25 s left: inside the refresh margin
    const second = await tokens.get();
    expect(second).to.not.equal(first);
    expect(emulator.state.tokenRequests).to.equal(2);
    expect(emulator.state.requestedScopes).to.deep.equal([]);
  });

  it('asks once for concurrent callers and again after a token was refused', async () => {
    const tokens = new ClientCredentialsTokens({ tokenUrl: emulator.tokenUrl, ...client, timeoutMs: 5000 });
    const before = emulator.state.tokenRequests;
    const [a, b, c] = await Promise.all([tokens.get(), tokens.get(), tokens.get()]);
    expect(new Set([a, b, c]).size).to.equal(1);
    tokens.invalidate(a);
    expect(await tokens.get()).to.not.equal(a);
    expect(emulator.state.tokenRequests - before).to.equal(2);
  });

  it('keeps refused credentials retryable and says why', async () => {
    const tokens = new ClientCredentialsTokens({
      tokenUrl: emulator.tokenUrl,
      clientId: client.clientId,
      clientSecret: 'wrong',
      timeoutMs: 5000,
    });
    let failure: unknown;
    try {
      await tokens.get();
    } catch (err) {
      failure = err;
    }
    expect(isAmtError(failure) && failure.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect((failure as Error).message).to.contain('invalid_client');
  });

  it('passes on an OAuth error code, not free text in its place', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'Antragstellerin "Erika Mustermann"\nunbekannt' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const tokens = new ClientCredentialsTokens({
        tokenUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
        clientId: client.clientId,
        clientSecret: 'wrong',
        timeoutMs: 5000,
      });
      const failure = await tokens.get().then(
        () => undefined,
        (err: unknown) => err as Error,
      );
      expect(failure?.message).to.equal('FIT-Connect token endpoint answered HTTP 401');
    } finally {
      server.close();
    }
  });
});
