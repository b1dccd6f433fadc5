/**
 * Scaling out: throughput of one, two and three gateway instances sharing one PostgreSQL, next to
 * one instance on the embedded SQLite store, in one run. Closed-loop intake load is spread evenly
 * over the instances; the clock stops when the local receiver has every accepted application.
 * CPU time of the gateways, of PostgreSQL and of this process (load generator and receiver) is
 * read from /proc to show where the time goes; at the end, the rows and bytes each application
 * leaves in the PostgreSQL tables.
 *
 *   npm run bench:scale [-- --requests 6000 --concurrency 64 --runs 3 --instances 1,2,3]
 */
import { readdirSync, readFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createTestDatabase, type TestDatabase } from '../test/store/pg-test-db.js';
import {
  PORTAL_KEY,
  application,
  freePort,
  spawnGateway,
  writeGatewayConfig,
  type GatewayProcess,
} from '../test/support/gateway-process.js';
import { startReceiver, type Receiver } from '../test/support/receiver.js';
import { closedLoop, median, percentile, type LoadResult, type Request } from './load.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '6000' },
    concurrency: { type: 'string', default: '64' },
    runs: { type: 'string', default: '3' },
    instances: { type: 'string', default: '1,2,3' },
  },
});
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);
const RUNS = Number(values.runs);
const POSTGRES_INSTANCES = values.instances.split(',').map(Number);

interface Scenario {
  readonly store: 'sqlite' | 'postgres';
  readonly instances: number;
}

const SCENARIOS: readonly Scenario[] = [
  { store: 'sqlite', instances: 1 },
  ...POSTGRES_INSTANCES.map((instances) => ({ store: 'postgres' as const, instances })),
];

const label = (s: Scenario): string => `${s.store}×${s.instances}`;

interface Measurement {
  readonly intake: number;
  readonly delivered: number;
  readonly p99: number;
  readonly drainSeconds: number;
  readonly cpu: CpuShare | undefined;
  /** Applications delivered in the measured interval. */
  readonly applications: number;
}

/** Seconds of CPU each party used during the measured interval, and how busy the machine was. */
interface CpuShare {
  readonly gateways: number;
  readonly postgres: number;
  readonly bench: number;
  readonly machineBusy: number;
  readonly seconds: number;
}

/** A Bewohnerparkausweis application padded to about 5 KB, like bench:e2e's. */
function request(reference: string): Request {
  const body = application(reference) as { data: Record<string, unknown> };
  body.data.remarks =
    'Stellplatznachweis liegt bei. Fahrzeug ist auf die Antragstellerin zugelassen. '.repeat(60);
  return {
    path: '/api/v1/applications',
    headers: { authorization: `Bearer ${PORTAL_KEY}`, 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify(body)),
  };
}

// --- CPU accounting from /proc (Linux); absent elsewhere ---

const CLOCK_TICKS_PER_SECOND = 100;

function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Every postgres process on the machine: the server is shared, so others' work is included. */
function postgresCpuSeconds(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.includes('(postgres)')) total += processCpuSeconds(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

function machineCpu(): { busy: number; total: number } {
  const [line] = readFileSync('/proc/stat', 'utf8').split('\n');
  const ticks = line!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  const total = ticks.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / CLOCK_TICKS_PER_SECOND, total: total / CLOCK_TICKS_PER_SECOND };
}

function cpuSnapshot(gateways: readonly GatewayProcess[]): () => CpuShare | undefined {
  if (!existsProc()) return () => undefined;
  const pids = gateways.map((g) => g.child.pid!);
  const gatewaysBefore = pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
  const postgresBefore = postgresCpuSeconds();
  const benchBefore = process.cpuUsage();
  const machineBefore = machineCpu();
  const started = performance.now();
  return () => {
    const machine = machineCpu();
    const bench = process.cpuUsage(benchBefore);
    return {
      gateways: pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0) - gatewaysBefore,
      postgres: postgresCpuSeconds() - postgresBefore,
      bench: (bench.user + bench.system) / 1e6,
      machineBusy: (machine.busy - machineBefore.busy) / (machine.total - machineBefore.total),
      seconds: (performance.now() - started) / 1000,
    };
  };
}

function existsProc(): boolean {
  try {
    return statSync('/proc/stat').isFile();
  } catch {
    return false;
  }
}

// --- one scenario ---

async function waitDelivered(receiver: Receiver, count: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (receiver.byDeliveryId.size < count && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  return performance.now();
}

/** A gateway that stops answering must fail the bench, not hang it. */
const LOAD_DEADLINE_MS = 300_000;

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the gateways within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** Sends `total` requests spread evenly over the instances, `concurrency` in flight in all. */
async function spreadLoad(
  gateways: readonly GatewayProcess[],
  total: number,
  concurrency: number,
  prefix: string,
): Promise<LoadResult> {
  const results = await Promise.all(
    gateways.map((g, i) => {
      const share = Math.floor(total / gateways.length) + (i < total % gateways.length ? 1 : 0);
      const inFlight = Math.max(1, Math.round(concurrency / gateways.length));
      return closedLoop(g.url, share, inFlight, (n) => request(`${prefix}-${i}-${n}`));
    }),
  );
  return {
    ok: results.reduce((sum, r) => sum + r.ok, 0),
    failed: results.reduce((sum, r) => sum + r.failed, 0),
    seconds: Math.max(...results.map((r) => r.seconds)),
    latenciesMs: results.flatMap((r) => r.latenciesMs),
  };
}

interface TableGrowth {
  readonly messages: number;
  readonly tables: { name: string; rows: number; bytes: number }[];
}

async function measure(
  scenario: Scenario,
  receiver: Receiver,
  run: number,
): Promise<{ result: Measurement; growth: TableGrowth | undefined }> {
  const dirs: string[] = [];
  let database: TestDatabase | undefined;
  const gateways: GatewayProcess[] = [];
  try {
    if (scenario.store === 'postgres') database = await createTestDatabase();
    for (let i = 0; i < scenario.instances; i++) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'amt-scale-'));
      dirs.push(dir);
      const port = await freePort();
      const config = writeGatewayConfig({ dir, receiverUrl: receiver.url, port, postgresUrl: database?.url });
      gateways.push(await spawnGateway(config, port, 60_000));
    }
    // Warm-up: JIT, connection pools, prepared statements.
    receiver.byDeliveryId.clear();
    const warm = await withDeadline(spreadLoad(gateways, 300, 16, `warm-${run}`), LOAD_DEADLINE_MS);
    await waitDelivered(receiver, warm.ok, 60_000);
    receiver.byDeliveryId.clear();
    receiver.deliveryIdsByMessage.clear();

    const cpu = cpuSnapshot(gateways);
    const started = performance.now();
    const load = await withDeadline(
      spreadLoad(gateways, REQUESTS, CONCURRENCY, `run-${run}`),
      LOAD_DEADLINE_MS,
    );
    const intakeEnded = performance.now();
    const done = await waitDelivered(receiver, load.ok, 180_000);
    const share = cpu();
    const delivered = receiver.byDeliveryId.size;
    if (load.failed > 0 || delivered < load.ok) {
      console.log(
        `    ${label(scenario)}: ${load.failed} failed requests, ${load.ok - delivered} undelivered`,
      );
    }
    const growth = database ? await tableGrowth(database) : undefined;
    return {
      result: {
        intake: load.ok / load.seconds,
        delivered: delivered / ((done - started) / 1000),
        p99: percentile(load.latenciesMs, 99),
        drainSeconds: (done - intakeEnded) / 1000,
        cpu: share,
        applications: delivered,
      },
      growth,
    };
  } finally {
    await Promise.all(
      gateways.map(async (g) => {
        g.child.kill('SIGTERM');
        await g.exited;
      }),
    );
    await database?.drop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

const STORE_TABLES = [
  'messages',
  'message_history',
  'message_attempts',
  'message_attachments',
  'dead_letters',
];

async function tableGrowth(database: TestDatabase): Promise<TableGrowth> {
  await database.query('ANALYZE');
  const rows = await database.query<{ name: string; rows: string; bytes: string }>(
    `SELECT c.relname AS name, (xpath('/row/n/text()',
        query_to_xml(format('SELECT count(*) AS n FROM %I', c.relname), false, true, '')))[1]::text AS rows,
       pg_total_relation_size(c.oid) AS bytes
     FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1)`,
    [STORE_TABLES],
  );
  const tables = rows.map((r) => ({ name: r.name, rows: Number(r.rows), bytes: Number(r.bytes) }));
  const messages = tables.find((t) => t.name === 'messages')?.rows ?? 0;
  return { messages, tables: STORE_TABLES.map((n) => tables.find((t) => t.name === n)!).filter(Boolean) };
}

// --- output ---

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function load(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
}

async function main(): Promise<void> {
  const receiver = await startReceiver({ keepBodies: false });
  console.log(
    `bench:scale — ${fmt(REQUESTS)} applications of ${fmt(request('x').body.length)} bytes per scenario, ` +
      `${CONCURRENCY} in flight spread over the instances, ${RUNS} runs; JSON pass-through route → http adapter`,
  );
  console.log(`machine: ${os.cpus().length} cores, load average ${load()} (1 / 5 / 15 min) at start`);
  const results = new Map<string, Measurement[]>(SCENARIOS.map((s) => [label(s), []]));
  let growth: TableGrowth | undefined;

  for (let run = 0; run < RUNS; run++) {
    const line: string[] = [];
    for (const scenario of SCENARIOS) {
      const { result, growth: g } = await measure(scenario, receiver, run);
      results.get(label(scenario))!.push(result);
      growth = g ?? growth;
      line.push(`${label(scenario)} ${fmt(result.intake)}/${fmt(result.delivered)}`);
    }
    console.log(`  run ${run + 1} (intake/delivered per s): ${line.join(' | ')}   load ${load()}`);
  }
  await receiver.close();

  const baseline = median(results.get('postgres×1')?.map((m) => m.delivered) ?? [NaN]);
  const sqlite = median(results.get('sqlite×1')!.map((m) => m.delivered));
  console.log('');
  console.log('medians over runs');
  console.log(
    '  scenario      intake/s  p99 ms  delivered/s  drain s  vs pg×1  vs sqlite   CPU ms per application: gateways  postgres  load+receiver   machine busy',
  );
  for (const scenario of SCENARIOS) {
    const ms = results.get(label(scenario))!;
    const delivered = median(ms.map((m) => m.delivered));
    const cpu = ms
      .filter((m) => m.cpu !== undefined)
      .map((m) => ({ ...m.cpu!, applications: m.applications }));
    const perApplication = (part: (c: CpuShare) => number): string =>
      fmt(median(cpu.map((c) => (part(c) * 1000) / c.applications)), 2);
    const cpuText =
      cpu.length === 0
        ? 'n/a'
        : `${perApplication((c) => c.gateways).padStart(33)}  ${perApplication((c) => c.postgres).padStart(8)}  ` +
          `${perApplication((c) => c.bench).padStart(13)}   ${fmt(median(cpu.map((c) => c.machineBusy)) * 100).padStart(10)} %`;
    console.log(
      `  ${label(scenario).padEnd(12)} ${fmt(median(ms.map((m) => m.intake))).padStart(9)} ${fmt(median(ms.map((m) => m.p99)), 1).padStart(7)} ` +
        `${fmt(delivered).padStart(12)} ${fmt(median(ms.map((m) => m.drainSeconds)), 1).padStart(8)} ` +
        `${fmt(delivered / baseline, 2).padStart(7)}× ${fmt(delivered / sqlite, 2).padStart(8)}×${cpuText}`,
    );
  }
  console.log(
    `  (CPU time from /proc; "postgres" counts every postgres process on the machine; machine busy = all cores, all processes)`,
  );
  if (growth && growth.messages > 0) {
    console.log('');
    console.log(`PostgreSQL tables after the last run (${fmt(growth.messages)} delivered applications):`);
    let total = 0;
    for (const t of growth.tables) {
      total += t.bytes;
      console.log(
        `  ${t.name.padEnd(20)} ${fmt(t.rows / growth.messages, 2).padStart(6)} rows/application  ` +
          `${fmt(t.bytes / growth.messages).padStart(7)} bytes/application (table, indexes, TOAST)`,
      );
    }
    console.log(
      `  ${'all'.padEnd(20)} ${''.padStart(6)}                   ${fmt(total / growth.messages).padStart(7)} bytes/application`,
    );
  }
  console.log(`load average at the end: ${load()}`);
}

await main();
