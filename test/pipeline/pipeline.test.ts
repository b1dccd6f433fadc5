/**
 * The pipeline against a real SQLite store, with adapters defined here that behave like
 * receivers do: succeed, fail for a while, reject, hang.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { FachdatenValidator } from '../../adapters/fit-connect/fachdaten-schema.js';
import {
  defineAdapter,
  rejectPermanently,
  retryLater,
  type AdapterInstance,
  type Delivery,
  type InboundApplication,
} from '../../src/adapter-contract.js';
import { AttachmentStore } from '../../src/attachments.js';
import { canonicalJson } from '../../src/canonical-json.js';
import { validateConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { AmtError } from '../../src/errors.js';
import { IDENTITY_ATTRIBUTES, identityFromAssertion } from '../../src/identity/identity.js';
import { loadMappingStep } from '../../src/mapping/index.js';
import { createLogger } from '../../src/observability/log.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { inboundReceiver } from '../../src/pipeline/inbound.js';
import type { JsonTextMappingInput, MappingInput, MappingStep } from '../../src/pipeline/mapping-step.js';
import { Pipeline, type SlotReservation } from '../../src/pipeline/pipeline.js';
import { createRouter } from '../../src/routing.js';
import { withGroupCommit } from '../../src/store/group-commit.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { MAX_REMOTE_REFERENCE_LENGTH, type MessageRecord, type Store } from '../../src/store/types.js';

const ARS = '055150000000';
const SERVICE = '99058012104000';
const MAPPED_SERVICE = '99058012104001';
/** Routed to the XBeteiligung 0401 → portal JSON mapping (XML source). */
const XML_MAPPED_SERVICE = '99107001001000';
/** Routed to the Bewohnerparken → xdomea mapping (JSON source). */
const JSON_MAPPED_SERVICE = '99058012104002';

const MAPPINGS = fileURLToPath(new URL('../../mappings/', import.meta.url));
const XBETEILIGUNG = path.join(MAPPINGS, 'xbeteiligung-inbound');
const xbeteiligung0401 = readFileSync(path.join(XBETEILIGUNG, 'sample-kommunal-initiieren-0401.xml'));
/** `message.receivedAt` of the mapping's own test, so its expected output applies unchanged. */
const RECEIVED_AT = 1714980670000;

const recorder = defineAdapter<Record<string, never>>({
  type: 'recorder',
  version: '1.0.0',
  description: 'delivers through a function set by the test',
  capabilities: { outbound: true, inbound: false, poll: false },
  configSchema: { type: 'object', additionalProperties: false },
  secrets: [],
  example: {},
  create: () => ({}),
});

function baseConfig(dataDir: string, routeAdapter = 'primary'): GatewayConfig {
  return validateConfig(
    {
      dataDir,
      tenants: [{ id: 'muenster', name: 'Stadt Münster', ars: ARS }],
      clients: [{ id: 'portal', keyHash: 'sha256:' + '0'.repeat(64), tenants: ['muenster'] }],
      adapters: { primary: { type: 'recorder' }, secondary: { type: 'recorder' } },
      routes: [
        { id: 'parken', ars: '05515', service: SERVICE, adapter: routeAdapter },
        {
          id: 'parken-mapped',
          ars: '05515',
          service: MAPPED_SERVICE,
          adapter: routeAdapter,
          mapping: 'xdomea.mapping.yaml',
        },
        {
          id: 'beteiligung',
          ars: '05515',
          service: XML_MAPPED_SERVICE,
          adapter: routeAdapter,
          mapping: path.join(XBETEILIGUNG, 'xbeteiligung-inbound.mapping.yaml'),
        },
        {
          id: 'parken-xdomea',
          ars: '05515',
          service: JSON_MAPPED_SERVICE,
          adapter: routeAdapter,
          mapping: path.join(MAPPINGS, 'bewohnerparken', 'bewohnerparken.mapping.yaml'),
        },
      ],
      retry: { maxAttempts: 3, initialDelay: 10, maxDelay: 50, jitter: 0 },
      pipeline: {
        concurrency: 8,
        batchSize: 10,
        lease: 500,
        pollInterval: 10,
        deliveryTimeout: 2000,
        drainTimeout: 300,
      },
    },
    { manifests: [recorder], baseDir: dataDir, source: undefined },
  );
}

type Deliver = (delivery: Delivery, signal: AbortSignal) => Promise<{ remoteReference?: string }>;

describe('pipeline', function () {
  this.timeout(20_000);
  let dir: string;
  let raw: SqliteStore;
  let store: Store;
  let config: GatewayConfig;
  let attachments: AttachmentStore;
  let deliveries: Delivery[];
  let behaviour: Record<string, Deliver>;
  let pipelines: Pipeline[];
  let mappingCalls: number;

  const adapters = (): Map<string, AdapterInstance> =>
    new Map(
      ['primary', 'secondary'].map((id) => [
        id,
        {
          deliver: async (delivery: Delivery, signal: AbortSignal) => {
            deliveries.push(delivery);
            return behaviour[id]!(delivery, signal);
          },
        },
      ]),
    );

  const failingMapping: MappingStep = () => {
    mappingCalls++;
    throw new AmtError(
      'AMT_MAPPING_FAILED',
      'rule antragsteller.name: source path applicant.familyName is missing',
      {
        problems: [
          { path: 'applicant.familyName', message: 'is missing (rule antragsteller.name, line 12)' },
        ],
      },
    );
  };

  function startPipeline(
    cfg = config,
    owner?: string,
    loadMapping: (f: string) => Promise<MappingStep> = async () => failingMapping,
  ): Pipeline {
    const pipeline = new Pipeline({
      config: cfg,
      store,
      router: createRouter(cfg),
      adapters: adapters(),
      attachments,
      loadMapping,
      logger: createLogger({ silent: true }),
      metrics: createMetrics({ defaultMetrics: false }),
      ...(owner ? { owner } : {}),
    });
    pipelines.push(pipeline);
    pipeline.start();
    return pipeline;
  }

  async function accept(
    service = SERVICE,
    cfg = config,
    payload: string = JSON.stringify({ applicant: { familyName: 'Mustermann' }, data: { zone: 'A' } }),
    /** As intake does with a reserved slot: stored claimed, and no wake-up. */
    slot?: SlotReservation,
  ): Promise<MessageRecord> {
    const route = createRouter(cfg).resolve(ARS, service)!;
    const [result] = await store.accept([
      {
        id: randomUUID(),
        deliveryId: randomUUID(),
        direction: 'outbound',
        tenantId: 'muenster',
        ars: ARS,
        service,
        reference: `ref-${randomUUID()}`,
        clientId: 'portal',
        routeId: route.id,
        target: route.adapter,
        payload,
        attachments: [],
        idempotency: undefined,
        receivedAt: Date.now(),
        ...(slot ? { claim: slot.claim } : {}),
      },
    ]);
    if (result?.kind !== 'created') throw new Error('not created');
    if (!slot) pipelines.forEach((p) => p.wake());
    return result.message;
  }

  /** Stores an inbound message with the given payload, as the inbound hand-over writes one. */
  async function storeInbound(service: string, payload: string): Promise<MessageRecord> {
    const route = createRouter(config).resolve(ARS, service)!;
    const reference = (JSON.parse(payload) as { reference: string }).reference;
    const [result] = await store.accept([
      {
        id: randomUUID(),
        deliveryId: randomUUID(),
        direction: 'inbound',
        tenantId: 'muenster',
        ars: ARS,
        service,
        reference,
        clientId: 'adapter:inbox',
        routeId: route.id,
        target: route.adapter,
        payload,
        attachments: [],
        idempotency: { key: reference, requestHash: randomUUID() },
        receivedAt: RECEIVED_AT,
      },
    ]);
    if (result?.kind !== 'created') throw new Error('not created');
    pipelines.forEach((p) => p.wake());
    return result.message;
  }

  async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 8000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  const statusOf = (id: string, status: string) => async () => {
    const m = await store.getMessage(id);
    return m?.status === status ? m : undefined;
  };

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amt-pipeline-'));
    raw = SqliteStore.open(path.join(dir, 'store.db'));
    store = withGroupCommit(raw);
    config = baseConfig(dir);
    attachments = new AttachmentStore(path.join(dir, 'attachments'));
    deliveries = [];
    pipelines = [];
    mappingCalls = 0;
    behaviour = {
      primary: async (d) => ({ remoteReference: `VG-${d.deliveryId.slice(0, 8)}` }),
      secondary: async () => ({ remoteReference: 'efa' }),
    };
    return store.migrate();
  });

  afterEach(async () => {
    for (const p of pipelines) await p.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What an inbound adapter instance `inbox` hands applications to. */
  function inbox(): ReturnType<typeof inboundReceiver> {
    return inboundReceiver('inbox', {
      store,
      router: createRouter(config),
      attachments,
      onAccepted: () => undefined,
    });
  }

  /** The attachment files on disk (none while nothing was accepted). */
  function attachmentFiles(): string[] {
    return readdirSync(attachments.dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => e.name);
  }

  /** A configuration with `concurrency` slots whose deliveries wait until the test releases them. */
  function heldDeliveries(concurrency: number): { cfg: GatewayConfig; releases: Array<() => void> } {
    const cfg = baseConfig(dir);
    const releases: Array<() => void> = [];
    behaviour.primary = () =>
      new Promise((resolve) => releases.push(() => resolve({ remoteReference: 'ok' })));
    return { cfg: { ...cfg, pipeline: { ...cfg.pipeline, concurrency } } as GatewayConfig, releases };
  }

  it('delivers with the delivery id and records the remote reference and history', async () => {
    startPipeline();
    const m = await accept();
    const done = await until(statusOf(m.id, 'delivered'), 'delivery');
    expect(done.remoteReference).to.equal(`VG-${m.deliveryId.slice(0, 8)}`);
    expect(deliveries).to.have.length(1);
    expect(deliveries[0]?.deliveryId).to.equal(m.deliveryId);
    expect(deliveries[0]?.tenant).to.deep.equal({ id: 'muenster', ars: ARS, name: 'Stadt Münster' });
    expect(deliveries[0]?.body.contentType).to.equal('application/json');
    expect(JSON.parse(String(deliveries[0]?.body.content))).to.deep.equal({
      applicant: { familyName: 'Mustermann' },
      data: { zone: 'A' },
    });
    const events = (await store.history(m.id)).map((e) => e.event);
    expect(events).to.deep.equal(['received', 'claimed', 'delivered']);
    const attempts = await store.attempts(m.id);
    expect(attempts.map((a) => a.outcome)).to.deep.equal(['delivered']);
  });

  it('with every slot busy, wake-ups wait for a free slot instead of spinning the event loop', async () => {
    const { cfg: narrow, releases } = heldDeliveries(1);
    startPipeline(narrow);
    const first = await accept(SERVICE, narrow);
    await until(async () => (releases.length === 1 ? true : undefined), 'first delivery to start');
    // A second application arrives while the only slot is busy: its wake-up must not turn the
    // claim loop into a busy loop, or this timer would never fire.
    const second = await accept(SERVICE, narrow);
    const ticked = await Promise.race([
      new Promise<boolean>((r) => setTimeout(() => r(true), 20)),
      new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref()),
    ]);
    expect(ticked).to.equal(true);
    releases[0]!();
    await until(statusOf(first.id, 'delivered'), 'first delivery');
    await until(async () => (releases.length === 2 ? true : undefined), 'second delivery to start');
    releases[1]!();
    await until(statusOf(second.id, 'delivered'), 'second delivery');
  });

  it('under load claims several messages at a time: it waits for a quarter of the slots to free up', async () => {
    const { cfg: eight, releases } = heldDeliveries(8);
    const limits: number[] = [];
    const claimDue = raw.claimDue.bind(raw);
    raw.claimDue = async (owner, limit, leaseMs, now) => {
      const claimed = await claimDue(owner, limit, leaseMs, now);
      if (claimed.length > 0) limits.push(limit);
      return claimed;
    };
    const messages: MessageRecord[] = [];
    for (let i = 0; i < 14; i++) messages.push(await accept(SERVICE, eight));
    startPipeline(eight);
    await until(async () => (releases.length === 8 ? true : undefined), 'eight deliveries to start');
    // One finished delivery frees one slot of eight: not yet worth a claim of its own.
    releases[0]!();
    await until(statusOf(messages[0]!.id, 'delivered'), 'first delivery');
    await new Promise((r) => setTimeout(r, 100));
    expect(releases).to.have.length(8);
    // The second one frees a quarter: two messages are claimed in one go.
    releases[1]!();
    await until(async () => (releases.length === 10 ? true : undefined), 'two more deliveries to start');
    for (let i = 2; i < 14; i++) {
      await until(async () => (releases.length > i ? true : undefined), `delivery ${i + 1} to start`);
      releases[i]!();
    }
    for (const m of messages) await until(statusOf(m.id, 'delivered'), `delivery of ${m.id}`);
    expect(limits[0]).to.equal(8);
    expect(limits[1]).to.equal(2);
    expect(Math.min(...limits)).to.be.at.least(2);
  });

  it('delivers a message accepted into a reserved slot from memory, without claiming it', async () => {
    let claimedByLoop = 0;
    const claimDue = raw.claimDue.bind(raw);
    raw.claimDue = async (owner, limit, leaseMs, now) => {
      const claimed = await claimDue(owner, limit, leaseMs, now);
      claimedByLoop += claimed.length;
      return claimed;
    };
    const pipeline = startPipeline();
    // Once the loop has found nothing due, a slot is offered.
    const slot = await until(async () => pipeline.reserve(), 'a slot to be offered');
    expect(slot.claim.owner).to.equal(pipeline.owner);
    const m = await accept(SERVICE, config, undefined, slot);
    expect(m.status).to.equal('delivering');
    slot.take(m);
    const done = await until(statusOf(m.id, 'delivered'), 'delivery');
    expect(done.remoteReference).to.equal(`VG-${m.deliveryId.slice(0, 8)}`);
    expect(deliveries.map((d) => d.deliveryId)).to.deep.equal([m.deliveryId]);
    const history = await store.history(m.id);
    expect(history.map((e) => e.event)).to.deep.equal(['received', 'claimed', 'delivered']);
    expect(history[1]?.detail).to.deep.include({ owner: pipeline.owner, attempt: 1 });
    expect(claimedByLoop).to.equal(0);
  });

  it('offers no slot while a queued message waits or every slot is busy, and a released one is free again', async () => {
    const { cfg: narrow, releases } = heldDeliveries(1);
    const pipeline = startPipeline(narrow);
    const unused = await until(async () => pipeline.reserve(), 'a slot to be offered');
    // The only slot is held: nothing else is offered, and the loop claims nothing meanwhile.
    expect(pipeline.reserve()).to.equal(undefined);
    unused.release();
    expect(() => unused.release()).to.throw(/twice/);
    const queued = await accept(SERVICE, narrow); // queued the usual way, with a wake-up
    // A new application must not overtake the queued one.
    expect(pipeline.reserve()).to.equal(undefined);
    await until(async () => (releases.length === 1 ? true : undefined), 'the queued message to start');
    expect(deliveries[0]?.messageId).to.equal(queued.id);
    expect(pipeline.reserve()).to.equal(undefined); // busy
    releases[0]!();
    await until(statusOf(queued.id, 'delivered'), 'queued delivery');
    const slot = await until(async () => pipeline.reserve(), 'the slot to be offered again');
    slot.release();
  });

  it('stop() waits for a reserved slot’s message and delivers it', async () => {
    const pipeline = startPipeline();
    const slot = await until(async () => pipeline.reserve(), 'a slot to be offered');
    let stopped = false;
    const stopping = pipeline.stop().then(() => (stopped = true));
    const m = await accept(SERVICE, config, undefined, slot);
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped).to.equal(false);
    expect(pipeline.reserve()).to.equal(undefined);
    slot.take(m);
    await stopping;
    expect((await store.getMessage(m.id))?.status).to.equal('delivered');
  });

  it('gives a step that maps JSON text elsewhere the stored text of a plain application, and parses otherwise', async () => {
    const calls: string[] = [];
    const recording: MappingStep = Object.assign(
      (input: MappingInput) => {
        calls.push('parsed');
        return { contentType: 'application/json', content: canonicalJson(input.application) };
      },
      {
        source: 'json' as const,
        fromJsonText: async (input: JsonTextMappingInput) => {
          calls.push('text');
          expect(input.message.tenant).to.deep.equal({ id: 'muenster', name: 'Stadt Münster', ars: ARS });
          return { contentType: 'application/json', content: input.applicationJson };
        },
      },
    );
    startPipeline(config, undefined, async () => recording);
    const plainPayload = canonicalJson({ reference: 'P-1', applicant: { familyName: 'Muster' } });
    const plain = await accept(MAPPED_SERVICE, config, plainPayload);
    await until(statusOf(plain.id, 'delivered'), 'plain delivery');
    // A key named like the identity, deeper down: the text cannot tell, so it is parsed.
    const doubtful = await accept(
      MAPPED_SERVICE,
      config,
      canonicalJson({ reference: 'P-2', data: { verifiedIdentity: 'no' } }),
    );
    await until(statusOf(doubtful.id, 'delivered'), 'doubtful delivery');
    expect(calls).to.deep.equal(['text', 'parsed']);
    expect(String(deliveries[0]?.body.content)).to.equal(plainPayload);
    expect(JSON.parse(String(deliveries[1]?.body.content))).to.deep.equal({
      reference: 'P-2',
      data: { verifiedIdentity: 'no' },
    });
    expect(deliveries[1]).to.not.have.property('identity');
  });

  it('asks a store that failed for a moment again to record the outcome, so the delivery is not made twice', async () => {
    let failures = 2;
    const flaky = new Proxy(store, {
      get(target, property) {
        if (property === 'complete') {
          return async (...args: Parameters<Store['complete']>) => {
            if (failures-- > 0) throw new AmtError('AMT_STORE_UNAVAILABLE', 'SQLite store: SQLITE_FULL');
            return target.complete(...args);
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const cfg = { ...config, pipeline: { ...config.pipeline, leaseMs: 10_000 } } as GatewayConfig;
    const pipeline = new Pipeline({
      config: cfg,
      store: flaky,
      router: createRouter(cfg),
      adapters: adapters(),
      attachments,
      loadMapping: async () => failingMapping,
      logger: createLogger({ silent: true }),
      metrics: createMetrics({ defaultMetrics: false }),
    });
    pipelines.push(pipeline);
    pipeline.start();
    const m = await accept(SERVICE, cfg);
    const started = Date.now();
    const done = await until(statusOf(m.id, 'delivered'), 'the outcome recorded once the store answers');
    // Recorded within the retries (250 + 500 ms), not after the lease of 10 s ran out.
    expect(Date.now() - started).to.be.below(5_000);
    expect(failures).to.equal(-1);
    expect(deliveries.map((d) => d.deliveryId)).to.deep.equal([m.deliveryId]);
    expect((await store.attempts(done.id)).map((a) => a.outcome)).to.deep.equal(['delivered']);
  });

  it('records a delivery whose receiver answered an over-long reference as delivered, without the reference', async () => {
    const longest = 'R'.repeat(MAX_REMOTE_REFERENCE_LENGTH);
    const tooLong = `${longest}-`;
    const references = [longest, tooLong];
    behaviour.primary = async () => ({ remoteReference: references.shift()! });
    startPipeline();
    const kept = await accept();
    await until(statusOf(kept.id, 'delivered'), 'first delivery');
    const dropped = await accept();
    const done = await until(statusOf(dropped.id, 'delivered'), 'second delivery');
    expect((await store.getMessage(kept.id))?.remoteReference).to.equal(longest);
    expect(done.remoteReference).to.equal(undefined);
    expect(deliveries).to.have.length(2);
    const last = (await store.history(dropped.id)).at(-1);
    expect(last?.event).to.equal('delivered');
    expect(last?.detail?.remoteReferenceNotRecorded).to.equal(
      `the receiver's reference has ${tooLong.length} characters, more than ${MAX_REMOTE_REFERENCE_LENGTH}`,
    );
  });

  it('retries retryable failures with the same delivery id, then delivers', async () => {
    let failures = 2;
    behaviour.primary = async () => {
      if (failures-- > 0) throw retryLater('503 from Fachverfahren');
      return { remoteReference: 'ok' };
    };
    startPipeline();
    const m = await accept();
    await until(statusOf(m.id, 'delivered'), 'delivery after retries');
    expect(deliveries.map((d) => d.deliveryId)).to.deep.equal([m.deliveryId, m.deliveryId, m.deliveryId]);
    expect(deliveries.map((d) => d.attempt)).to.deep.equal([1, 2, 3]);
    const attempts = await store.attempts(m.id);
    expect(attempts.map((a) => a.outcome)).to.deep.equal(['retry', 'retry', 'delivered']);
    expect(attempts[0]?.error?.code).to.equal('AMT_DELIVERY_RETRYABLE');
  });

  it('honours Retry-After when scheduling the next attempt', async () => {
    behaviour.primary = async () => {
      throw retryLater('429', { retryAfterSeconds: 120 });
    };
    startPipeline();
    const before = Date.now();
    const m = await accept();
    const retrying = await until(statusOf(m.id, 'retrying'), 'retry scheduled');
    expect(retrying.runAt - before).to.be.at.least(120_000);
    expect(retrying.lastError?.code).to.equal('AMT_DELIVERY_RETRYABLE');
  });

  it('dead-letters a permanent rejection at once and replays it with the same delivery id', async () => {
    let reject = true;
    behaviour.primary = async () => {
      if (reject) throw rejectPermanently('400 Bad Request: Pflichtfeld fehlt');
      return { remoteReference: 'after-fix' };
    };
    startPipeline();
    const m = await accept();
    const dead = await until(statusOf(m.id, 'dead'), 'dead letter');
    expect(dead.lastError).to.include({
      code: 'AMT_DELIVERY_REJECTED',
      message: '400 Bad Request: Pflichtfeld fehlt',
    });
    expect(deliveries).to.have.length(1);
    const letters = await store.deadLetters({ limit: 10 });
    expect(letters.items.map((l) => l.message.id)).to.deep.equal([m.id]);

    reject = false;
    const { replayed } = await store.replay([m.id], Date.now(), 'ops');
    expect(replayed).to.deep.equal([m.id]);
    pipelines[0]!.wake();
    const done = await until(statusOf(m.id, 'delivered'), 'delivery after replay');
    expect(done.remoteReference).to.equal('after-fix');
    expect(deliveries.map((d) => d.deliveryId)).to.deep.equal([m.deliveryId, m.deliveryId]);
  });

  it('logs a mapping failure without the value it quotes; the dead letter keeps it', async () => {
    const sample = JSON.parse(
      readFileSync(path.join(MAPPINGS, 'bewohnerparken', 'sample-application.json'), 'utf8'),
    ) as { applicant: Record<string, unknown>; data: unknown };
    const payload = JSON.stringify({
      reference: 'BPA-1',
      channel: 'online',
      applicant: { ...sample.applicant, birthDate: '31.02.1971' },
      data: sample.data,
    });
    const lines: string[] = [];
    const pipeline = new Pipeline({
      config,
      store,
      router: createRouter(config),
      adapters: adapters(),
      attachments,
      loadMapping: loadMappingStep,
      logger: createLogger({
        stream: new Writable({
          write(chunk: Buffer, _encoding, done) {
            lines.push(chunk.toString());
            done();
          },
        }),
      }),
      metrics: createMetrics({ defaultMetrics: false }),
    });
    pipelines.push(pipeline);
    pipeline.start();
    const m = await accept(JSON_MAPPED_SERVICE, config, payload);
    const dead = await until(statusOf(m.id, 'dead'), 'the mapping failure');
    expect(dead.lastError?.code).to.equal('AMT_MAPPING_FAILED');
    expect(dead.lastError?.message).to.include('"31.02.1971" is not a calendar date');
    // The line is written after the outcome is recorded.
    const log = await until(async () => {
      const text = lines.join('');
      return text.includes('message dead') ? text : undefined;
    }, 'the log line of the dead letter');
    expect(log).to.include('AMT_MAPPING_FAILED');
    expect(log).to.include('\\"[redacted]\\" is not a calendar date');
    expect(log).to.not.include('31.02.1971');
  });

  it('keeps retrying the applications of a route whose mapping does not compile, and delivers them once it is fixed', async () => {
    const file = path.join(dir, 'xdomea.mapping.yaml');
    const mapping =
      'source: { format: json }\ntarget: { format: json }\nrules:\n  - { to: zone, from: application.data.zone }\n';
    writeFileSync(file, mapping.replace('from:', 'frm:'));
    // Enough attempts that the test fixes the file before they run out.
    const patient = {
      ...config,
      routes: config.routes.map((r) => (r.mapping ? { ...r, retry: { ...r.retry, maxAttempts: 1000 } } : r)),
    } as GatewayConfig;
    startPipeline(patient, undefined, loadMappingStep);
    const m = await accept(MAPPED_SERVICE, patient);
    const waiting = await until(async () => {
      const now = await store.getMessage(m.id);
      return now?.status === 'retrying' && now.attempts >= 2 ? now : undefined;
    }, 'a second attempt');
    // The configuration is at fault, not the application: it waits instead of becoming a dead letter.
    expect(waiting.lastError?.code).to.equal('AMT_MAPPING_COMPILE_FAILED');
    expect(deliveries).to.have.length(0);
    writeFileSync(file, mapping);
    const done = await until(statusOf(m.id, 'delivered'), 'the delivery after the fix');
    expect(JSON.parse(String(deliveries[0]?.body.content))).to.deep.equal({ zone: 'A' });
    expect(done.attempts).to.be.greaterThan(2);
  });

  it('gives up after maxAttempts with AMT_RETRIES_EXHAUSTED naming the last error', async () => {
    behaviour.primary = async () => {
      throw retryLater('connection refused');
    };
    startPipeline();
    const m = await accept();
    const dead = await until(statusOf(m.id, 'dead'), 'exhaustion');
    expect(dead.lastError?.code).to.equal('AMT_RETRIES_EXHAUSTED');
    expect(dead.lastError?.message).to.include('connection refused');
    expect(deliveries).to.have.length(3);
  });

  it('treats an unexpected adapter exception as retryable, never as lost', async () => {
    let calls = 0;
    behaviour.primary = async () => {
      if (calls++ === 0) throw new TypeError('cannot read properties of undefined');
      return { remoteReference: 'second time' };
    };
    startPipeline();
    const m = await accept();
    await until(statusOf(m.id, 'delivered'), 'delivery after a bug');
    expect((await store.attempts(m.id))[0]?.error?.message).to.include('cannot read properties');
  });

  it('a mapping failure is permanent, keeps the precise reason, and the adapter is never called', async () => {
    startPipeline();
    const m = await accept(MAPPED_SERVICE);
    const dead = await until(statusOf(m.id, 'dead'), 'mapping dead letter');
    expect(dead.lastError?.code).to.equal('AMT_MAPPING_FAILED');
    expect(JSON.stringify(dead.lastError?.details)).to.include('applicant.familyName');
    expect(deliveries).to.have.length(0);
    expect(mappingCalls).to.equal(1);
    const history = await store.history(m.id);
    expect(history.at(-1)?.event).to.equal('dead-lettered');
  });

  it('a mapping step that fails for reasons of its own (a worker died, shutdown) is retried, not dead-lettered', async () => {
    const failures: Error[] = [
      new Error('a mapping worker stopped (exit code 1) while it mapped this message'),
      new AmtError('AMT_SHUTTING_DOWN', 'the mapping worker pool is closed'),
    ];
    const loadMapping = async (): Promise<MappingStep> => (input) => {
      const failure = failures.shift();
      if (failure) throw failure;
      return { contentType: 'application/json', content: JSON.stringify(input.application) };
    };
    startPipeline(config, undefined, loadMapping);
    const m = await accept(MAPPED_SERVICE);
    await until(statusOf(m.id, 'delivered'), 'delivery after two retries');
    const attempts = await store.attempts(m.id);
    expect(attempts.map((a) => [a.outcome, a.error?.code])).to.deep.equal([
      ['retry', 'AMT_INTERNAL'],
      ['retry', 'AMT_SHUTTING_DOWN'],
      ['delivered', undefined],
    ]);
    expect(deliveries).to.have.length(1);
  });

  it('replaying a mapping dead letter uses the mapping as it is now', async () => {
    let fixed = false;
    const loadMapping = async (): Promise<MappingStep> => (input) => {
      if (!fixed) return failingMapping(input);
      return { contentType: 'application/xml', content: '<antrag/>' };
    };
    startPipeline(config, undefined, loadMapping);
    const m = await accept(MAPPED_SERVICE);
    await until(statusOf(m.id, 'dead'), 'dead letter');
    fixed = true;
    await store.replay([m.id], Date.now(), 'ops');
    pipelines[0]!.wake();
    await until(statusOf(m.id, 'delivered'), 'delivery after replay');
    expect(deliveries[0]?.body).to.deep.equal({ contentType: 'application/xml', content: '<antrag/>' });
  });

  it('a crashed worker’s lease expires and another worker delivers the message once', async () => {
    const m = await accept();
    // A worker claims and dies without an outcome.
    const claimed = await store.claimDue('dead-worker', 10, config.pipeline.leaseMs, Date.now());
    expect(claimed.map((c) => c.id)).to.deep.equal([m.id]);
    startPipeline(config, 'survivor');
    const done = await until(statusOf(m.id, 'delivered'), 'takeover after lease expiry');
    expect(done.attempts).to.equal(2);
    expect(deliveries.map((d) => d.deliveryId)).to.deep.equal([m.deliveryId]);
    expect((await store.history(m.id)).map((e) => e.event)).to.include('reclaimed');
  });

  it('stop() drains deliveries in flight, aborts those past the drain timeout and releases their leases', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    behaviour.primary = async () => {
      await gate;
      return { remoteReference: 'drained' };
    };
    const pipeline = startPipeline();
    const m = await accept();
    await until(async () => (deliveries.length === 1 ? true : undefined), 'delivery in flight');
    const stopping = pipeline.stop();
    setTimeout(release, 50);
    await stopping;
    expect((await store.getMessage(m.id))?.status).to.equal('delivered');

    // A delivery that outlives the drain timeout is aborted and its lease given back.
    behaviour.primary = (_d, signal) =>
      new Promise((_resolve, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason as Error)),
      );
    const p2 = startPipeline();
    const slow = await accept();
    await until(async () => (deliveries.length === 2 ? true : undefined), 'second delivery in flight');
    await p2.stop();
    const after = await store.getMessage(slow.id);
    expect(after?.status).to.equal('retrying');
    expect(after?.leaseOwner).to.equal(undefined);
  });

  it('a changed route sends new messages to the new target while a message in flight keeps its own', async () => {
    const m1 = await accept(); // accepted while the route pointed at primary
    const switched = baseConfig(dir, 'secondary');
    startPipeline(switched);
    const m2 = await accept(SERVICE, switched);
    await until(statusOf(m1.id, 'delivered'), 'old message');
    await until(statusOf(m2.id, 'delivered'), 'new message');
    expect((await store.getMessage(m1.id))?.remoteReference).to.match(/^VG-/);
    expect((await store.getMessage(m2.id))?.remoteReference).to.equal('efa');
    expect((await store.getMessage(m1.id))?.target).to.equal('primary');
    expect((await store.getMessage(m2.id))?.target).to.equal('secondary');
  });

  it('inbound applications are routed, stored durably and idempotent per reference', async () => {
    const receive = inboundReceiver('efa-inbox', {
      store,
      router: createRouter(config),
      attachments,
      onAccepted: () => undefined,
    });
    const application = {
      ars: ARS,
      service: SERVICE,
      reference: 'submission-0001',
      data: { antrag: 'Bewohnerparkausweis' },
      attachments: [
        { filename: 'nachweis.pdf', mediaType: 'application/pdf', content: Buffer.from('%PDF-1.7 test') },
      ],
    };
    const first = await receive(application);
    const again = await receive(application);
    expect(again.messageId).to.equal(first.messageId);
    const stored = await store.getMessage(first.messageId);
    expect(stored?.direction).to.equal('inbound');
    expect(stored?.target).to.equal('primary');
    expect(stored?.attachments[0]?.size).to.equal(13);
    const page = await store.listMessages({ tenantIds: ['muenster'], limit: 10 });
    expect(page.items).to.have.length(1);
    let error: unknown;
    await receive({ ...application, ars: '091620000000', reference: 'x' }).catch((e: unknown) => (error = e));
    expect((error as AmtError).code).to.equal('AMT_UNKNOWN_TENANT');
  });

  it('stores a handed-over document in the payload, and its content counts for idempotency', async () => {
    const receiverOf = (instanceId: string) =>
      inboundReceiver(instanceId, {
        store,
        router: createRouter(config),
        attachments,
        onAccepted: () => undefined,
      });
    const application = {
      ars: ARS,
      service: SERVICE,
      reference: 'xta-0001',
      channel: 'xta',
      data: { metadata: { messageType: { code: '0401' } } },
      document: { mediaType: 'application/xml', content: '<antrag xmlns="urn:example"/>' },
    };
    const { messageId } = await receiverOf('xta-a')(application);
    expect(JSON.parse((await store.getMessage(messageId))!.payload)).to.deep.equal({
      reference: 'xta-0001',
      channel: 'xta',
      data: { metadata: { messageType: { code: '0401' } } },
      document: { mediaType: 'application/xml', content: '<antrag xmlns="urn:example"/>' },
    });
    // The same hand-over at three instances, the last with another document: only that hash differs.
    await receiverOf('xta-b')(application);
    await receiverOf('xta-c')({
      ...application,
      document: { ...application.document, content: '<antrag/>' },
    });
    const hash = async (instanceId: string) =>
      (await store.findByIdempotencyKey(`adapter:${instanceId}`, 'xta-0001'))?.requestHash;
    const [a, b, c] = [await hash('xta-a'), await hash('xta-b'), await hash('xta-c')];
    expect(a).to.be.a('string');
    expect(b).to.equal(a);
    expect(c).to.be.a('string').and.not.equal(a);
  });

  it('refuses a handed-over document that is not { mediaType, content } as text, storing nothing', async () => {
    const receive = inbox();
    const invalid: Record<string, { document: unknown; paths: string[] }> = {
      'an empty media type': { document: { mediaType: '', content: '<a/>' }, paths: ['document.mediaType'] },
      'a blank media type': { document: { mediaType: '  ', content: '<a/>' }, paths: ['document.mediaType'] },
      'content as bytes': {
        document: { mediaType: 'application/xml', content: Buffer.from('<a/>') },
        paths: ['document.content'],
      },
      'the old FIT-Connect shape': {
        document: { mimeType: 'application/xml', content: '<a/>' },
        paths: ['document.mediaType'],
      },
      'neither field': { document: {}, paths: ['document.mediaType', 'document.content'] },
      null: { document: null, paths: ['document'] },
      'a string': { document: '<a/>', paths: ['document'] },
    };
    for (const [what, { document, paths }] of Object.entries(invalid)) {
      let error: unknown;
      await receive({
        ars: ARS,
        service: SERVICE,
        reference: `invalid-${what}`,
        data: { metadata: {} },
        document: document as InboundApplication['document'],
        attachments: [
          { filename: 'anlage.pdf', mediaType: 'application/pdf', content: Buffer.from(`%PDF ${what}`) },
        ],
      }).catch((e: unknown) => (error = e));
      expect(error, what).to.be.instanceOf(AmtError);
      expect((error as AmtError).code, what).to.equal('AMT_VALIDATION_FAILED');
      expect((error as AmtError).message, what).to.include('adapter inbox');
      expect(
        (error as AmtError).problems.map((p) => p.path),
        what,
      ).to.deep.equal(paths);
    }
    expect((await store.listMessages({ tenantIds: ['muenster'], limit: 10 })).items).to.deep.equal([]);
    // Not even the attachments were written: the check comes before anything else.
    expect(attachmentFiles()).to.deep.equal([]);
  });

  it('refuses a handed-over reference no store could key the message by, storing nothing', async () => {
    const receive = inbox();
    const invalid: Record<string, { reference: unknown; message: string }> = {
      empty: { reference: ' ', message: 'is not a non-empty string' },
      'a number': { reference: 4711, message: 'is not a non-empty string' },
      'too long': {
        reference: 'x'.repeat(MAX_REMOTE_REFERENCE_LENGTH + 1),
        message: `has ${MAX_REMOTE_REFERENCE_LENGTH + 1} characters, more than ${MAX_REMOTE_REFERENCE_LENGTH}`,
      },
      'a NUL': { reference: 'sub\u0000mission', message: 'holds a control character or a lone surrogate' },
      'a lone surrogate': {
        reference: 'sub\ud800',
        message: 'holds a control character or a lone surrogate',
      },
    };
    for (const [what, { reference, message }] of Object.entries(invalid)) {
      let error: unknown;
      await receive({
        ars: ARS,
        service: SERVICE,
        reference: reference as string,
        data: {},
        attachments: [
          { filename: 'anlage.pdf', mediaType: 'application/pdf', content: Buffer.from(`%PDF ${what}`) },
        ],
      }).catch((e: unknown) => (error = e));
      expect((error as AmtError).code, what).to.equal('AMT_VALIDATION_FAILED');
      expect((error as AmtError).problems, what).to.deep.equal([{ path: 'reference', message }]);
    }
    const longest = await receive({
      ars: ARS,
      service: SERVICE,
      reference: '€'.repeat(MAX_REMOTE_REFERENCE_LENGTH),
      data: {},
    });
    expect(
      (await store.listMessages({ tenantIds: ['muenster'], limit: 10 })).items.map((m) => m.id),
    ).to.deep.equal([longest.messageId]);
    expect(attachmentFiles()).to.deep.equal([]);
  });

  it('keeps a handed-over attachment’s names as text every store holds: U+FFFD for U+0000 and lone surrogates', async () => {
    const receive = inbox();
    const { messageId } = await receive({
      ars: ARS,
      service: SERVICE,
      reference: 'names-from-a-peer',
      data: {},
      attachments: [
        {
          filename: 'Nach\u0000weis.pdf',
          mediaType: 'application/pdf',
          purpose: 'Beleg \ud800 🚗',
          content: Buffer.from('%PDF names'),
        },
      ],
    });
    const [attachment] = (await store.getMessage(messageId))!.attachments;
    expect(attachment?.filename).to.equal('Nach\ufffdweis.pdf');
    expect(attachment?.purpose).to.equal('Beleg \ufffd 🚗');
    expect(attachment?.mediaType).to.equal('application/pdf');
  });

  describe('what the mapping step and the adapter are handed', () => {
    const receiver = () =>
      inboundReceiver('inbox', {
        store,
        router: createRouter(config),
        attachments,
        onAccepted: () => pipelines.forEach((p) => p.wake()),
        now: () => RECEIVED_AT,
      });

    const xbeteiligungMetadata = {
      service: 'urn:xoev-de:xleitstelle:standard:xbeteiligung',
      messageType: { code: '0401' },
    };
    const expectedPortal = (): unknown =>
      JSON.parse(readFileSync(path.join(XBETEILIGUNG, 'expected-portal.json'), 'utf8'));

    /** How inbound adapters hand over an XML message: as the application's `document`. */
    const handedOver: Record<string, (xml: Buffer) => Pick<InboundApplication, 'data' | 'document'>> = {
      // Built by the FIT-Connect adapter's own parser for XML Fachdaten.
      'FIT-Connect XML Fachdaten': (xml) =>
        new FachdatenValidator(new Map()).parse(xml, {
          schemaUri: 'urn:xoev-de:xleitstelle:standard:xbeteiligung',
          mimeType: 'application/xml',
        }),
      // As adapters/xta2/inbox.ts hands over a message: the XML as document, OSCI metadata as data.
      'an XTA 2 message': (xml) => ({
        document: { mediaType: 'application/xml', content: xml.toString('utf8') },
        data: { metadata: xbeteiligungMetadata },
      }),
    };

    for (const [what, handOver] of Object.entries(handedOver)) {
      it(`maps ${what} (XBeteiligung, handed over as document) with the XML-source mapping`, async () => {
        startPipeline(config, undefined, loadMappingStep);
        const { messageId } = await receiver()({
          ars: ARS,
          service: XML_MAPPED_SERVICE,
          reference: `xta-${randomUUID()}`,
          ...handOver(xbeteiligung0401),
        });
        const done = await until(statusOf(messageId, 'delivered'), 'delivery of the mapped message', 15_000);
        expect(done.direction).to.equal('inbound');
        expect(JSON.parse(done.payload)).to.have.deep.property('document', {
          mediaType: 'application/xml',
          content: xbeteiligung0401.toString('utf8'),
        });
        expect(deliveries).to.have.length(1);
        const [delivery] = deliveries;
        expect(delivery!.body.contentType).to.equal('application/json');
        expect(JSON.parse(String(delivery!.body.content))).to.deep.equal(expectedPortal());
        expect(delivery).to.not.have.property('identity');
      });
    }

    it('still reads inbound documents stored in data before the document field existed', async () => {
      startPipeline(config, undefined, loadMappingStep);
      const xml = xbeteiligung0401.toString('utf8');
      // Payloads exactly as the inbound hand-over wrote them for FIT-Connect and XTA 2 before.
      const legacy = {
        'FIT-Connect { mimeType, content }': canonicalJson({
          reference: 'fit-legacy',
          channel: 'fit-connect',
          data: { mimeType: 'application/xml', content: xml },
        }),
        'XTA 2 { xml, metadata }': canonicalJson({
          reference: 'xta-legacy',
          data: { xml, metadata: xbeteiligungMetadata },
        }),
      };
      const ids = new Map<string, string>();
      for (const [shape, payload] of Object.entries(legacy)) {
        ids.set((await storeInbound(XML_MAPPED_SERVICE, payload)).id, shape);
      }
      for (const [id, shape] of ids) {
        await until(statusOf(id, 'delivered'), `delivery of ${shape}`, 15_000);
      }
      expect(deliveries).to.have.length(2);
      for (const delivery of deliveries) {
        const shape = ids.get(delivery.messageId);
        expect(delivery.body.contentType, shape).to.equal('application/json');
        expect(JSON.parse(String(delivery.body.content)), shape).to.deep.equal(expectedPortal());
      }
    });

    it('takes JSON data handed over since as JSON, even when it looks like a document stored before', async () => {
      startPipeline(config, undefined, loadMappingStep);
      const receive = receiver();
      const lookalikes = [
        { mimeType: 'application/xml', content: xbeteiligung0401.toString('utf8') },
        { xml: xbeteiligung0401.toString('utf8'), metadata: xbeteiligungMetadata },
      ];
      const ids: string[] = [];
      for (const [i, data] of lookalikes.entries()) {
        const { messageId } = await receive({
          ars: ARS,
          service: XML_MAPPED_SERVICE,
          reference: `json-${i}`,
          data,
        });
        ids.push(messageId);
        expect(JSON.parse((await store.getMessage(messageId))!.payload)).to.deep.include({
          data,
          document: null,
        });
      }
      for (const id of ids) {
        const dead = await until(statusOf(id, 'dead'), 'refusal by the XML mapping', 15_000);
        expect(dead.lastError?.code).to.equal('AMT_MAPPING_SOURCE_MISMATCH');
        expect(dead.lastError?.message).to.include('reads XML, but the message holds a JSON application');
      }
      expect(deliveries).to.have.length(0);
    });

    it('dead-letters a message of the wrong kind for its mapping with AMT_MAPPING_SOURCE_MISMATCH, keeping it whole', async () => {
      startPipeline(config, undefined, loadMappingStep);
      const receive = receiver();
      const xtaMessage = handedOver['an XTA 2 message']!(xbeteiligung0401);
      const cases = [
        {
          what: 'inbound XML to a JSON mapping',
          id: (await receive({ ars: ARS, service: JSON_MAPPED_SERVICE, reference: 'xta-1', ...xtaMessage }))
            .messageId,
          says: 'reads JSON, but the message holds a application/xml document',
        },
        {
          what: 'a non-XML document to an XML mapping',
          id: (
            await receive({
              ars: ARS,
              service: XML_MAPPED_SERVICE,
              reference: 'fit-csv',
              document: { mediaType: 'text/csv', content: 'verfahren\nBPL-0815-2024\n' },
              data: undefined,
            })
          ).messageId,
          says: 'reads XML, but the message holds a text/csv document',
        },
        {
          what: 'a portal JSON application to an XML mapping',
          id: (await accept(XML_MAPPED_SERVICE)).id,
          says: 'reads XML, but the message holds a JSON application',
        },
        {
          what: 'inbound JSON data to an XML mapping',
          id: (
            await receive({
              ars: ARS,
              service: XML_MAPPED_SERVICE,
              reference: 'fit-2',
              data: { verfahren: 'BPL-0815-2024' },
            })
          ).messageId,
          says: 'reads XML, but the message holds a JSON application',
        },
      ];
      for (const c of cases) {
        const before = (await store.getMessage(c.id))!;
        const dead = await until(statusOf(c.id, 'dead'), c.what, 15_000);
        expect(dead.lastError?.code, c.what).to.equal('AMT_MAPPING_SOURCE_MISMATCH');
        expect(dead.lastError?.message, c.what).to.include(c.says);
        const last = (await store.history(c.id)).at(-1);
        expect(last?.event, c.what).to.equal('dead-lettered');
        expect(last?.detail, c.what).to.include({ code: 'AMT_MAPPING_SOURCE_MISMATCH' });
        // Nothing lost: the dead letter keeps the payload as received, for a replay after a fix.
        expect(dead.payload, c.what).to.equal(before.payload);
      }
      const letters = await store.deadLetters({ limit: 10 });
      expect(letters.items.map((l) => l.message.id).sort()).to.deep.equal(cases.map((c) => c.id).sort());
      expect(deliveries).to.have.length(0);
    });

    it('reads inbound XML only through the guarded reader: a DOCTYPE is refused before parsing', async () => {
      startPipeline(config, undefined, loadMappingStep);
      const hostile = Buffer.from(
        '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n' +
          '<x:kommunal.Initiieren.0401 xmlns:x="https://www.xleitstelle.de/xbeteiligung/12">&e;</x:kommunal.Initiieren.0401>',
      );
      const { messageId } = await receiver()({
        ars: ARS,
        service: XML_MAPPED_SERVICE,
        reference: 'fit-doctype',
        ...handedOver['FIT-Connect XML Fachdaten']!(hostile),
      });
      const dead = await until(statusOf(messageId, 'dead'), 'refusal of the DOCTYPE', 15_000);
      expect(dead.lastError?.code).to.equal('AMT_XML_DOCTYPE_FORBIDDEN');
      expect(deliveries).to.have.length(0);
    });

    it('hands the verified identity stored at intake to the adapter, and none where there is none', async () => {
      const identity = identityFromAssertion({
        issuer: 'https://id.bund.de/idp',
        assertionId: '_8f3e2c1a-5b7d-4e9f-a0c2-6d4b8e1f3a57',
        subjectNameId: 'AAdzZWNyZXQxKzY3xRzYW5kYm94',
        subjectNameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
        authnContextClassRef: 'STORK-QAA-Level-3',
        authenticatedAt: Date.parse('2026-03-02T09:14:00Z'),
        expiresAt: Date.parse('2026-03-02T09:19:00Z'),
        attributes: new Map([
          [IDENTITY_ATTRIBUTES.givenName, ['Erika']],
          [IDENTITY_ATTRIBUTES.familyName, ['Mustermann']],
          [IDENTITY_ATTRIBUTES.birthDate, ['12.08.1964']],
          [IDENTITY_ATTRIBUTES.postalCode, ['48143']],
          [IDENTITY_ATTRIBUTES.locality, ['Münster']],
          [IDENTITY_ATTRIBUTES.pseudonym, ['bPK2:0b9a7f4e2d']],
        ]),
      });
      startPipeline();
      // Payloads as intake stores them (src/http/intake.ts): what the applicant typed, and beside
      // it the identity the IdP confirmed — when the citizen logged in.
      const loggedIn = await accept(
        SERVICE,
        config,
        canonicalJson({
          reference: 'PORTAL-2026-0101',
          applicant: { givenName: 'Eri', familyName: 'Muster' },
          data: { zone: 'A' },
          verifiedIdentity: identity,
        }),
      );
      const typedOnly = await accept(
        SERVICE,
        config,
        canonicalJson({
          reference: 'PORTAL-2026-0102',
          applicant: { givenName: 'Max', familyName: 'Mustermann' },
          data: { zone: 'B' },
        }),
      );
      // An inbound sender cannot smuggle one in: its data is never read as an identity.
      const { messageId: inbound } = await receiver()({
        ars: ARS,
        service: SERVICE,
        reference: 'fit-3',
        data: { verifiedIdentity: identity },
      });
      for (const id of [loggedIn.id, typedOnly.id, inbound]) await until(statusOf(id, 'delivered'), id);
      const byMessage = new Map(deliveries.map((d) => [d.messageId, d]));
      expect(byMessage.get(loggedIn.id)?.identity).to.deep.equal(identity);
      expect(byMessage.get(loggedIn.id)?.identity).to.include({
        issuer: 'https://id.bund.de/idp',
        trustLevel: 'substantiell',
        pseudonym: 'bPK2:0b9a7f4e2d',
        familyName: 'Mustermann',
      });
      expect(byMessage.get(typedOnly.id)).to.not.have.property('identity');
      expect(byMessage.get(inbound)).to.not.have.property('identity');
    });
  });
});
