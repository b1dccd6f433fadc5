import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { decodeJwt } from 'jose';
import { craftSubmission } from '../../test/peers/fit-connect/craft.js';
import { fakeContext, makeDelivery } from '../../test/peers/fit-connect/fake-context.js';
import {
  CITY_ARS,
  fitConnectFixture,
  SCHEMA_URI,
  SERVICE_KEY,
  type FitConnectFixture,
} from '../../test/peers/fit-connect/fixture.js';
import { createFitConnectInstance } from './manifest.js';
import { parseRemoteReference } from './send.js';

const signal = new AbortController().signal;
const ACCEPT = 'https://schema.fitko.de/fit-connect/events/accept-submission';
const REJECT = 'https://schema.fitko.de/fit-connect/events/reject-submission';
const application = { antragsteller: { familienname: 'Mustermann', vorname: 'Erika' }, zuzug: '2026-01-15' };

interface Problem {
  type: string;
  instance: string;
  detail: string;
}

describe('FIT-Connect receiving', function () {
  let world: FitConnectFixture;
  let schemaDir: string;

  before(async function () {
    this.timeout(180_000);
    world = await fitConnectFixture();
    schemaDir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-fit-schema-'));
  });
  after(async () => {
    await world.close();
    rmSync(schemaDir, { recursive: true, force: true });
  });

  /** The receiver's last event for a submission, decoded (the emulator has verified its signature). */
  function lastEvent(submissionId: string): { event: string; payload: Record<string, unknown> } {
    const s = world.emulator.state.submissions.get(submissionId)!;
    const log = world.emulator.state.caseEvents.get(s.caseId) ?? [];
    const claims = decodeJwt(log[log.length - 1]!);
    const [event, payload] = Object.entries(claims.events as Record<string, Record<string, unknown>>)[0]!;
    return { event, payload };
  }

  function problemsOf(submissionId: string): Problem[] {
    const { event, payload } = lastEvent(submissionId);
    expect(event).to.equal(REJECT);
    return payload.problems as Problem[];
  }

  it('decrypts and checks a submission, hands it to the pipeline, then accepts it with the authentication tags', async () => {
    const sender = createFitConnectInstance(fakeContext(), world.sendingConfig());
    const pdf = Buffer.from('%PDF-1.7 Meldebescheinigung');
    const sent = await sender.deliver!(
      makeDelivery({
        service: SERVICE_KEY,
        body: JSON.stringify(application),
        attachments: [
          { filename: 'nachweis.pdf', mediaType: 'application/pdf', content: pdf, purpose: 'Mietvertrag' },
        ],
      }),
      signal,
    );
    const { submissionId } = parseRemoteReference(sent.remoteReference)!;

    const context = fakeContext();
    const receiver = createFitConnectInstance(context, world.receivingConfig());
    const first = await receiver.poll!(signal);
    expect(first.items).to.equal(1);
    expect(context.received).to.have.length(1);
    const [received] = context.received;
    expect(received).to.include({
      ars: CITY_ARS,
      service: SERVICE_KEY,
      reference: submissionId,
      channel: 'fit-connect',
    });
    expect(received!.data).to.deep.equal(application);
    expect(received).to.not.have.property('document');
    expect(received!.attachments).to.have.length(1);
    expect(received!.attachments![0]!.content.equals(pdf)).to.equal(true);
    expect(received!.attachments![0]).to.include({
      filename: 'nachweis.pdf',
      mediaType: 'application/pdf',
      purpose: 'Mietvertrag',
    });

    // The emulator accepted the event only because signature, claims and authentication tags matched.
    expect(world.emulator.state.submissions.get(submissionId)!.status).to.equal('accepted');
    expect(lastEvent(submissionId).event).to.equal(ACCEPT);
    expect(world.emulator.state.refusedEvents).to.deep.equal([]);

    const second = await receiver.poll!(signal);
    expect(second.items).to.equal(0);
    expect(context.received).to.have.length(1);
  });

  it('rejects a submission whose Fachdaten hash does not match the metadata', async () => {
    const { submissionId } = await craftSubmission(world, {
      data: Buffer.from(JSON.stringify(application)),
      mutateMetadata: (m) => {
        m.contentStructure.data.hash.content = 'ab'.repeat(64);
      },
    });
    const context = fakeContext();
    await createFitConnectInstance(context, world.receivingConfig()).poll!(signal);
    expect(context.received).to.deep.equal([]);
    expect(world.emulator.state.submissions.get(submissionId)!.status).to.equal('rejected');
    const [p] = problemsOf(submissionId);
    expect(p).to.include({
      type: 'https://schema.fitko.de/fit-connect/events/problems/hash-mismatch',
      instance: 'data',
    });
  });

  it('rejects a submission whose attachment hash does not match', async () => {
    const { submissionId } = await craftSubmission(world, {
      data: Buffer.from(JSON.stringify(application)),
      attachments: [{ content: Buffer.from('original'), mimeType: 'text/plain', filename: 'a.txt' }],
      mutateMetadata: (m) => {
        m.contentStructure.attachments[0].hash.content = 'cd'.repeat(64);
      },
    });
    const context = fakeContext();
    await createFitConnectInstance(context, world.receivingConfig()).poll!(signal);
    expect(context.received).to.deep.equal([]);
    const attachmentId = world.emulator.state.submissions.get(submissionId)!.announcedAttachments[0];
    expect(problemsOf(submissionId)[0]).to.include({ instance: `attachment:${attachmentId}` });
    expect(problemsOf(submissionId)[0]!.type).to.match(/hash-mismatch$/);
  });

  it('rejects a submission whose JWE was altered on the way', async () => {
    const { submissionId } = await craftSubmission(world, { data: Buffer.from(JSON.stringify(application)) });
    world.emulator.state.tamper(submissionId, 'data');
    const context = fakeContext();
    await createFitConnectInstance(context, world.receivingConfig()).poll!(signal);
    expect(context.received).to.deep.equal([]);
    expect(problemsOf(submissionId)[0]).to.include({
      type: 'https://schema.fitko.de/fit-connect/events/problems/encryption-issue',
      instance: 'data',
    });
  });

  it('rejects an attachment over the configured maximum', async () => {
    const { submissionId } = await craftSubmission(world, {
      data: Buffer.from(JSON.stringify(application)),
      attachments: [
        { content: Buffer.alloc(200 * 1024, 1), mimeType: 'application/pdf', filename: 'gross.pdf' },
      ],
    });
    const context = fakeContext();
    await createFitConnectInstance(context, world.receivingConfig({ maxAttachmentSize: '64kb' })).poll!(
      signal,
    );
    expect(context.received).to.deep.equal([]);
    const [p] = problemsOf(submissionId);
    expect(p!.type).to.match(/attachment-too-large$/);
  });

  it('rejects metadata that lacks required fields, and attachment lists that do not match', async () => {
    const broken = await craftSubmission(world, {
      data: Buffer.from('{}'),
      mutateMetadata: (m) => {
        delete m.contentStructure.data.submissionSchema;
      },
    });
    const mismatched = await craftSubmission(world, {
      data: Buffer.from('{}'),
      attachments: [{ content: Buffer.from('x'), mimeType: 'text/plain', filename: 'x.txt' }],
      mutateMetadata: (m) => {
        m.contentStructure.attachments = [];
      },
    });
    const context = fakeContext();
    await createFitConnectInstance(context, world.receivingConfig()).poll!(signal);
    expect(context.received).to.deep.equal([]);
    const [schemaProblem] = problemsOf(broken.submissionId);
    expect(schemaProblem).to.include({ instance: 'metadata' });
    expect(schemaProblem!.detail).to.contain('submissionSchema');
    expect(problemsOf(mismatched.submissionId)[0]!.type).to.match(/attachments-mismatch$/);
  });

  it('validates JSON Fachdaten against the schema configured for their schemaUri', async () => {
    const schemaFile = path.join(schemaDir, 'anmeldung.schema.json');
    writeFileSync(
      schemaFile,
      JSON.stringify({
        $schema: 'http://json-schema.org/draft-07/schema#',
        type: 'object',
        required: ['antragsteller', 'zuzug'],
        properties: { zuzug: { type: 'string', format: 'date' } },
      }),
    );
    const valid = await craftSubmission(world, { data: Buffer.from(JSON.stringify(application)) });
    const invalid = await craftSubmission(world, { data: Buffer.from(JSON.stringify({ zuzug: 'gestern' })) });
    const context = fakeContext();
    await createFitConnectInstance(
      context,
      world.receivingConfig({ dataSchemas: { [SCHEMA_URI]: schemaFile } }),
    ).poll!(signal);
    expect(context.received.map((r) => r.reference)).to.deep.equal([valid.submissionId]);
    const problems = problemsOf(invalid.submissionId);
    expect(problems.every((p) => p.type.endsWith('schema-violation') && p.instance === 'data')).to.equal(
      true,
    );
    expect(problems.map((p) => p.detail).join(' ')).to.contain('antragsteller');
  });

  it('rejects JSON Fachdaten the gateway could only alter or pass on broken, naming each place', async () => {
    const controlled = await craftSubmission(world, {
      data: Buffer.from(JSON.stringify({ ...application, bemerkung: 'Glocke\u0007' })),
    });
    const rounded = await craftSubmission(world, {
      data: Buffer.from(JSON.stringify(application).replace(/}$/, ',"kassenzeichen":12345678901234567891}')),
    });
    const deep = await craftSubmission(world, { data: Buffer.from('['.repeat(100) + ']'.repeat(100)) });
    const context = fakeContext();
    await createFitConnectInstance(context, world.receivingConfig()).poll!(signal);
    expect(context.received).to.deep.equal([]);
    const [control] = problemsOf(controlled.submissionId);
    expect(control).to.include({ instance: 'data' });
    expect(control!.type).to.match(/schema-violation$/);
    expect(control!.detail).to.equal(
      '/bemerkung: holds U+0007, a character XML and most Fachverfahren cannot carry',
    );
    expect(problemsOf(rounded.submissionId)[0]!.detail).to.match(/^\/kassenzeichen: is an integer beyond/);
    const [nesting] = problemsOf(deep.submissionId);
    expect(nesting!.type).to.match(/syntax-violation$/);
    expect(nesting!.detail).to.equal('the Fachdaten text nests deeper than 64 levels');
  });

  it('leaves a submission unanswered while the pipeline cannot take it, and accepts it on a later poll', async () => {
    const { submissionId } = await craftSubmission(world, { data: Buffer.from(JSON.stringify(application)) });
    const context = fakeContext();
    const receiver = createFitConnectInstance(context, world.receivingConfig());
    context.failReceive = new Error('store unavailable');
    await receiver.poll!(signal);
    expect(world.emulator.state.submissions.get(submissionId)!.status).to.equal('submitted');
    expect(context.logs.some((l) => l.level === 'warn' && l.meta?.submissionId === submissionId)).to.equal(
      true,
    );

    context.failReceive = undefined;
    await receiver.poll!(signal);
    expect(world.emulator.state.submissions.get(submissionId)!.status).to.equal('accepted');
    expect(context.received.map((r) => r.reference)).to.deep.equal([submissionId]);
  });

  it('reports a Zustelldienst that cannot list submissions to the scheduler and catches up on the next poll', async () => {
    const { submissionId } = await craftSubmission(world, { data: Buffer.from(JSON.stringify(application)) });
    const context = fakeContext();
    const receiver = createFitConnectInstance(context, world.receivingConfig());
    world.emulator.state.failNext(1, 503, { retryAfter: '30', pathPrefix: '/v1/submissions' });
    let failure: unknown;
    try {
      await receiver.poll!(signal);
    } catch (err) {
      failure = err;
    }
    expect((failure as { code?: string } | undefined)?.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(context.received).to.deep.equal([]);
    await receiver.poll!(signal);
    expect(context.received.map((r) => r.reference)).to.include(submissionId);
  });

  it('passes XML Fachdaten on as the document, as text with their media type', async () => {
    const xml = '<?xml version="1.0"?><antrag xmlns="urn:example"><name>Müller</name></antrag>';
    const { submissionId } = await craftSubmission(world, {
      data: Buffer.from(xml),
      dataMimeType: 'application/xml',
    });
    const context = fakeContext();
    await createFitConnectInstance(context, world.receivingConfig()).poll!(signal);
    const received = context.received.find((r) => r.reference === submissionId);
    expect(received?.document).to.deep.equal({ mediaType: 'application/xml', content: xml });
    expect(received?.data).to.equal(undefined);
  });
});
