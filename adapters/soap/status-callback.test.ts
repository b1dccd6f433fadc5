import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { AdapterInstance, CallbackResponse } from '../../src/adapter-contract.js';
import { AmtError } from '../../src/errors.js';
import { createFakeContext, type FakeContext } from '../../test/peers/soap/fake-context.js';
import { GEWERBE_WSDL } from '../../test/peers/soap/gewerbe-peer.js';
import { soapAdapter } from './manifest.js';
import { PASSWORD_DIGEST, PASSWORD_TEXT, WSSE, WSU } from './username-token.js';

const STATUS_WSDL = fileURLToPath(new URL('./fixtures/gewerbe-status.wsdl', import.meta.url));
const ST = 'http://fachverfahren.example/gewerbe/status/1.0';
const SOAP11 = 'http://schemas.xmlsoap.org/soap/envelope/';
const SOAP12 = 'http://www.w3.org/2003/05/soap-envelope';
const USER = 'gewerbe-fachverfahren';
const PASSWORD = 'st4tus-Rückruf-9XqL2v';

interface TokenOptions {
  readonly type?: 'text' | 'digest';
  readonly password?: string;
  readonly created?: Date;
  readonly nonce?: string | null;
  readonly expires?: Date;
}

function usernameToken(options: TokenOptions = {}): string {
  const created = (options.created ?? new Date()).toISOString();
  const nonce = options.nonce === undefined ? randomBytes(16).toString('base64') : options.nonce;
  const password = options.password ?? PASSWORD;
  const value =
    options.type === 'text'
      ? password
      : createHash('sha1')
          .update(Buffer.concat([Buffer.from(nonce ?? '', 'base64'), Buffer.from(created + password)]))
          .digest('base64');
  const timestamp = options.expires
    ? `<wsu:Timestamp><wsu:Created>${created}</wsu:Created><wsu:Expires>${options.expires.toISOString()}</wsu:Expires></wsu:Timestamp>`
    : '';
  return (
    `<wsse:Security xmlns:wsse="${WSSE}" xmlns:wsu="${WSU}">${timestamp}<wsse:UsernameToken>` +
    `<wsse:Username>${USER}</wsse:Username>` +
    `<wsse:Password Type="${options.type === 'text' ? PASSWORD_TEXT : PASSWORD_DIGEST}">${value}</wsse:Password>` +
    (nonce === null ? '' : `<wsse:Nonce>${nonce}</wsse:Nonce>`) +
    `<wsu:Created>${created}</wsu:Created></wsse:UsernameToken></wsse:Security>`
  );
}

function envelope(body: string, options: { version?: '1.1' | '1.2'; header?: string } = {}): string {
  const ns = options.version === '1.2' ? SOAP12 : SOAP11;
  return (
    `<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="${ns}">` +
    `<e:Header>${options.header ?? usernameToken()}</e:Header><e:Body>${body}</e:Body></e:Envelope>`
  );
}

const statusMelden = (fields: string): string => `<x:statusMelden xmlns:x="${ST}">${fields}</x:statusMelden>`;
const byReference = (status = 'IN_BEARBEITUNG', extra = ''): string =>
  statusMelden(`<x:vorgangsnummer>GEW-2026-00042</x:vorgangsnummer><x:status>${status}</x:status>${extra}`);

describe('soap adapter: status callback', () => {
  let context: FakeContext & { lookups: unknown[]; found: string | undefined | Error };
  let instance: AdapterInstance;

  const call = (xml: string, contentType = 'text/xml; charset=utf-8'): Promise<CallbackResponse> =>
    instance.handleCallback!({ headers: { 'content-type': contentType }, rawBody: Buffer.from(xml) });

  beforeEach(() => {
    const base = createFakeContext('gewerbe');
    context = Object.assign(base, {
      lookups: [] as unknown[],
      found: 'msg-42' as string | undefined | Error,
      findMessage: async (by: unknown) => {
        context.lookups.push(by);
        if (context.found instanceof Error) throw context.found;
        return context.found === undefined ? undefined : { messageId: context.found };
      },
    });
    instance = soapAdapter.create(context, {
      wsdl: GEWERBE_WSDL,
      operation: 'importGewerbeanmeldung',
      endpoint: 'http://127.0.0.1:9/gewerbe',
      statusCallback: { wsdl: STATUS_WSDL, usernameToken: { username: USER, password: PASSWORD } },
    });
  });
  afterEach(async () => {
    await instance.close?.();
    context.cleanup();
  });

  it('has no callback without statusCallback', () => {
    const plain = soapAdapter.create(context, {
      wsdl: GEWERBE_WSDL,
      operation: 'importGewerbeanmeldung',
      endpoint: 'http://127.0.0.1:9/gewerbe',
    });
    expect(plain.handleCallback).to.equal(undefined);
  });

  it('reports the status and answers the WSDL response element with the application id', async () => {
    const answer = await call(
      envelope(
        byReference(
          'NACHFORDERUNG',
          '<x:text>Es fehlt die Gewerbeerlaubnis.</x:text><x:zeitpunkt>2026-03-02T09:15:00Z</x:zeitpunkt>',
        ),
      ),
    );
    expect(answer.status).to.equal(200);
    expect(answer.contentType).to.equal('text/xml; charset=utf-8');
    expect(answer.body).to.include(
      `<st:statusMeldenAntwort xmlns:st="${ST}"><st:quittung>msg-42</st:quittung>`,
    );
    expect(context.lookups).to.deep.equal([{ remoteReference: 'GEW-2026-00042' }]);
    expect(context.statuses).to.deep.equal([
      {
        messageId: 'msg-42',
        status: 'NACHFORDERUNG',
        detail: { text: 'Es fehlt die Gewerbeerlaubnis.', reportedAt: '2026-03-02T09:15:00Z' },
      },
    ]);
    const logged = JSON.stringify(context.logs);
    expect(logged).to.not.include('Gewerbeerlaubnis');
    expect(logged).to.not.include('GEW-2026-00042');
  });

  it('finds the application by the delivery id, also in its WS-Addressing form, and speaks SOAP 1.2', async () => {
    const id = '6f9b2c1e-8d7a-4b3c-9e2f-1a0b9c8d7e6f';
    const answer = await call(
      envelope(statusMelden(`<referenz>urn:uuid:${id.toUpperCase()}</referenz><status>ERLEDIGT</status>`), {
        version: '1.2',
        header: usernameToken({ type: 'text' }),
      }),
      'application/soap+xml; charset=utf-8; action="statusMelden"',
    );
    expect(answer.status).to.equal(200);
    expect(answer.contentType).to.equal('application/soap+xml; charset=utf-8');
    expect(answer.body).to.include(SOAP12);
    expect(context.lookups).to.deep.equal([{ deliveryId: id }]);
    expect(context.statuses.map((s) => s.status)).to.deep.equal(['ERLEDIGT']);
  });

  describe('refuses, and reports nothing', () => {
    const refusals: [string, () => string, RegExp][] = [
      [
        'a stale token',
        () =>
          envelope(byReference(), { header: usernameToken({ created: new Date(Date.now() - 6 * 60_000) }) }),
        /5 minutes/,
      ],
      [
        'a token from the future',
        () =>
          envelope(byReference(), { header: usernameToken({ created: new Date(Date.now() + 6 * 60_000) }) }),
        /5 minutes/,
      ],
      [
        'an expired timestamp',
        () => envelope(byReference(), { header: usernameToken({ expires: new Date(Date.now() - 1000) }) }),
        /expired/,
      ],
      [
        'PasswordText without a nonce',
        () => envelope(byReference(), { header: usernameToken({ type: 'text', nonce: null }) }),
        /Nonce/,
      ],
      [
        'a wrong digest',
        () => envelope(byReference(), { header: usernameToken({ password: 'another-password-123' }) }),
        /authentication failed/,
      ],
      ['no Security header', () => envelope(byReference(), { header: '' }), /no WS-Security header/],
      ['another operation', () => envelope(`<x:statusAbfragen xmlns:x="${ST}"/>`), /not statusMelden/],
      [
        'the element in another namespace',
        () => envelope('<statusMelden><status>X</status></statusMelden>'),
        /not statusMelden/,
      ],
      [
        'both references',
        () => envelope(byReference('ERLEDIGT', '<x:referenz>abc</x:referenz>')),
        /exactly one/,
      ],
      [
        'no status',
        () => envelope(statusMelden('<x:vorgangsnummer>GEW-1</x:vorgangsnummer>')),
        /status is required/,
      ],
      [
        'a text over 4,000 characters',
        () => envelope(byReference('ERLEDIGT', `<x:text>${'a'.repeat(4001)}</x:text>`)),
        /longer than 4000/,
      ],
      [
        'a DOCTYPE',
        () =>
          `<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>${envelope(byReference('&x;'))}`,
        /DOCTYPE/i,
      ],
      [
        'XML that is not well-formed',
        () => envelope(byReference()).replace('</e:Body>', ''),
        /not well-formed/,
      ],
      ['no SOAP envelope', () => `<statusMelden xmlns="${ST}"/>`, /not a SOAP/],
    ];
    for (const [what, xml, reason] of refusals) {
      it(what, async () => {
        const answer = await call(xml());
        expect(answer.status).to.equal(500);
        expect(answer.body).to.include('<faultcode>soap:Client</faultcode>');
        expect(String(answer.body)).to.match(reason);
        expect(context.statuses).to.deep.equal([]);
      });
    }

    it('a replayed nonce', async () => {
      const header = usernameToken();
      expect((await call(envelope(byReference(), { header }))).status).to.equal(200);
      const replay = await call(envelope(byReference('ERLEDIGT'), { header }));
      expect(replay.body).to.include('nonce was used before');
      expect(context.statuses.map((s) => s.status)).to.deep.equal(['IN_BEARBEITUNG']);
    });

    it('with SOAP 1.2 Sender faults (HTTP 400) that name the WS-Security fault', async () => {
      const answer = await call(
        envelope(byReference(), {
          version: '1.2',
          header: usernameToken({ password: 'another-password-123' }),
        }),
        'application/soap+xml',
      );
      expect(answer.status).to.equal(400);
      expect(answer.body).to.include('<soap:Value>soap:Sender</soap:Value>');
      expect(answer.body).to.include('wsse:FailedAuthentication</soap:Value>');
    });
  });

  it('answers an unknown or ambiguous application with a Client fault and the error code', async () => {
    context.found = undefined;
    const unknown = await call(envelope(byReference()));
    expect(unknown.body).to.include('<faultcode>soap:Client</faultcode>');
    expect(unknown.body).to.include('<amt:code>AMT_NOT_FOUND</amt:code>');
    context.found = new AmtError('AMT_STATUS_AMBIGUOUS', '2 applications have this remote reference');
    const ambiguous = await call(envelope(byReference()));
    expect(ambiguous.body).to.include('<faultcode>soap:Client</faultcode>');
    expect(ambiguous.body).to.include('<amt:code>AMT_STATUS_AMBIGUOUS</amt:code>');
    expect(context.statuses).to.deep.equal([]);
  });

  it('answers its own failures with a Server fault (Receiver, HTTP 500, in SOAP 1.2)', async () => {
    Object.assign(context, {
      reportStatus: async () => {
        throw new AmtError('AMT_STATUS_NOT_DELIVERED', 'application msg-42 is delivering, not delivered yet');
      },
    });
    const early = await call(envelope(byReference()));
    expect(early.status).to.equal(500);
    expect(early.body).to.include('<faultcode>soap:Server</faultcode>');
    expect(early.body).to.include('<amt:code>AMT_STATUS_NOT_DELIVERED</amt:code>');
    context.found = new Error('database is locked');
    const broken = await call(envelope(byReference(), { version: '1.2' }), 'application/soap+xml');
    expect(broken.status).to.equal(500);
    expect(broken.body).to.include('<soap:Value>soap:Receiver</soap:Value>');
    expect(broken.body).to.include('<amt:code>AMT_INTERNAL</amt:code>');
  });
});
