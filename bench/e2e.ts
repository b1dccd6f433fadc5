/**
 * End-to-end throughput: 5 KB JSON applications → durable intake → mapping → xdomea XML → XSD
 * validation → delivery to a local HTTP receiver, against a bare Node forwarder (HTTP in → HTTP
 * out, nothing stored or mapped) measured in the same run, with the CPU each delivered application
 * cost the gateway's threads and the bench process (Linux). Then intake latency at a fixed rate,
 * on the mapped route and on a pass-through route.
 *
 * Every closed-loop run first sends `--warmup-requests` applications that are not counted (and
 * waits until the gateway delivered them), so that both sides are measured with their code
 * compiled by the JIT: sustained throughput, not the first second after a start.
 *
 * Last, the sustained rate: offered rates stepped up on one gateway until the deliveries no
 * longer keep pace.
 *
 *   npm run bench:e2e [-- --requests 10000 --warmup-requests 2000 --concurrency 64 --runs 3
 *                         --rate 1000 --seconds 5 --warmup 3 --steps-from 1000 --steps-to 2200
 *                         --step-by 100 --gateway-node-options=--v8-pool-size=1]
 *
 * The steps go by 100 so that the target's 1,500/s is one of them.
 *
 * `--gateway-node-options=FLAGS`: Node flags for the gateway process only (space-separated; the `=`
 * form, since the value starts with a dash), to measure
 * a setting as it would be deployed; the forwarder keeps Node's defaults.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startReceiver, type Receiver } from '../test/support/receiver.js';
import {
  ARS,
  PORTAL_KEY,
  SERVICE,
  freePort,
  spawnGateway,
  writeGatewayConfig,
  type GatewayProcess,
} from '../test/support/gateway-process.js';
import { closedLoop, median, openLoop, percentile, type LoadResult, type Request } from './load.js';
import { readThreadCpu } from './support.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAPPING = path.join(ROOT, 'mappings/bewohnerparken/bewohnerparken.mapping.yaml');

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '10000' },
    'warmup-requests': { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '64' },
    runs: { type: 'string', default: '3' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '3' },
    'steps-from': { type: 'string', default: '1000' },
    'steps-to': { type: 'string', default: '2200' },
    'step-by': { type: 'string', default: '100' },
    'gateway-node-options': { type: 'string', default: '' },
  },
});
const GATEWAY_NODE_ARGS = values['gateway-node-options'].split(/\s+/).filter(Boolean);
const REQUESTS = Number(values.requests);
const WARMUP_REQUESTS = Number(values['warmup-requests']);
const CONCURRENCY = Number(values.concurrency);
const RUNS = Number(values.runs);

const SAMPLE = path.join(ROOT, 'mappings/bewohnerparken/sample-application.json');

/**
 * The shipped Bewohnerparkausweis sample application (what the mapping expects), addressed to the
 * bench tenant and padded to about 5 KB with free-text remarks.
 */
const sample = JSON.parse(readFileSync(SAMPLE, 'utf8')) as { data: Record<string, unknown> } & Record<
  string,
  unknown
>;
const remarks = 'Stellplatznachweis liegt bei. Fahrzeug ist auf die Antragstellerin zugelassen. ';
function applicationBody(i: number, run: string): Buffer {
  const application = {
    ...sample,
    tenant: ARS,
    service: SERVICE,
    reference: `BENCH-${run}-${i}`,
    data: { ...sample.data, remarks: remarks.repeat(PADDING) },
  };
  return Buffer.from(JSON.stringify(application));
}
const PADDING = Math.max(0, Math.round((5_000 - JSON.stringify(sample).length) / remarks.length));

function request(i: number, run: string): Request {
  return {
    path: '/api/v1/applications',
    headers: { authorization: `Bearer ${PORTAL_KEY}`, 'content-type': 'application/json' },
    body: applicationBody(i, run),
  };
}

/** The requests of one run, built before it starts so the load generator only sends. */
function requests(count: number, run: string): (i: number) => Request {
  const all = Array.from({ length: count }, (_, i) => request(i, run));
  return (i) => all[i]!;
}

async function startForwarder(target: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bench/forwarder.ts'), target, '0'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((resolve) =>
    child.stdout!.on('data', (c: Buffer) => {
      const m = /listening (\d+)/.exec(c.toString());
      if (m) resolve(Number(m[1]));
    }),
  );
  return { url: `http://127.0.0.1:${port}`, child };
}

/** The bench gateway's configuration: http delivery to the receiver, with the mapping if there is one. */
function gatewayConfig(dir: string, receiverUrl: string, port: number, mapped: boolean): string {
  const config = writeGatewayConfig({ dir, receiverUrl, port });
  if (mapped) {
    const text = readFileSync(config, 'utf8').replace(
      'adapter: fachverfahren }',
      `adapter: fachverfahren, mapping: '${MAPPING}' }`,
    );
    writeFileSync(config, text);
  }
  return config;
}

/** A gateway process on a fresh data directory delivering to the receiver; `stop()` removes both. */
async function startGateway(
  receiver: Receiver,
  mapped: boolean,
): Promise<GatewayProcess & { stop(): Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'amt-bench-'));
  const port = await freePort();
  const gateway = await spawnGateway(
    gatewayConfig(dir, receiver.url, port, mapped),
    port,
    undefined,
    GATEWAY_NODE_ARGS,
  );
  return {
    ...gateway,
    async stop() {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitDelivered(receiver: Receiver, count: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (receiver.byDeliveryId.size < count && performance.now() < deadline)
    await new Promise((r) => setTimeout(r, 5));
  return performance.now();
}

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function main(): Promise<void> {
  const mapped = existsSync(MAPPING);
  const receiver = await startReceiver({ keepBodies: false });
  const baseline: number[] = [];
  const intake: number[] = [];
  const endToEnd: number[] = [];
  const intakeP50: number[] = [];
  const intakeP99: number[] = [];
  const cpu: { main: number; others: number; bench: number }[] = [];
  console.log(
    `bench:e2e — ${REQUESTS} applications of ${applicationBody(0, 'x').length} bytes after ${WARMUP_REQUESTS} uncounted, concurrency ${CONCURRENCY}, ${RUNS} runs`,
  );
  console.log(
    `route: ${mapped ? 'mapping bewohnerparken → xdomea XML, XSD-validated' : 'JSON pass-through (mapping file not found)'} → http adapter`,
  );
  if (GATEWAY_NODE_ARGS.length > 0) console.log(`gateway Node flags: ${GATEWAY_NODE_ARGS.join(' ')}`);

  for (let run = 0; run < RUNS; run++) {
    const forwarder = await startForwarder(`${receiver.url}/import`);
    await closedLoop(forwarder.url, WARMUP_REQUESTS, CONCURRENCY, requests(WARMUP_REQUESTS, `fwdw${run}`));
    const base = await closedLoop(forwarder.url, REQUESTS, CONCURRENCY, requests(REQUESTS, `fwd${run}`));
    forwarder.child.kill();
    baseline.push(base.ok / base.seconds);

    const gateway = await startGateway(receiver, mapped);
    receiver.byDeliveryId.clear();
    const warm = await closedLoop(
      gateway.url,
      WARMUP_REQUESTS,
      CONCURRENCY,
      requests(WARMUP_REQUESTS, `gww${run}`),
    );
    await waitDelivered(receiver, warm.ok, 120_000);
    receiver.byDeliveryId.clear();
    const make = requests(REQUESTS, `gw${run}`);
    const cpuBefore = readThreadCpu(gateway.child.pid!);
    const benchBefore = process.cpuUsage();
    const started = performance.now();
    const load = await closedLoop(gateway.url, REQUESTS, CONCURRENCY, make);
    const done = await waitDelivered(receiver, load.ok, 120_000);
    const delivered = receiver.byDeliveryId.size;
    const cpuAfter = readThreadCpu(gateway.child.pid!);
    const benchCpu = process.cpuUsage(benchBefore);
    if (cpuBefore && cpuAfter && delivered > 0) {
      cpu.push({
        main: (cpuAfter.mainMs - cpuBefore.mainMs) / delivered,
        others: (cpuAfter.othersMs - cpuBefore.othersMs) / delivered,
        bench: (benchCpu.user + benchCpu.system) / 1000 / delivered,
      });
    }
    await gateway.stop();
    if (load.failed > 0 || delivered < load.ok)
      console.log(`  run ${run + 1}: ${load.failed} failed requests, ${load.ok - delivered} undelivered`);
    intake.push(load.ok / load.seconds);
    endToEnd.push(delivered / ((done - started) / 1000));
    intakeP50.push(percentile(load.latenciesMs, 50));
    intakeP99.push(percentile(load.latenciesMs, 99));
    console.log(
      `  run ${run + 1}: forwarder ${fmt(baseline[run]!)} req/s | gateway intake ${fmt(intake[run]!)} req/s, end to end ${fmt(endToEnd[run]!)} delivered/s`,
    );
  }

  // Intake latency at a fixed arrival rate (open loop), on the same route: the mapping and the
  // deliveries run while the requests come in. Counted after a warm-up at the same rate. Then
  // the same on a pass-through route (http delivery of the JSON, no mapping, no XSD).
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  const pacedRuns = async (withMapping: boolean, label: string): Promise<LoadResult[]> => {
    const results: LoadResult[] = [];
    for (let run = 0; run < RUNS; run++) {
      const gateway = await startGateway(receiver, withMapping);
      const result = await openLoop(
        gateway.url,
        rate,
        seconds,
        requests(Math.round(rate * (warmup + seconds)), `${label}${run}`),
        warmup,
      );
      await gateway.stop();
      results.push(result);
      console.log(
        `  open loop ${label} run ${run + 1}: ${result.ok} ok, ${result.failed} failed, p50 ${fmt(percentile(result.latenciesMs, 50), 1)} ms, p99 ${fmt(percentile(result.latenciesMs, 99), 1)} ms, max ${fmt(percentile(result.latenciesMs, 100), 1)} ms`,
      );
    }
    return results;
  };
  const paced = await pacedRuns(mapped, mapped ? 'mapped' : 'pass-through');
  const passThrough = mapped ? await pacedRuns(false, 'pass-through') : undefined;

  // Sustained rate: one gateway, offered rates stepped up (1 s warm-up + `seconds` each). A rate
  // is sustained when the deliveries keep pace: once the step's last request is answered, all
  // of its applications are delivered within 500 ms (the ones still in flight). The burst above
  // lets intake run ahead and the deliveries catch up afterwards; this is the steady state.
  const steps: { rate: number; p99: number; lagMs: number; sustained: boolean }[] = [];
  {
    const gateway = await startGateway(receiver, mapped);
    receiver.byDeliveryId.clear();
    let accepted = 0;
    const from = Number(values['steps-from']);
    const to = Number(values['steps-to']);
    const by = Number(values['step-by']);
    for (let stepRate = from; stepRate <= to; stepRate += by) {
      const result = await openLoop(
        gateway.url,
        stepRate,
        seconds,
        requests(Math.round(stepRate * (1 + seconds)), `step${stepRate}-`),
        1,
      );
      accepted += Math.round(stepRate * (1 + seconds)) - result.failed;
      const answered = performance.now();
      const caughtUp = await waitDelivered(receiver, accepted, 30_000);
      const lagMs = caughtUp - answered;
      const sustained = result.failed === 0 && lagMs <= 500;
      steps.push({ rate: stepRate, p99: percentile(result.latenciesMs, 99), lagMs, sustained });
      console.log(
        `  step ${fmt(stepRate)}/s: ${result.failed} failed, intake p99 ${fmt(percentile(result.latenciesMs, 99), 1)} ms, deliveries caught up ${fmt(lagMs)} ms after the last answer${sustained ? '' : ' — not sustained'}`,
      );
      if (!sustained) break;
    }
    await gateway.stop();
  }
  await receiver.close();

  const ratio = median(endToEnd) / median(baseline);
  console.log('');
  console.log('medians over runs');
  console.log(`  bare forwarder (baseline)      ${fmt(median(baseline))} req/s`);
  console.log(
    `  gateway intake (202 durable)   ${fmt(median(intake))} req/s   p50 ${fmt(median(intakeP50), 1)} ms  p99 ${fmt(median(intakeP99), 1)} ms (closed loop, ${CONCURRENCY} in flight)`,
  );
  console.log(
    `  gateway end to end (delivered) ${fmt(median(endToEnd))} applications/s   ratio to baseline ${fmt(ratio, 2)}×`,
  );
  if (cpu.length > 0) {
    const m = (pick: (c: (typeof cpu)[number]) => number): string => fmt(median(cpu.map(pick)), 3);
    console.log(
      `  CPU per delivered application  gateway main thread ${m((c) => c.main)} ms, its other threads ${m((c) => c.others)} ms (mapping, GC, I/O); load generator + receiver ${m((c) => c.bench)} ms`,
    );
  }
  const summary = (results: readonly LoadResult[]): string => {
    const at = (p: number): number => median(results.map((r) => percentile(r.latenciesMs, p)));
    const ok = results.reduce((n, r) => n + r.ok, 0);
    const failed = results.reduce((n, r) => n + r.failed, 0);
    return `${ok} ok, ${failed} failed, p50 ${fmt(at(50), 1)} ms, p99 ${fmt(at(99), 1)} ms, max ${fmt(at(100), 1)} ms`;
  };
  console.log(
    `  intake at ${rate}/s for ${seconds}s after ${warmup}s warm-up (open loop, medians of ${RUNS} runs)`,
  );
  console.log(`    ${mapped ? 'mapped route' : 'pass-through route'}: ${summary(paced)}`);
  if (passThrough) console.log(`    pass-through route: ${summary(passThrough)}`);
  const held = steps.filter((step) => step.sustained);
  const highest = held[held.length - 1];
  console.log(
    `  sustained (stepped open loop, ${seconds}s per step): ${highest ? `${fmt(highest.rate)} applications/s delivered as offered, intake p99 ${fmt(highest.p99, 1)} ms` : `not even ${values['steps-from']}/s`}${held.length === steps.length ? ' (highest step tried)' : ''}`,
  );

  // The targets of DESIGN.md §7, read off this run (they are about the mapped route).
  if (!mapped) return;
  const verdict = (met: boolean): string => (met ? 'met' : 'missed');
  console.log('');
  console.log('targets (DESIGN.md §7) in this run');
  const sustainedRate = highest?.rate ?? 0;
  const untried = held.length === steps.length && sustainedRate < 1_500;
  console.log(
    `  sustained ≥ 1,500 applications/s: ${untried ? `not measured (the steps ended at ${fmt(sustainedRate)}/s)` : verdict(sustainedRate >= 1_500)}`,
  );
  console.log(`  end to end ≥ 0.4× the bare forwarder: ${verdict(ratio >= 0.4)} (${fmt(ratio, 2)}×)`);
  if (rate === 1_000) {
    const p99 = median(paced.map((r) => percentile(r.latenciesMs, 99)));
    console.log(`  intake p99 ≤ 25 ms at 1,000/s: ${verdict(p99 <= 25)} (${fmt(p99, 2)} ms)`);
  }
}

await main();
