import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { CompactSign, importJWK } from 'jose';
import { fakeContext, makeDelivery, type FakeContext } from '../../test/peers/fit-connect/fake-context.js';
import {
  fitConnectFixture,
  SERVICE_KEY,
  type FitConnectFixture,
} from '../../test/peers/fit-connect/fixture.js';
import { createFitConnectInstance, type FitConnectInstance } from './manifest.js';
import { parseRemoteReference } from './send.js';

const signal = new AbortController().signal;
const EVENTS = 'https://schema.fitko.de/fit-connect/events/';
const body = JSON.stringify({ antrag: 'Wohnsitz' });

describe('FIT-Connect status from the event log', function () {
  let world: FitConnectFixture;

  before(async function () {
    this.timeout(180_000);
    world = await fitConnectFixture();
  });
  after(async () => world.close());

  /** Sends one delivery and registers it as awaiting a final status, as the store would. */
  async function sendAndAwait(sender: FitConnectInstance, context: FakeContext) {
    const delivery = makeDelivery({ service: SERVICE_KEY, body });
    const result = await sender.deliver!(delivery, signal);
    context.awaiting.push({
      messageId: delivery.messageId,
      deliveryId: delivery.deliveryId,
      remoteReference: result.remoteReference,
      remoteStatus: undefined,
    });
    return { messageId: delivery.messageId, ...parseRemoteReference(result.remoteReference)! };
  }

  it('reports forwarded from the Zustelldienst and accepted from the destination, each once', async () => {
    const context = fakeContext();
    const sender = createFitConnectInstance(context, world.sendingConfig());
    const sent = await sendAndAwait(sender, context);

    expect((await sender.poll!(signal)).items, 'nothing happened yet').to.equal(0);

    await world.emulator.emitServiceEvent(sent.submissionId, `${EVENTS}forward-submission`);
    expect((await sender.poll!(signal)).items).to.equal(1);
    expect(context.statuses.map((s) => s.status)).to.deep.equal(['forwarded']);

    // The city's own receiver picks it up and accepts it with its destination signing key.
    await createFitConnectInstance(fakeContext(), world.receivingConfig()).poll!(signal);
    expect(world.emulator.state.submissions.get(sent.submissionId)!.status).to.equal('accepted');

    expect((await sender.poll!(signal)).items).to.equal(1);
    expect(context.statuses.map((s) => s.status)).to.deep.equal(['forwarded', 'accepted']);
    const accepted = context.statuses[1]!;
    expect(accepted.messageId).to.equal(sent.messageId);
    expect(accepted.detail).to.include({
      event: `${EVENTS}accept-submission`,
      issuer: world.destination.destinationId,
    });

    // Final: the message no longer awaits a status, nothing is reported twice.
    expect((await sender.poll!(signal)).items).to.equal(0);
    expect(context.statuses).to.have.length(2);
  });

  it('reports rejected with the problems the receiver named', async () => {
    const context = fakeContext();
    const sender = createFitConnectInstance(context, world.sendingConfig());
    const sent = await sendAndAwait(sender, context);
    world.emulator.state.tamper(sent.submissionId, 'metadata');
    await createFitConnectInstance(fakeContext(), world.receivingConfig()).poll!(signal);

    await sender.poll!(signal);
    expect(context.statuses.map((s) => s.status)).to.deep.equal(['rejected']);
    const problems = context.statuses[0]!.detail!.problems as { type: string; instance: string }[];
    expect(problems[0]).to.include({
      type: 'https://schema.fitko.de/fit-connect/events/problems/encryption-issue',
      instance: 'metadata',
    });
  });

  it('ignores forged, unsigned and mistyped SETs and never reports them', async () => {
    const context = fakeContext();
    const sender = createFitConnectInstance(context, world.sendingConfig());
    const sent = await sendAndAwait(sender, context);
    const claims = (event: string, iss: string) => ({
      jti: randomUUID(),
      iss,
      iat: Math.floor(Date.now() / 1000),
      sub: `submission:${sent.submissionId}`,
      txn: `case:${sent.caseId}`,
      events: { [`${EVENTS}${event}`]: {} },
    });
    const sign = async (payload: object, header: Record<string, unknown>, jwk: object) =>
      new CompactSign(Buffer.from(JSON.stringify(payload)))
        .setProtectedHeader({ alg: 'PS512', ...header })
        .sign(await importJWK({ ...jwk, alg: 'PS512' }, 'PS512'));

    const forgedKey = world.keys.short.privateJwk;
    // Claims to come from the Zustelldienst's key, signed by another one.
    world.emulator.state.appendEvent(
      sent.caseId,
      await sign(
        claims('accept-submission', world.emulator.url),
        { typ: 'secevent+jwt', kid: world.keys.service.kid },
        forgedKey,
      ),
    );
    // Claims to come from the destination's signing key, signed by another one.
    world.emulator.state.appendEvent(
      sent.caseId,
      await sign(
        claims('accept-submission', world.destination.destinationId),
        { typ: 'secevent+jwt', kid: world.keys.destinationSigning.kid },
        forgedKey,
      ),
    );
    // Correctly signed by the Zustelldienst's key, but not a SET.
    world.emulator.state.appendEvent(
      sent.caseId,
      await sign(
        claims('forward-submission', world.emulator.url),
        { typ: 'JWT', kid: world.keys.service.kid },
        world.keys.service.privateJwk,
      ),
    );
    // Unsigned.
    const unsigned = [
      Buffer.from(JSON.stringify({ alg: 'none', typ: 'secevent+jwt' })).toString('base64url'),
      Buffer.from(JSON.stringify(claims('accept-submission', world.emulator.url))).toString('base64url'),
      '',
    ].join('.');
    world.emulator.state.appendEvent(sent.caseId, unsigned);

    expect((await sender.poll!(signal)).items).to.equal(0);
    expect(context.statuses).to.deep.equal([]);
    const warnings = context.logs.filter((l) => l.level === 'warn' && /does not verify/.test(l.message));
    expect(warnings).to.have.length(4);

    // A genuine event after the forgeries still counts.
    await world.emulator.emitServiceEvent(sent.submissionId, `${EVENTS}forward-submission`);
    await sender.poll!(signal);
    expect(context.statuses.map((s) => s.status)).to.deep.equal(['forwarded']);
  });

  it('ignores events of another submission in the same event log', async () => {
    const context = fakeContext();
    const sender = createFitConnectInstance(context, world.sendingConfig());
    const sent = await sendAndAwait(sender, context);
    const other = await sendAndAwait(sender, fakeContext());
    // Move the other submission's accept event into this case's log.
    await world.emulator.emitServiceEvent(other.submissionId, `${EVENTS}forward-submission`);
    const log = world.emulator.state.caseEvents.get(other.caseId)!;
    world.emulator.state.appendEvent(sent.caseId, log[log.length - 1]!);
    await sender.poll!(signal);
    expect(context.statuses).to.deep.equal([]);
  });
});
