import { expect } from 'chai';
import { decodeProtectedHeader } from 'jose';
import { isAmtError, type AmtError } from '../../src/errors.js';
import { fakeContext, makeDelivery } from '../../test/peers/fit-connect/fake-context.js';
import {
  fitConnectFixture,
  SERVICE_KEY,
  type FitConnectFixture,
} from '../../test/peers/fit-connect/fixture.js';
import { encryptionJwk } from '../../test/peers/fit-connect/keys.js';
import type { EmulatedDestination } from '../../test/peers/fit-connect/state.js';
import { createFitConnectInstance } from './manifest.js';
import { parseRemoteReference } from './send.js';

const signal = new AbortController().signal;
const body = JSON.stringify({ antrag: 'Wohnsitzanmeldung' });
const OTHER_SERVICE = '99050012104000';

async function failure(promise: Promise<unknown>): Promise<AmtError> {
  try {
    await promise;
  } catch (err) {
    if (isAmtError(err)) return err;
    throw err;
  }
  throw new Error('it succeeded, an error was expected');
}

describe('FIT-Connect refresh of routes and destination keys', function () {
  let world: FitConnectFixture;

  before(async function () {
    this.timeout(180_000);
    world = await fitConnectFixture();
  });
  after(async () => world.close());

  /** Requests for the destination or its keys from `from` on (an index into the request log). */
  const destinationFetches = (d: EmulatedDestination, from: number) =>
    world.emulator.state.requests
      .slice(from)
      .filter((r) => r.method === 'GET' && r.path.startsWith(`/v1/destinations/${d.destinationId}`));
  const kidOf = (ref: string | undefined) => {
    const stored = world.emulator.state.submissions.get(parseRemoteReference(ref)!.submissionId)!;
    return decodeProtectedHeader(stored.encryptedMetadata!).kid;
  };
  /** Publishes `key` as the destination's current encryption key, as a key rotation does. */
  const rotate = (d: EmulatedDestination, key: ReturnType<typeof encryptionJwk>) => {
    d.keys.set(key.kid!, key);
    d.encryptionKid = key.kid!;
  };

  it('replaces a cached key after a rotation: the next delivery uses the new kid without fetching', async () => {
    const d = world.emulator.state.addDestination({
      encryptionKey: encryptionJwk(world.keys.destinationEncryption),
      services: [SERVICE_KEY],
    });
    const instance = createFitConnectInstance(
      fakeContext(),
      world.sendingConfig({ sending: { destinationId: d.destinationId } }),
    );
    const before = await instance.deliver!(makeDelivery({ service: SERVICE_KEY, body }), signal);
    expect(kidOf(before.remoteReference)).to.equal(world.keys.destinationEncryption.kid);

    rotate(d, encryptionJwk(world.keys.destinationSigning));
    expect(await instance.refresh!(signal)).to.deep.equal({ items: 1 });

    const mark = world.emulator.state.requests.length;
    const after = await instance.deliver!(makeDelivery({ service: SERVICE_KEY, body }), signal);
    expect(kidOf(after.remoteReference)).to.equal(world.keys.destinationSigning.kid);
    expect(destinationFetches(d, mark), 'fetches after the refresh').to.deep.equal([]);
  });

  it('refreshes the configured destination even before the first delivery', async () => {
    const d = world.emulator.state.addDestination({
      encryptionKey: encryptionJwk(world.keys.destinationEncryption),
      services: [SERVICE_KEY],
    });
    const instance = createFitConnectInstance(
      fakeContext(),
      world.sendingConfig({ sending: { destinationId: d.destinationId } }),
    );
    const mark = world.emulator.state.requests.length;
    expect(await instance.refresh!(signal)).to.deep.equal({ items: 1 });
    expect(destinationFetches(d, mark)).to.have.length(2); // the destination and its key

    const delivered = world.emulator.state.requests.length;
    await instance.deliver!(makeDelivery({ service: SERVICE_KEY, body }), signal);
    expect(destinationFetches(d, delivered), 'the delivery uses the refreshed entry').to.deep.equal([]);
  });

  it('fails the run when a routed destination’s key no longer passes the checks, after refreshing the others', async () => {
    const good = world.emulator.state.addDestination({
      encryptionKey: encryptionJwk(world.keys.destinationEncryption),
      services: [SERVICE_KEY],
    });
    const revoked = world.emulator.state.addDestination({
      encryptionKey: encryptionJwk(world.keys.destinationEncryption),
      services: [OTHER_SERVICE],
    });
    await world.emulator.addRoute({ ars: '05515', leikaKey: SERVICE_KEY, destinationId: good.destinationId });
    await world.emulator.addRoute({
      ars: '05515',
      leikaKey: OTHER_SERVICE,
      destinationId: revoked.destinationId,
    });
    const context = fakeContext();
    const instance = createFitConnectInstance(
      context,
      world.sendingConfig({
        routingApiUrl: world.emulator.routingUrl,
        routingJwksUrl: world.emulator.routingJwksUrl,
        sending: {},
      }),
    );
    for (const service of [SERVICE_KEY, OTHER_SERVICE]) {
      await instance.deliver!(makeDelivery({ service, ars: '055150000000', body }), signal);
    }

    // The good destination rotates to a new key; the other replaces its key with one meant for
    // signature verification, not for wrapping keys.
    rotate(good, encryptionJwk(world.keys.destinationSigning));
    rotate(revoked, { ...encryptionJwk(world.keys.service), key_ops: ['verify'] });
    const mark = world.emulator.state.requests.length;
    const err = await failure(instance.refresh!(signal));
    expect(err.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(err.message).to.contain(revoked.destinationId).and.to.contain('wrapKey');
    const routeLookups = world.emulator.state.requests
      .slice(mark)
      .filter((r) => r.path === '/routing/v1/routes');
    expect(routeLookups, 'both cached routes looked up again').to.have.length(2);
    expect(context.logs.map((l) => [l.level, l.meta?.destinationId])).to.deep.include([
      'warn',
      revoked.destinationId,
    ]);

    // The good destination was refreshed all the same: its new key is used without a fetch.
    const afterRefresh = world.emulator.state.requests.length;
    const ok = await instance.deliver!(
      makeDelivery({ service: SERVICE_KEY, ars: '055150000000', body }),
      signal,
    );
    expect(kidOf(ok.remoteReference)).to.equal(world.keys.destinationSigning.kid);
    expect(destinationFetches(good, afterRefresh)).to.deep.equal([]);

    // The revoked one is no longer cached: the delivery fetches the key again and refuses it.
    const submissions = world.emulator.state.submissions.size;
    const refused = await failure(
      instance.deliver!(makeDelivery({ service: OTHER_SERVICE, ars: '055150000000', body }), signal),
    );
    expect(refused.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(refused.message).to.equal(err.message);
    expect(destinationFetches(revoked, afterRefresh)).to.have.length(2);
    expect(world.emulator.state.submissions.size, 'nothing announced').to.equal(submissions);
  });

  it('drops a cached key replaced by one too short, fails the run, and the next delivery refuses it', async () => {
    const d = world.emulator.state.addDestination({
      encryptionKey: encryptionJwk(world.keys.destinationEncryption),
      services: [SERVICE_KEY],
    });
    const instance = createFitConnectInstance(
      fakeContext(),
      world.sendingConfig({ sending: { destinationId: d.destinationId } }),
    );
    await instance.deliver!(makeDelivery({ service: SERVICE_KEY, body }), signal);
    rotate(d, encryptionJwk(world.keys.short));
    const err = await failure(instance.refresh!(signal));
    expect(err.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(err.message).to.contain('2048 bits');
    const submissions = world.emulator.state.submissions.size;
    const refused = await failure(instance.deliver!(makeDelivery({ service: SERVICE_KEY, body }), signal));
    expect(refused.message).to.contain('2048 bits');
    expect(world.emulator.state.submissions.size).to.equal(submissions);
  });
});
