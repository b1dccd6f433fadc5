import { expect } from 'chai';
import { isAmtError, type AmtError } from '../../src/errors.js';
import { fakeContext, makeDelivery } from '../../test/peers/fit-connect/fake-context.js';
import {
  fitConnectFixture,
  SERVICE_KEY,
  type FitConnectFixture,
} from '../../test/peers/fit-connect/fixture.js';
import { encryptionJwk } from '../../test/peers/fit-connect/keys.js';
import { createFitConnectInstance } from './manifest.js';
import { parseRemoteReference } from './send.js';

const signal = new AbortController().signal;
const body = JSON.stringify({ antrag: 'Gewerbeanmeldung' });
const OTHER_SERVICE = '99050012104000';

async function deliveryError(promise: Promise<unknown>): Promise<AmtError> {
  try {
    await promise;
  } catch (err) {
    if (isAmtError(err)) return err;
    throw err;
  }
  throw new Error('the delivery succeeded, an error was expected');
}

describe('FIT-Connect routing by ARS and Leistungsschlüssel', function () {
  let world: FitConnectFixture;

  before(async function () {
    this.timeout(180_000);
    world = await fitConnectFixture();
  });
  after(async () => world.close());

  const routedConfig = (withSignatureCheck = true) => {
    const base = world.sendingConfig({ routingApiUrl: world.emulator.routingUrl, sending: {} });
    return withSignatureCheck ? { ...base, routingJwksUrl: world.emulator.routingJwksUrl } : base;
  };

  it('finds the destination of the tenant ARS and service, checks its signature and caches the route', async () => {
    // Two destinations: the Kreis serves the service for all its municipalities, a neighbour another one.
    const kreis = world.emulator.state.addDestination({
      encryptionKey: encryptionJwk(world.keys.destinationEncryption),
      services: [SERVICE_KEY],
    });
    const neighbour = world.emulator.state.addDestination({
      encryptionKey: encryptionJwk(world.keys.destinationEncryption),
      services: [SERVICE_KEY],
    });
    await world.emulator.addRoute({
      ars: '05515',
      leikaKey: SERVICE_KEY,
      destinationId: kreis.destinationId,
    });
    await world.emulator.addRoute({
      ars: '05711',
      leikaKey: SERVICE_KEY,
      destinationId: neighbour.destinationId,
    });

    const instance = createFitConnectInstance(fakeContext(), routedConfig());
    const first = await instance.deliver!(
      makeDelivery({ service: SERVICE_KEY, ars: '055150000000', body }),
      signal,
    );
    const second = await instance.deliver!(
      makeDelivery({ service: SERVICE_KEY, ars: '055150000000', body }),
      signal,
    );
    const elsewhere = await instance.deliver!(
      makeDelivery({ service: SERVICE_KEY, ars: '057110000000', body }),
      signal,
    );

    const destinationOf = (ref: string | undefined) =>
      world.emulator.state.submissions.get(parseRemoteReference(ref)!.submissionId)!.destinationId;
    expect(destinationOf(first.remoteReference)).to.equal(kreis.destinationId);
    expect(destinationOf(second.remoteReference)).to.equal(kreis.destinationId);
    expect(destinationOf(elsewhere.remoteReference)).to.equal(neighbour.destinationId);
    const lookups = world.emulator.state.requests.filter((r) => r.path === '/routing/v1/routes');
    expect(lookups).to.have.length(2);
  });

  it('refuses a route whose destinationSignature was made with another key', async () => {
    const d = world.emulator.state.addDestination({
      encryptionKey: encryptionJwk(world.keys.destinationEncryption),
      services: [OTHER_SERVICE],
    });
    await world.emulator.addRoute({
      ars: '05515',
      leikaKey: OTHER_SERVICE,
      destinationId: d.destinationId,
      signWith: world.keys.short,
    });
    const before = world.emulator.state.submissions.size;
    const err = await deliveryError(
      createFitConnectInstance(fakeContext(), routedConfig()).deliver!(
        makeDelivery({ service: OTHER_SERVICE, ars: '055150000000', body }),
        signal,
      ),
    );
    expect(err.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(err.message).to.contain('does not verify');
    expect(world.emulator.state.submissions.size).to.equal(before);

    // Without a routing JWKS the signature is not checked.
    const unchecked = await createFitConnectInstance(fakeContext(), routedConfig(false)).deliver!(
      makeDelivery({ service: OTHER_SERVICE, ars: '055150000000', body }),
      signal,
    );
    expect(parseRemoteReference(unchecked.remoteReference)).to.not.equal(undefined);
  });

  it('refuses a signed route that points to another Zustelldienst', async () => {
    const service = '99050012104001';
    const d = world.emulator.state.addDestination({
      encryptionKey: encryptionJwk(world.keys.destinationEncryption),
      services: [service],
    });
    await world.emulator.addRoute({
      ars: '05515',
      leikaKey: service,
      destinationId: d.destinationId,
      submissionHost: 'submission-api.other-land.example',
    });
    const err = await deliveryError(
      createFitConnectInstance(fakeContext(), routedConfig()).deliver!(
        makeDelivery({ service, ars: '055150000000', body }),
        signal,
      ),
    );
    expect(err.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(err.message).to.contain('submission-api.other-land.example');
  });

  it('rejects permanently when no destination serves the ARS and service', async () => {
    const err = await deliveryError(
      createFitConnectInstance(fakeContext(), routedConfig()).deliver!(
        makeDelivery({ service: '99999999999999', ars: '055150000000', body }),
        signal,
      ),
    );
    expect(err.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(err.message).to.contain('no destination for ARS 055150000000');
  });
});
