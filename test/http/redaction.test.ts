/**
 * The log must never carry applicant data, request bodies or API keys — neither on the happy
 * path, nor on rejected input, nor when something breaks inside.
 */
import { expect } from 'chai';
import { AmtError } from '../../src/errors.js';
import type { Store } from '../../src/store/types.js';
import { application, KEYS, messageCount, startHarness, type Harness } from './harness.js';

const SECRETS = {
  givenName: 'Zebulon',
  familyName: 'Quxleyhausen',
  email: 'zebulon.q@example.test',
  birthDate: '1971-02-03',
  iban: 'DE89370400440532013000',
  street: 'Hinterm Zaunkönigweg 77',
  note: 'Kennwort des Hausmeisters: Salbei-42',
};

const sensitiveApplication = (): Record<string, unknown> =>
  application({
    applicant: {
      givenName: SECRETS.givenName,
      familyName: SECRETS.familyName,
      email: SECRETS.email,
      birthDate: SECRETS.birthDate,
      address: { street: SECRETS.street },
    },
    data: { bank: { iban: SECRETS.iban }, remarks: SECRETS.note },
  });

function expectClean(log: string): void {
  for (const value of [
    ...Object.values(SECRETS),
    KEYS.muenster,
    KEYS.bielefeld,
    KEYS.admin,
    'guessed-secret-key-991',
  ]) {
    expect(log, `log contains ${value}`).to.not.include(value);
  }
}

/** The same store, except that `accept` fails the way `fail` says. */
function failingAccept(fail: () => never): (store: Store) => Store {
  return (store) =>
    new Proxy(store, {
      get(target, property) {
        if (property === 'accept') return async () => fail();
        const value: unknown = Reflect.get(target, property);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
}

describe('http: nothing sensitive in the log', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('accepted, rejected and unauthenticated requests log without personal data or keys', async () => {
    h = await startHarness();
    const accepted = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: sensitiveApplication(),
    });
    expect(accepted.status).to.equal(202);
    await h.request('GET', `/api/v1/applications/${accepted.body.id}`, { key: KEYS.muenster });
    await h.request('GET', `/api/v1/admin/messages/${accepted.body.id}?payload=true`, { key: KEYS.admin });
    const invalid = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: { ...sensitiveApplication(), [SECRETS.familyName]: SECRETS.iban },
    });
    expect(invalid.status).to.equal(422);
    const malformed = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      body: `{"applicant": {"familyName": "${SECRETS.familyName}", "iban": "${SECRETS.iban}"`,
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.status).to.equal(400);
    // The parser's own message quotes the input; the answer must not.
    expect(malformed.text).to.not.include(SECRETS.familyName);
    const unknownKey = await h.request('POST', '/api/v1/applications', {
      key: 'guessed-secret-key-991',
      json: sensitiveApplication(),
    });
    expect(unknownKey.status).to.equal(401);

    const log = h.log();
    const lines = log
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { message: string; route?: string; status?: number });
    // The requests were logged (so the check below is not vacuous) …
    expect(lines.filter((l) => l.message === 'http request').map((l) => l.status)).to.include.members([
      202, 200, 422, 400, 401,
    ]);
    expect(lines.some((l) => l.route === '/api/v1/applications')).to.equal(true);
    // … and none of what they carried.
    expectClean(log);
  });

  it('an internal error answers 500 with an incident id only, logs the incident without data, stores nothing', async () => {
    h = await startHarness({
      wrapStore: failingAccept(() => {
        throw new Error('database disk image is malformed');
      }),
    });
    const res = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: sensitiveApplication(),
    });
    expect(res.status).to.equal(500);
    expect(res.body.code).to.equal('AMT_INTERNAL');
    expect(res.text).to.not.include('database disk image');
    expect(res.text).to.not.include('.ts:');
    expect(res.text).to.not.include(SECRETS.familyName);
    const incident = /incident ([0-9a-f-]{36})/.exec(res.body.detail)?.[1];
    expect(incident).to.be.a('string');

    const log = h.log();
    const entry = log
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((l) => l.message === 'request failed');
    expect(entry).to.include({ incident, level: 'error', code: 'AMT_INTERNAL' });
    expect(JSON.stringify(entry)).to.include('database disk image is malformed');
    expectClean(log);
    expect(await messageCount(h.store)).to.equal(0);
    expect(h.state.accepted).to.equal(0);
    expect(await h.metrics.registry.getSingleMetricAsString('amtsbote_intake_total')).to.include(
      'amtsbote_intake_total{tenant="muenster",outcome="failed"} 1',
    );
  });

  it('an unavailable store is 503 with Retry-After, and the client may retry', async () => {
    h = await startHarness({
      wrapStore: failingAccept(() => {
        throw new AmtError('AMT_STORE_UNAVAILABLE', 'the database is locked');
      }),
    });
    const res = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: sensitiveApplication(),
    });
    expect(res.status).to.equal(503);
    expect(res.body.code).to.equal('AMT_STORE_UNAVAILABLE');
    expect(res.headers.get('retry-after')).to.match(/^\d+$/);
    expectClean(h.log());
  });
});
