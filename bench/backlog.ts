/**
 * Draining a backlog: the store of a stopped gateway is filled with N accepted applications
 * (100,000 by default, about 5 KB each like bench:e2e's) directly through the store API
 * (`accept` in batches, one commit each, with ids made as intake makes them), then the gateway process (`amtsbote start`, http adapter)
 * starts against a loopback receiver that answers 200 at once. Measured: time until the store
 * counts every message delivered (`amtsbote_messages{status}` from /metrics, polled every second),
 * delivered/s as the median of those per-second samples, the gateway's resident memory over the
 * drain (VmRSS sampled every 20 ms in a worker thread, VmHWM for the lifetime peak), and whether
 * the receiver saw every delivery id exactly once. Baseline in the same run: a bare Node client
 * process posting the same bodies to the same receiver with the pipeline's concurrency (64) —
 * what Node itself manages without a store. On PostgreSQL every run gets a fresh database, as in
 * bench:scale. MB = 2^20 bytes. Linux only (/proc).
 *
 *   node --import tsx bench/backlog.ts [--messages 100000] [--store sqlite|postgres|sqlite,postgres] [--batch 1000]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { canonicalJson } from '../src/canonical-json.js';
import { newId } from '../src/ids.js';
import type { NewMessage, Store } from '../src/store/types.js';
import { createTestDatabase, type TestDatabase } from '../test/store/pg-test-db.js';
import {
  ARS,
  SERVICE,
  application,
  freePort,
  spawnGateway,
  writeGatewayConfig,
  type GatewayProcess,
} from '../test/support/gateway-process.js';
import { closedLoop, median } from './load.js';
import {
  fmt,
  mb,
  readPeakRss,
  readRss,
  sampleRss,
  startCountingReceiver,
  type CountingReceiver,
} from './support.js';

const SELF = fileURLToPath(import.meta.url);

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    store: { type: 'string', default: 'sqlite' },
    batch: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '64' },
    /** Internal: run as the bare Node client posting to this receiver URL, print the result. */
    'bare-client': { type: 'string' },
  },
});
const MESSAGES = Number(values.messages);
const BATCH = Number(values.batch);
/** The pipeline's default concurrency; the bare client keeps as many requests in flight. */
const CONCURRENCY = Number(values.concurrency);

/** DESIGN.md §7: "100,000 queued while the receiver is down drain at ≥ 1,000/s once it is back, memory flat". */
const TARGET_MESSAGES = 100_000;
const TARGET_RATE = 1_000;
const POLL_MS = 1_000;
const RSS_INTERVAL_MS = 20;

type StoreKind = 'sqlite' | 'postgres';

/** The stored payload of a Bewohnerparkausweis application padded to about 5 KB (as the intake stores it). */
function payload(reference: string): string {
  const body = application(reference) as {
    reference: string;
    applicant: unknown;
    data: Record<string, unknown>;
  };
  body.data.remarks =
    'Stellplatznachweis liegt bei. Fahrzeug ist auf die Antragstellerin zugelassen. '.repeat(60);
  return canonicalJson({ reference: body.reference, applicant: body.applicant, data: body.data });
}

// --- baseline: a bare Node client in its own process, like the gateway ---

async function bareClient(url: string): Promise<void> {
  const body = Buffer.from(payload('BARE'));
  const result = await closedLoop(url, MESSAGES, CONCURRENCY, (i) => ({
    path: '/import',
    headers: { 'content-type': 'application/json', 'idempotency-key': `bare-${i}` },
    body,
  }));
  process.stdout.write(
    `${JSON.stringify({ ok: result.ok, failed: result.failed, seconds: result.seconds })}\n`,
  );
}

async function runBareClient(receiver: CountingReceiver): Promise<{ rate: number; failed: number }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      SELF,
      '--bare-client',
      receiver.url,
      '--messages',
      String(MESSAGES),
      '--concurrency',
      String(CONCURRENCY),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the bare client exited with ${code}`);
  const result = JSON.parse(output) as { ok: number; failed: number; seconds: number };
  return { rate: result.ok / result.seconds, failed: result.failed };
}

// --- filling the store of the stopped gateway ---

async function openStore(kind: StoreKind, dir: string, database: TestDatabase | undefined): Promise<Store> {
  if (kind === 'sqlite') {
    const { SqliteStore } = await import('../src/store/sqlite.js');
    // Where the generated config's `dataDir: ./data` and `store: { type: sqlite }` put it.
    return SqliteStore.open(path.join(dir, 'data', 'amtsbote.db'));
  }
  const { PostgresStore } = await import('../src/store/postgres.js');
  return PostgresStore.open(database!.url, { poolSize: 2 });
}

async function fill(
  store: Store,
  total: number,
): Promise<{ seconds: number; deliveryIds: Set<string>; payloadBytes: number }> {
  await store.migrate();
  const deliveryIds = new Set<string>();
  const text = payload('BACKLOG');
  const started = performance.now();
  for (let offset = 0; offset < total; offset += BATCH) {
    const batch: NewMessage[] = [];
    for (let i = offset; i < Math.min(total, offset + BATCH); i++) {
      const deliveryId = newId();
      deliveryIds.add(deliveryId);
      batch.push({
        id: newId(),
        deliveryId,
        direction: 'outbound',
        tenantId: 'muenster',
        ars: ARS,
        service: SERVICE,
        reference: `BACKLOG-${i}`,
        clientId: 'portal',
        routeId: 'parken',
        target: 'fachverfahren',
        payload: text,
        attachments: [],
        idempotency: undefined,
        receivedAt: Date.now(),
      });
    }
    await store.accept(batch);
  }
  const seconds = (performance.now() - started) / 1000;
  await store.close();
  return { seconds, deliveryIds, payloadBytes: Buffer.byteLength(text) };
}

// --- the drain ---

interface Sample {
  readonly at: number;
  readonly byStatus: Record<string, number>;
  readonly rss: number;
}

async function queueDepth(gateway: GatewayProcess): Promise<Record<string, number>> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  const byStatus: Record<string, number> = {};
  for (const m of text.matchAll(/^amtsbote_messages\{status="(\w+)"\} (\d+)/gm))
    byStatus[m[1]!] = Number(m[2]);
  return byStatus;
}

interface DrainResult {
  readonly kind: StoreKind;
  readonly fillSeconds: number;
  readonly payloadBytes: number;
  readonly readySeconds: number;
  /** From the gateway's spawn until /metrics counted every message delivered. */
  readonly totalSeconds: number;
  /** Receiver side: first to last delivery. */
  readonly deliverySeconds: number;
  readonly perSecond: number[];
  readonly samples: Sample[];
  readonly sampledPeak: number;
  readonly lifetimePeak: number;
  readonly final: Record<string, number>;
  readonly receipts: { missing: number; duplicated: number; extraReceipts: number; unknown: number };
}

async function drain(kind: StoreKind, receiver: CountingReceiver): Promise<DrainResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'amt-backlog-'));
  let database: TestDatabase | undefined;
  let gateway: GatewayProcess | undefined;
  try {
    if (kind === 'postgres') database = await createTestDatabase();
    const port = await freePort();
    const config = writeGatewayConfig({ dir, receiverUrl: receiver.url, port, postgresUrl: database?.url });
    const filled = await fill(await openStore(kind, dir, database), MESSAGES);
    console.log(
      `  ${kind}: ${fmt(MESSAGES)} messages of ${fmt(filled.payloadBytes)} bytes stored through the store API ` +
        `(accept, batches of ${fmt(BATCH)}) in ${fmt(filled.seconds, 1)} s (${fmt(MESSAGES / filled.seconds)}/s)`,
    );

    receiver.reset();
    const spawned = performance.now();
    gateway = await spawnGateway(config, port, 120_000);
    const ready = performance.now();
    const pid = gateway.child.pid!;
    const sampler = sampleRss(pid, RSS_INTERVAL_MS);
    const samples: Sample[] = [];
    const deadline = ready + 120_000 + MESSAGES * 5;
    let done = false;
    let peaks: number[];
    try {
      while (!done) {
        const byStatus = await queueDepth(gateway);
        samples.push({ at: performance.now(), byStatus, rss: readRss(pid) });
        const finished = (byStatus.delivered ?? 0) + (byStatus.dead ?? 0);
        done = finished >= MESSAGES;
        if (done) break;
        if (performance.now() > deadline) {
          throw new Error(`not drained in time: ${JSON.stringify(byStatus)}`);
        }
        // Once the receiver has everything, look closely for the store to record it.
        const next = performance.now() + POLL_MS;
        while (performance.now() < next && receiver.completed < MESSAGES)
          await new Promise((r) => setTimeout(r, 20));
        if (receiver.completed >= MESSAGES) await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      peaks = (await sampler.stop()).peaks;
    }
    const finishedAt = samples.at(-1)!.at;
    const lifetimePeak = readPeakRss(pid);
    // Late duplicates (an expired lease redelivering) would arrive now.
    await new Promise((r) => setTimeout(r, 1_000));

    const perSecond: number[] = [];
    for (let i = 1; i < samples.length; i++) {
      const before = samples[i - 1]!;
      const after = samples[i]!;
      // Only intervals that ended with backlog left: the last one is cut short by the drain.
      if ((after.byStatus.delivered ?? 0) >= MESSAGES) break;
      perSecond.push(
        ((after.byStatus.delivered ?? 0) - (before.byStatus.delivered ?? 0)) /
          ((after.at - before.at) / 1000),
      );
    }

    let missing = 0;
    let duplicated = 0;
    let extraReceipts = 0;
    for (const id of filled.deliveryIds) {
      const n = receiver.receiptsByDeliveryId.get(id) ?? 0;
      if (n === 0) missing++;
      if (n > 1) {
        duplicated++;
        extraReceipts += n - 1;
      }
    }
    let unknown = 0;
    for (const id of receiver.receiptsByDeliveryId.keys()) if (!filled.deliveryIds.has(id)) unknown++;

    return {
      kind,
      fillSeconds: filled.seconds,
      payloadBytes: filled.payloadBytes,
      readySeconds: (ready - spawned) / 1000,
      totalSeconds: (finishedAt - spawned) / 1000,
      deliverySeconds: ((receiver.lastAt ?? NaN) - (receiver.firstAt ?? NaN)) / 1000,
      perSecond,
      samples,
      sampledPeak: peaks[0]!,
      lifetimePeak,
      final: samples.at(-1)!.byStatus,
      receipts: { missing, duplicated, extraReceipts, unknown },
    };
  } catch (err) {
    if (gateway) console.error(gateway.output());
    throw err;
  } finally {
    if (gateway) {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
    }
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- output ---

/** RSS at the samples nearest to 0, 25, 50, 75 and 100 % of the backlog delivered. */
function rssCourse(samples: readonly Sample[]): string {
  return [0, 0.25, 0.5, 0.75, 1]
    .map((share) => {
      const sample = samples.find((s) => (s.byStatus.delivered ?? 0) >= share * MESSAGES) ?? samples.at(-1)!;
      return `${Math.round(share * 100)} % ${mb(sample.rss)}`;
    })
    .join(', ');
}

function report(result: DrainResult, bareRate: number): void {
  const rate = median(result.perSecond);
  const rateText =
    result.perSecond.length > 0
      ? `${fmt(rate)}/s (median of ${result.perSecond.length} one-second samples, ` +
        `min ${fmt(Math.min(...result.perSecond))}, max ${fmt(Math.max(...result.perSecond))})`
      : 'n/a (drained within the first sample; more messages give per-second samples)';
  const overall = MESSAGES / result.deliverySeconds;
  const first = result.samples[0]!.rss;
  const last = result.samples.at(-1)!.rss;
  const { missing, duplicated, extraReceipts, unknown } = result.receipts;
  const exactlyOnce = missing === 0 && duplicated === 0 && unknown === 0;
  const others = Object.entries(result.final)
    .filter(([status, n]) => status !== 'delivered' && n > 0)
    .map(([status, n]) => `${status} ${fmt(n)}`);

  console.log(`${result.kind}`);
  console.log(
    `  all ${fmt(MESSAGES)} delivered ${fmt(result.totalSeconds, 1)} s after the gateway was started ` +
      `(ready after ${fmt(result.readySeconds, 1)} s; receiver: first to last delivery ${fmt(result.deliverySeconds, 1)} s)` +
      (others.length > 0 ? `; also ${others.join(', ')}` : ''),
  );
  console.log(`  delivered/s             ${rateText}`);
  console.log(
    `  delivered/s overall     ${fmt(overall)}/s (receiver, first to last delivery); ` +
      `ratio to the bare Node client ${fmt((result.perSecond.length > 0 ? rate : overall) / bareRate, 2)}×`,
  );
  console.log(
    `  gateway RSS MB          at ready ${mb(first)}, at the end ${mb(last)} (${last >= first ? '+' : ''}${mb(last - first)}); ` +
      `peak ${mb(result.sampledPeak)} sampled, ${mb(result.lifetimePeak)} VmHWM (lifetime, startup included)`,
  );
  console.log(`  RSS MB by share delivered: ${rssCourse(result.samples)}`);
  console.log(
    `  receiver saw every delivery id exactly once: ${exactlyOnce ? 'yes' : 'NO'} ` +
      `(${fmt(MESSAGES - missing)} of ${fmt(MESSAGES)} ids received; ${fmt(missing)} missing, ` +
      `${fmt(duplicated)} received more than once (${fmt(extraReceipts)} extra receipts), ${fmt(unknown)} unknown)`,
  );
  const verdict = (result.perSecond.length > 0 ? rate : overall) >= TARGET_RATE ? 'PASS' : 'MISS';
  const note =
    MESSAGES === TARGET_MESSAGES ? '' : ` — measured with ${fmt(MESSAGES)}, not the target's 100,000`;
  console.log(
    `  target (DESIGN.md §7): 100,000 queued drain at ≥ 1,000/s once the receiver is back, memory flat → ` +
      `rate ${verdict}${note}; memory ${last >= first ? '+' : ''}${mb(last - first)} MB from ready to drained ` +
      `(DESIGN.md names no threshold for "flat")`,
  );
}

async function main(): Promise<void> {
  const kinds = values.store.split(',').map((s) => s.trim());
  for (const kind of kinds) {
    if (kind !== 'sqlite' && kind !== 'postgres') throw new Error(`--store: sqlite or postgres, not ${kind}`);
  }
  if (!(MESSAGES > 0) || !(BATCH > 0)) throw new Error('--messages and --batch must be positive');
  console.log(
    `bench:backlog — ${fmt(MESSAGES)} accepted applications waiting in the store of a stopped gateway (status received), ` +
      `then the gateway starts; http adapter → loopback receiver answering 200 at once; store: ${kinds.join(', ')}`,
  );
  console.log(
    `machine: ${os.cpus().length} cores, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')} (1 / 5 / 15 min)`,
  );
  const receiver = await startCountingReceiver();
  try {
    const bare = await runBareClient(receiver);
    console.log(
      `  baseline: bare Node client process → same receiver, ${fmt(MESSAGES)} requests, ${CONCURRENCY} in flight: ` +
        `${fmt(bare.rate)}/s${bare.failed > 0 ? ` (${fmt(bare.failed)} failed)` : ''}`,
    );
    const results: DrainResult[] = [];
    for (const kind of kinds) results.push(await drain(kind as StoreKind, receiver));
    console.log('');
    for (const result of results) report(result, bare.rate);
  } finally {
    await receiver.close();
  }
}

if (values['bare-client'] !== undefined) await bareClient(values['bare-client']);
else await main();
