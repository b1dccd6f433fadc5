import { expect } from 'chai';
import { Writable } from 'node:stream';
import { adapterLogger, createLogger } from '../../src/observability/log.js';
import { redact, redactErrorMessage, redactString } from '../../src/observability/redact.js';

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

const PERSONAL = [
  'Erika',
  'Mustermann',
  '1964-08-12',
  'erika.mustermann@example.org',
  'Prinzipalmarkt 10',
  'MS-EM 123',
];
const SECRETS = [
  'demo-portal-key-7f3a',
  'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl',
  'hunter2-pw',
  'oauth-client-secret-99',
];

describe('redacting logger', () => {
  it('masks personal data and secrets at any depth, in metadata and messages', async () => {
    const out = capture();
    const logger = createLogger({ stream: out.stream, level: 'debug' });
    logger.info(`request with Authorization: Bearer ${SECRETS[0]}`, {
      headers: { Authorization: `Bearer ${SECRETS[0]}` },
      application: {
        applicant: { givenName: 'Erika', familyName: 'Mustermann', birthDate: '1964-08-12' },
        contact: { email: 'erika.mustermann@example.org', address: { street: 'Prinzipalmarkt 10' } },
        data: { vehicle: { licensePlate: 'MS-EM 123' } },
      },
      token: SECRETS[1],
      nested: [{ password: SECRETS[2] }, { clientSecret: SECRETS[3] }],
      url: `https://user:${SECRETS[2]}@fv.example.org/api?access_token=${SECRETS[3]}`,
      messageId: 'c0ffee00-0000-4000-8000-000000000001',
    });
    logger.error('delivery failed', { error: new Error(`401 for token ${SECRETS[1]}`) });
    logger.warn('upstream said', { detail: `Basic ${Buffer.from('user:' + SECRETS[2]).toString('base64')}` });
    await new Promise((resolve) => setImmediate(resolve));
    const text = out.text();
    for (const value of [...PERSONAL, ...SECRETS, Buffer.from('user:' + SECRETS[2]).toString('base64')]) {
      expect(text, value).not.to.include(value);
    }
    // What operators need stays readable.
    expect(text).to.include('c0ffee00-0000-4000-8000-000000000001');
    expect(text).to.include('delivery failed');
    expect(text).to.include('fv.example.org');
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).to.have.length(3);
    expect(lines[0]?.level).to.equal('info');
  });

  it('drops lines below the level before formatting them, and writes them at that level', async () => {
    const quiet = capture();
    let walked = 0;
    const meta = {
      application: {
        get applicant() {
          walked++; // only the redaction walk reads this deep; a dropped line must not be walked
          return { familyName: 'Mustermann' };
        },
      },
    };
    const info = createLogger({ stream: quiet.stream, level: 'info' });
    info.debug('not written', meta);
    adapterLogger(info, 'fv').debug('not written either', meta);
    info.info('written');
    await new Promise((resolve) => setImmediate(resolve));
    expect(walked).to.equal(0);
    expect(quiet.text().trim().split('\n')).to.have.length(1);

    const loud = capture();
    const debug = createLogger({ stream: loud.stream, level: 'debug' });
    adapterLogger(debug, 'fv').debug('written at debug', meta);
    await new Promise((resolve) => setImmediate(resolve));
    expect(walked).to.be.greaterThan(0);
    const line = JSON.parse(loud.text()) as Record<string, unknown>;
    expect(line).to.include({ level: 'debug', adapter: 'fv', message: 'written at debug' });
    expect(loud.text()).not.to.include('Mustermann');
  });

  it('redact() leaves unrelated values and the input untouched', () => {
    const input = { status: 'delivered', attempts: 2, applicant: { givenName: 'Erika' } };
    expect(redact(input)).to.deep.equal({ status: 'delivered', attempts: 2, applicant: '[redacted]' });
    expect(input.applicant.givenName).to.equal('Erika');
    expect(redactString('no secrets here')).to.equal('no secrets here');
  });

  it('masks what error messages quote, in errors and in {code, message} data, and nowhere else', () => {
    const xsd = new Error(
      "Element '{urn:xoev-de:xdomea:schema:3.0.0}Datum': '31.02.1971' is not a valid value of the atomic type 'xs:date'.",
    );
    expect(redact({ error: xsd })).to.deep.equal({
      error: {
        name: 'Error',
        message: "Element '[redacted]': '[redacted]' is not a valid value of the atomic type '[redacted]'.",
        code: undefined,
      },
    });
    const outcome = {
      code: 'AMT_DELIVERY_REJECTED',
      message: 'fv answered 409: Antrag "Zebulon Q." liegt schon vor',
    };
    expect(redact({ error: outcome })).to.deep.equal({
      error: {
        code: 'AMT_DELIVERY_REJECTED',
        message: 'fv answered 409: Antrag "[redacted]" liegt schon vor',
      },
    });
    expect(redactErrorMessage('say "a \\"quoted\\" word", then \'this\'')).to.equal(
      'say "[redacted]", then \'[redacted]\'',
    );
    // Not an error: left as it is.
    expect(redact({ note: 'the "quoted" part' })).to.deep.equal({ note: 'the "quoted" part' });
  });
});
