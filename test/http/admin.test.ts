import { expect } from 'chai';
import { application, BIELEFELD_ARS, KEYS, startHarness, type Harness } from './harness.js';

describe('http: admin API', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  async function submit(key: string, overrides: Record<string, unknown> = {}): Promise<string> {
    const res = await h.request('POST', '/api/v1/applications', { key, json: application(overrides) });
    expect(res.status).to.equal(202);
    return res.body.id as string;
  }

  /**
   * Arranges, through the store contract, an application whose first delivery failed: accept
   * (via HTTP) → claim → a dead outcome, or a retry an hour away.
   */
  async function failedOnce(kind: 'dead' | 'retry', overrides: Record<string, unknown>): Promise<string> {
    const id = await submit(overrides.tenant === BIELEFELD_ARS ? KEYS.bielefeld : KEYS.muenster, overrides);
    const now = Date.now();
    const claimed = await h.store.claimDue('worker-1', 100, 60_000, now);
    expect(claimed.map((m) => m.id)).to.include(id);
    const common = {
      leaseOwner: 'worker-1',
      attempt: { startedAt: now, endedAt: now + 3, target: 'dms' },
    };
    const applied = await h.store.complete(
      claimed.map((m) =>
        kind === 'dead'
          ? {
              ...common,
              kind,
              messageId: m.id,
              error: {
                code: 'AMT_DELIVERY_REJECTED',
                message: 'the receiver rejected the application (HTTP 400)',
              },
            }
          : {
              ...common,
              kind,
              messageId: m.id,
              error: { code: 'AMT_DELIVERY_RETRYABLE', message: 'the receiver is down (HTTP 503)' },
              runAt: now + 3_600_000,
            },
      ),
      now + 3,
    );
    expect(applied.every(Boolean)).to.equal(true);
    return id;
  }

  const deadLetter = (overrides: Record<string, unknown> = {}) => failedOnce('dead', overrides);
  const retrying = (overrides: Record<string, unknown> = {}) => failedOnce('retry', overrides);

  it('lists messages newest first and filters by tenant, service, status and reference', async () => {
    const ms1 = await submit(KEYS.muenster, { reference: 'MS-1' });
    const ms2 = await submit(KEYS.muenster, { reference: 'MS-2' });
    const bi1 = await submit(KEYS.bielefeld, { tenant: BIELEFELD_ARS, reference: 'BI-1' });

    const all = await h.request('GET', '/api/v1/admin/messages', { key: KEYS.admin });
    expect(all.status).to.equal(200);
    expect(all.body.items.map((m: { id: string }) => m.id)).to.have.members([ms1, ms2, bi1]);
    expect(all.body.nextCursor).to.equal(null);
    const created = all.body.items.map((m: { createdAt: string }) => Date.parse(m.createdAt));
    expect(created).to.deep.equal([...created].sort((a, b) => b - a));
    expect(all.text).to.not.include('Mustermann');

    const muenster = await h.request('GET', '/api/v1/admin/messages?tenant=muenster', { key: KEYS.admin });
    expect(muenster.body.items.map((m: { id: string }) => m.id)).to.have.members([ms1, ms2]);

    const byReference = await h.request('GET', '/api/v1/admin/messages?reference=BI-1', { key: KEYS.admin });
    expect(byReference.body.items.map((m: { id: string }) => m.id)).to.deep.equal([bi1]);

    const byService = await h.request(
      'GET',
      '/api/v1/admin/messages?service=99058012104000&status=received',
      { key: KEYS.admin },
    );
    expect(byService.body.items).to.have.length(3);
    const dead = await h.request('GET', '/api/v1/admin/messages?status=dead', { key: KEYS.admin });
    expect(dead.body.items).to.have.length(0);
  });

  it('filters by a received-at window given in ISO 8601', async () => {
    await submit(KEYS.muenster);
    const past = await h.request('GET', '/api/v1/admin/messages?until=2000-01-01T00:00:00Z', {
      key: KEYS.admin,
    });
    expect(past.body.items).to.have.length(0);
    const since = encodeURIComponent(new Date(Date.now() - 60_000).toISOString().replace('Z', '+00:00'));
    const recent = await h.request('GET', `/api/v1/admin/messages?since=${since}`, { key: KEYS.admin });
    expect(recent.body.items).to.have.length(1);
    const future = await h.request('GET', '/api/v1/admin/messages?since=2999-01-01', { key: KEYS.admin });
    expect(future.body.items).to.have.length(0);
  });

  it('paginates with an opaque cursor, without gaps or repeats', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await submit(KEYS.muenster, { reference: `P-${i}` }));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const page = await h.request('GET', `/api/v1/admin/messages?limit=2${query}`, { key: KEYS.admin });
      expect(page.body.items.length).to.be.at.most(2);
      seen.push(...page.body.items.map((m: { id: string }) => m.id));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).to.equal(3);
    expect(seen).to.have.length(5);
    expect(seen).to.have.members(ids);
  });

  it('rejects unknown or invalid query parameters with the parameter named', async () => {
    const cases: [string, string][] = [
      ['status=lost', 'status'],
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['limit=ten', 'limit'],
      ['since=yesterday', 'since'],
      ['until=2026-11-01T10:00:00', 'until'],
      ['tenant=hamburg', 'tenant'],
      ['service=123', 'service'],
      ['tennant=muenster', 'tennant'],
      ['status=dead&status=received', 'status'],
      ['cursor=bm90LWEtY3Vyc29y', 'cursor'],
    ];
    for (const [query, param] of cases) {
      const res = await h.request('GET', `/api/v1/admin/messages?${query}`, { key: KEYS.admin });
      expect(res.status, query).to.equal(422);
      expect(res.body.code).to.equal('AMT_VALIDATION_FAILED');
      expect(
        res.body.problems.map((p: { path: string }) => p.path),
        query,
      ).to.include(param);
    }
  });

  it('shows one message with history and attempts, the payload only on request', async () => {
    const id = await deadLetter();
    const res = await h.request('GET', `/api/v1/admin/messages/${id}`, { key: KEYS.admin });
    expect(res.status).to.equal(200);
    expect(res.body).to.include({
      id,
      status: 'dead',
      tenantId: 'muenster',
      clientId: 'portal-ms',
      target: 'dms',
      attempts: 1,
    });
    expect(res.body.lastError.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(res.body.history.map((e: { event: string }) => e.event)[0]).to.equal('received');
    expect(res.body.history.at(-1).status).to.equal('dead');
    expect(res.body.deliveryAttempts).to.have.length(1);
    expect(res.body.deliveryAttempts[0]).to.include({ n: 1, target: 'dms', outcome: 'failed' });
    expect(res.body).to.not.have.property('payload');
    expect(res.text).to.not.include('Mustermann');

    const withPayload = await h.request('GET', `/api/v1/admin/messages/${id}?payload=true`, {
      key: KEYS.admin,
    });
    expect(withPayload.body.payload.applicant.familyName).to.equal('Mustermann');
    expect(withPayload.body.payload.reference).to.equal('PORTAL-2026-000123');

    const missing = await h.request('GET', '/api/v1/admin/messages/00000000-0000-4000-8000-000000000000', {
      key: KEYS.admin,
    });
    expect(missing.status).to.equal(404);
    const badFlag = await h.request('GET', `/api/v1/admin/messages/${id}?payload=yes`, { key: KEYS.admin });
    expect(badFlag.status).to.equal(422);
  });

  it('lists dead letters with their reason', async () => {
    const id = await deadLetter();
    await submit(KEYS.muenster); // still received, not a dead letter
    const res = await h.request('GET', '/api/v1/admin/dead-letters', { key: KEYS.admin });
    expect(res.status).to.equal(200);
    expect(res.body.items.map((d: { id: string }) => d.id)).to.deep.equal([id]);
    expect(res.body.items[0].error.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(res.body.items[0].status).to.equal('dead');
    const other = await h.request('GET', '/api/v1/admin/dead-letters?tenant=bielefeld', { key: KEYS.admin });
    expect(other.body.items).to.have.length(0);
  });

  it('replays dead letters by id, keeping the delivery id, and wakes the pipeline', async () => {
    const id = await deadLetter();
    const deliveryId = (await h.store.getMessage(id))!.deliveryId;
    const alive = await submit(KEYS.muenster);
    const acceptedBefore = h.state.accepted;
    const res = await h.request('POST', '/api/v1/admin/replay', {
      key: KEYS.admin,
      json: { ids: [id, alive, '00000000-0000-4000-8000-000000000000'] },
    });
    expect(res.status).to.equal(200);
    expect(res.body.replayed).to.deep.equal([id]);
    expect(res.body.notReplayable).to.have.members([alive, '00000000-0000-4000-8000-000000000000']);
    const replayed = await h.store.getMessage(id);
    expect(replayed!.status).to.equal('received');
    expect(replayed!.deliveryId).to.equal(deliveryId);
    expect(h.state.accepted).to.equal(acceptedBefore + 1);
    const history = await h.store.history(id);
    expect(history.at(-1)!.event).to.equal('replayed');
  });

  it('replays all dead letters, optionally of one tenant', async () => {
    const ms = await deadLetter();
    const bi = await deadLetter({ tenant: BIELEFELD_ARS });
    const onlyBielefeld = await h.request('POST', '/api/v1/admin/replay', {
      key: KEYS.admin,
      json: { deadLetters: true, tenant: 'bielefeld' },
    });
    expect(onlyBielefeld.body).to.deep.equal({ replayed: [bi], notReplayable: [] });
    const rest = await h.request('POST', '/api/v1/admin/replay', {
      key: KEYS.admin,
      json: { deadLetters: true },
    });
    expect(rest.body).to.deep.equal({ replayed: [ms], notReplayable: [] });
    const none = await h.request('POST', '/api/v1/admin/replay', {
      key: KEYS.admin,
      json: { deadLetters: true },
    });
    expect(none.body).to.deep.equal({ replayed: [], notReplayable: [] });
  });

  it('sends messages waiting for their next retry now, optionally of one tenant', async () => {
    const dead = await deadLetter();
    const waiting = await retrying();
    const waitingBi = await retrying({ tenant: BIELEFELD_ARS });
    const onlyMuenster = await h.request('POST', '/api/v1/admin/replay', {
      key: KEYS.admin,
      json: { retrying: true, tenant: 'muenster' },
    });
    expect(onlyMuenster.status).to.equal(200);
    expect(onlyMuenster.body).to.deep.equal({ replayed: [waiting], notReplayable: [] });
    const now = Date.now();
    const sent = (await h.store.getMessage(waiting))!;
    expect(sent.status).to.equal('received');
    expect(sent.runAt).to.be.at.most(now);
    expect(sent.attempts).to.equal(0);
    expect((await h.store.getMessage(waitingBi))!.status).to.equal('retrying');
    expect((await h.store.getMessage(dead))!.status).to.equal('dead');
    const rest = await h.request('POST', '/api/v1/admin/replay', {
      key: KEYS.admin,
      json: { retrying: true },
    });
    expect(rest.body).to.deep.equal({ replayed: [waitingBi], notReplayable: [] });
  });

  it('rejects a malformed replay request', async () => {
    for (const body of [
      {},
      { ids: [] },
      { ids: 'abc' },
      { deadLetters: false },
      { ids: ['a'], deadLetters: true },
      { retrying: false },
      { retrying: true, deadLetters: true },
    ]) {
      const res = await h.request('POST', '/api/v1/admin/replay', { key: KEYS.admin, json: body });
      expect(res.status, JSON.stringify(body)).to.equal(422);
      expect(res.body.code).to.equal('AMT_VALIDATION_FAILED');
    }
    const unknownTenant = await h.request('POST', '/api/v1/admin/replay', {
      key: KEYS.admin,
      json: { deadLetters: true, tenant: 'hamburg' },
    });
    expect(unknownTenant.status).to.equal(422);
    const text = await h.request('POST', '/api/v1/admin/replay', {
      key: KEYS.admin,
      body: 'ids=1',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).to.equal(415);
  });

  it('is closed to portal clients (403) and to anonymous callers (401)', async () => {
    const id = await deadLetter();
    const requests: [string, string, unknown?][] = [
      ['GET', '/api/v1/admin/messages'],
      ['GET', `/api/v1/admin/messages/${id}`],
      ['GET', '/api/v1/admin/dead-letters'],
      ['POST', '/api/v1/admin/replay', { ids: [id] }],
    ];
    for (const [method, path, json] of requests) {
      const portal = await h.request(method, path, { key: KEYS.muenster, json });
      expect(portal.status, `${method} ${path}`).to.equal(403);
      expect(portal.body.code).to.equal('AMT_FORBIDDEN');
      const anonymous = await h.request(method, path, { json });
      expect(anonymous.status).to.equal(401);
    }
    expect((await h.store.getMessage(id))!.status).to.equal('dead');
  });

  it('admin clients may read any application status', async () => {
    const id = await submit(KEYS.muenster);
    const res = await h.request('GET', `/api/v1/applications/${id}`, { key: KEYS.admin });
    expect(res.status).to.equal(200);
    expect(res.body.id).to.equal(id);
  });
});
