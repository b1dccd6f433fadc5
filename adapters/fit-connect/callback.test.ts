import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { expect } from 'chai';
import express from 'express';
import { fakeContext, eventually, makeDelivery } from '../../test/peers/fit-connect/fake-context.js';
import {
  fitConnectFixture,
  SERVICE_KEY,
  type FitConnectFixture,
} from '../../test/peers/fit-connect/fixture.js';
import { callbackSignature, verifyCallback } from './callback.js';
import { createFitConnectInstance } from './manifest.js';
import { parseRemoteReference } from './send.js';

const SECRET = 'b5c1f0e2d9a84c7f9e3d2a1b0c9f8e7d';
const body = JSON.stringify({
  type: 'https://schema.fitko.de/fit-connect/submission-api/callbacks/new-submissions',
  submissionIds: ['f39ab143-d91a-474a-b69f-b00f1a1873c2'],
});
const now = Date.parse('2026-03-02T10:00:00Z');
const seconds = (ms: number) => String(Math.floor(ms / 1000));

function signed(timestampMs = now, raw: string = body, secret = SECRET) {
  const timestampHeader = seconds(timestampMs);
  return { timestampHeader, authHeader: callbackSignature(secret, timestampHeader, raw) };
}

describe('FIT-Connect callbacks', () => {
  describe('verifyCallback', () => {
    it('accepts a fresh callback with the right HMAC over timestamp and raw body', async () => {
      const check = await verifyCallback({ secret: SECRET, rawBody: Buffer.from(body), now, ...signed() });
      expect(check).to.deep.equal({ valid: true });
    });

    it('refuses a wrong secret, an altered body and a malformed header', async () => {
      const wrongSecret = await verifyCallback({
        secret: SECRET,
        rawBody: body,
        now,
        ...signed(now, body, 'x'.repeat(32)),
      });
      const altered = await verifyCallback({
        secret: SECRET,
        rawBody: body.replace('f39a', 'f39b'),
        now,
        ...signed(),
      });
      const shortHeader = await verifyCallback({
        secret: SECRET,
        rawBody: body,
        now,
        timestampHeader: seconds(now),
        authHeader: 'abcd',
      });
      const missing = await verifyCallback({
        secret: SECRET,
        rawBody: body,
        now,
        timestampHeader: seconds(now),
        authHeader: undefined,
      });
      for (const check of [wrongSecret, altered, shortHeader, missing]) expect(check.valid).to.equal(false);
      expect(altered).to.deep.equal({ valid: false, reason: 'the callback-authentication does not match' });
    });

    it('refuses callbacks older than five minutes or from the future', async () => {
      const stale = await verifyCallback({ secret: SECRET, rawBody: body, now, ...signed(now - 301_000) });
      const almostStale = await verifyCallback({
        secret: SECRET,
        rawBody: body,
        now,
        ...signed(now - 299_000),
      });
      const future = await verifyCallback({ secret: SECRET, rawBody: body, now, ...signed(now + 120_000) });
      expect(stale).to.deep.equal({ valid: false, reason: 'the callback is too old' });
      expect(almostStale.valid).to.equal(true);
      expect(future).to.deep.equal({ valid: false, reason: 'the callback timestamp lies in the future' });
    });

    it('refuses the same callback a second time', async () => {
      const context = fakeContext();
      const input = {
        secret: SECRET,
        rawBody: body,
        now: Date.now(),
        rememberOnce: context.rememberOnce,
        ...signed(Date.now()),
      };
      expect((await verifyCallback(input)).valid).to.equal(true);
      expect(await verifyCallback(input)).to.deep.equal({
        valid: false,
        reason: 'the callback was received before (replay)',
      });
    });
  });

  describe('handler mounted on an HTTP server', function () {
    let world: FitConnectFixture;
    let server: Server;
    let handlerUrl: string;
    const context = fakeContext();

    before(async function () {
      this.timeout(180_000);
      world = await fitConnectFixture();
      const receiver = createFitConnectInstance(context, world.receivingConfig({ callbackSecret: SECRET }));
      const app = express();
      app.post('/callbacks/fit-connect', express.raw({ type: () => true }), async (req, res) => {
        const answer = await receiver.handleCallback!({ headers: req.headers, rawBody: req.body as Buffer });
        res.status(answer.status).type(answer.contentType).send(JSON.stringify(answer.body));
      });
      server = await new Promise((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      handlerUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callbacks/fit-connect`;
      world.destination.callback = { url: handlerUrl, secret: SECRET };
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await world.close();
    });

    it('receives a submission right after the Zustelldienst calls back', async () => {
      const sender = createFitConnectInstance(fakeContext(), world.sendingConfig());
      const sent = await sender.deliver!(
        makeDelivery({ service: SERVICE_KEY, body: '{"antrag":1}' }),
        new AbortController().signal,
      );
      const { submissionId } = parseRemoteReference(sent.remoteReference)!;
      await eventually(
        () => context.received.some((r) => r.reference === submissionId),
        'the callback-triggered poll',
      );
      expect(world.emulator.state.callbacks.map((c) => c.status)).to.deep.equal([200]);
      await eventually(
        () => world.emulator.state.submissions.get(submissionId)!.status === 'accepted',
        'accept-submission',
      );
    });

    it('answers 401 problem+json to a callback with a bad HMAC, and to a replay', async () => {
      const post = (headers: Record<string, string>) =>
        fetch(handlerUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body,
        });
      const bad = await post({
        'callback-timestamp': seconds(Date.now()),
        'callback-authentication': 'ab'.repeat(64),
      });
      expect(bad.status).to.equal(401);
      expect(bad.headers.get('content-type')).to.contain('application/problem+json');
      expect(((await bad.json()) as { code: string }).code).to.equal('AMT_FIT_CONNECT_CALLBACK_INVALID');

      const good = signed(Date.now());
      const headers = {
        'callback-timestamp': good.timestampHeader,
        'callback-authentication': good.authHeader,
      };
      expect((await post(headers)).status).to.equal(200);
      expect((await post(headers)).status).to.equal(401);
    });
  });
});
