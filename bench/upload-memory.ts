/**
 * Memory of a streamed upload: a real gateway process (`amtsbote start`, SQLite store, http adapter
 * with `attachments: multipart` to a loopback receiver) takes a multipart application with one
 * large attachment (200 MB by default) and delivers it; separately a JSON application just under
 * the body limit (its bulk an inline base64 attachment). The gateway's resident memory (VmRSS from
 * /proc, sampled every 2 ms in a worker thread, and the kernel's high-water mark VmHWM reset before
 * each request) gives baseline, peak and growth; the time until the answer gives the upload
 * throughput. Baseline in the same run: a bare Node HTTP server, started the same way, that pipes
 * the request to a file and fsyncs it — the ratio shows what the gateway needs beyond Node itself.
 * The attachment is generated while it is sent (64 KiB chunks, each distinct, so no two uploads
 * share content); this process never holds it whole. MB = 2^20 bytes. Linux only (/proc).
 *
 *   node --import tsx bench/upload-memory.ts [--size 200mb] [--runs 5] [--body-limit 1mb]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createWriteStream,
  mkdtempSync,
  promises as fsp,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseByteSize } from '../src/config/units.js';
import {
  PORTAL_KEY,
  application,
  freePort,
  spawnGateway,
  writeGatewayConfig,
} from '../test/support/gateway-process.js';
import { median } from './load.js';
import {
  MiB,
  fmt,
  mb,
  readPeakRss,
  readRss,
  replaceOnce,
  resetPeakRss,
  sampleRss,
  startCountingReceiver,
  type CountingReceiver,
} from './support.js';

const SELF = fileURLToPath(import.meta.url);

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '200mb' },
    runs: { type: 'string', default: '5' },
    'body-limit': { type: 'string', default: '1mb' },
    /** Internal: run as the bare Node baseline server writing into the given directory. */
    'serve-baseline': { type: 'string' },
  },
});

/** DESIGN.md §7: "a 200 MB upload grows resident memory by < 64 MB". */
const TARGET_SIZE = 200 * MiB;
const TARGET_GROWTH = 64 * MiB;
const SAMPLE_INTERVAL_MS = 2;
const CHUNK = 64 * 1024;
const DEADLINE_MS = 600_000;

function byteSize(text: string): number {
  const t = text.trim().toLowerCase();
  return /^\d+$/.test(t) ? Number(t) : parseByteSize(t);
}

// --- the bare Node baseline: a child process like the gateway, so both pay the same loader ---

async function serveBaseline(dir: string): Promise<void> {
  let n = 0;
  const server = http.createServer((req, res) => {
    const file = path.join(dir, `upload-${++n}`);
    void (async () => {
      try {
        await pipeline(req, createWriteStream(file));
        const handle = await fsp.open(file, 'r');
        await handle.sync();
        await handle.close();
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"stored":true}');
      } catch {
        res.writeHead(500);
        res.end();
      } finally {
        await fsp.rm(file, { force: true });
      }
    })();
  });
  server.requestTimeout = 0;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
  });
}

async function startBaseline(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, '--serve-baseline', dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`baseline server exited with ${code}`)));
    child.stdout!.on('data', (c: Buffer) => {
      const m = /listening (\d+)/.exec(c.toString());
      if (m) resolve(Number(m[1]));
    });
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

// --- requests, generated while sent ---

const BLOCK = randomBytes(CHUNK);

/** `size` bytes of incompressible content; the first 16 bytes of each chunk make it unique. */
function* attachmentContent(size: number, tag: string): Generator<Buffer> {
  for (let offset = 0, i = 0; offset < size; offset += CHUNK, i++) {
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK, size - offset));
    BLOCK.copy(chunk, 0, 0, chunk.length);
    if (chunk.length >= 16) {
      chunk.writeUInt32BE(i, 0);
      chunk.write(tag, 4, 12, 'latin1');
    }
    yield chunk;
  }
}

interface Upload {
  readonly headers: Record<string, string | number>;
  readonly length: number;
  readonly body: () => Iterable<Buffer>;
  /** Bytes of the file, or of the whole JSON body. */
  readonly payloadBytes: number;
}

function multipartUpload(size: number, tag: string): Upload {
  const boundary = `bench-${randomBytes(12).toString('hex')}`;
  const form = JSON.stringify(application(`UPLOAD-${tag}`));
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="application"\r\n` +
      `Content-Type: application/json\r\n\r\n${form}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="attachment"; filename="lageplan-${tag}.pdf"\r\n` +
      `Content-Type: application/pdf\r\n\r\n`,
    'utf8',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  return {
    headers: {
      authorization: `Bearer ${PORTAL_KEY}`,
      'content-type': `multipart/form-data; boundary=${boundary}`,
    },
    length: head.length + size + tail.length,
    payloadBytes: size,
    *body() {
      yield head;
      yield* attachmentContent(size, tag);
      yield tail;
    },
  };
}

/** A JSON application of at most `limit` − 256 bytes, its bulk one inline attachment. */
function jsonUpload(limit: number, tag: string): Upload {
  const attachment = { filename: `nachweis-${tag}.pdf`, mediaType: 'application/pdf', contentBase64: '' };
  const skeleton = { ...application(`JSON-${tag}`), attachments: [attachment] };
  const room = limit - 256 - Buffer.byteLength(JSON.stringify(skeleton));
  const raw = Math.max(0, Math.floor(room / 4) * 3);
  attachment.contentBase64 = randomBytes(raw).toString('base64');
  const body = Buffer.from(JSON.stringify(skeleton), 'utf8');
  return {
    headers: { authorization: `Bearer ${PORTAL_KEY}`, 'content-type': 'application/json' },
    length: body.length,
    payloadBytes: body.length,
    body: () => [body],
  };
}

/** Sends the upload with backpressure; resolves with the answer once it has been read. */
function send(baseUrl: string, path_: string, upload: Upload): Promise<{ status: number; text: string }> {
  const base = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path: path_,
        method: 'POST',
        headers: { ...upload.headers, 'content-length': upload.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    // An early answer (413, 4xx) ends the exchange; the rest of the body is not needed.
    pipeline(Readable.from(upload.body()), req).catch(() => undefined);
  });
}

// --- one measurement ---

interface Measurement {
  readonly bytes: number;
  readonly baseline: number;
  readonly uploadPeak: number;
  readonly deliveryPeak: number;
  /** Highest RSS seen by sampling or by the kernel's high-water mark, whichever is higher. */
  readonly peak: number;
  readonly growth: number;
  readonly seconds: number;
  readonly throughput: number;
}

interface Target {
  readonly url: string;
  readonly pid: number;
  readonly path: string;
  /** Waits until the accepted upload has been delivered (gateway only). */
  readonly awaitDelivery?: (answer: string) => Promise<void>;
}

async function measure(target: Target, upload: Upload): Promise<Measurement> {
  await new Promise((r) => setTimeout(r, 300));
  const sampler = sampleRss(target.pid, SAMPLE_INTERVAL_MS);
  await new Promise((r) => setTimeout(r, 100));
  const exact = resetPeakRss(target.pid);
  const baseline = readRss(target.pid);
  sampler.phase(1);
  const started = performance.now();
  let answer: { status: number; text: string };
  try {
    answer = await send(target.url, target.path, upload);
  } catch (err) {
    await sampler.stop();
    throw err;
  }
  const seconds = (performance.now() - started) / 1000;
  sampler.phase(2);
  let peaks: number[];
  try {
    if (answer.status < 200 || answer.status > 299)
      throw new Error(`upload answered ${answer.status}: ${answer.text.slice(0, 300)}`);
    await target.awaitDelivery?.(answer.text);
  } finally {
    peaks = (await sampler.stop()).peaks;
  }
  const hwm = exact ? readPeakRss(target.pid) : NaN;
  const uploadPeak = peaks[1]!;
  const deliveryPeak = peaks[2]!;
  const peak = Math.max(...[uploadPeak, deliveryPeak, hwm].filter(Number.isFinite));
  return {
    bytes: upload.length,
    baseline,
    uploadPeak,
    deliveryPeak,
    peak,
    growth: peak - baseline,
    seconds,
    throughput: upload.payloadBytes / MiB / seconds,
  };
}

async function waitFor(what: string, done: () => boolean | Promise<boolean>, intervalMs = 10): Promise<void> {
  const deadline = performance.now() + DEADLINE_MS;
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function deliveryWaiter(gatewayUrl: string, receiver: CountingReceiver): (answer: string) => Promise<void> {
  return async (answer) => {
    const { id } = JSON.parse(answer) as { id: string };
    const before = receiver.completed;
    // The receiver is in this process: watching it costs the gateway nothing.
    await waitFor('the delivery to reach the receiver', () => receiver.completed > before, 5);
    await waitFor(
      'the gateway to record the delivery',
      async () => {
        const res = await fetch(`${gatewayUrl}/api/v1/applications/${id}`, {
          headers: { authorization: `Bearer ${PORTAL_KEY}` },
        });
        const view = (await res.json()) as { status?: string };
        if (view.status === 'dead') throw new Error(`application ${id} became a dead letter`);
        return view.status === 'delivered';
      },
      20,
    );
  };
}

// --- runs ---

interface RunResult {
  readonly bareFile: Measurement;
  readonly gatewayFile: Measurement;
  readonly bareJson: Measurement;
  readonly gatewayJson: Measurement;
}

function gatewayConfig(
  dir: string,
  port: number,
  receiverUrl: string,
  size: number,
  bodyLimit: string,
): string {
  const file = writeGatewayConfig({ dir, receiverUrl, port });
  let text = readFileSync(file, 'utf8');
  const attachmentLimit = `${Math.ceil(size / MiB) + 1}mb`;
  text = replaceOnce(
    text,
    `port: ${port} }`,
    `port: ${port}, bodyLimit: ${bodyLimit}, attachmentLimit: ${attachmentLimit}, requestTimeout: 10m }`,
  );
  text = replaceOnce(text, 'timeout: 5s }', 'timeout: 10m, attachments: multipart }');
  // No lease heartbeat: the lease must outlast the slowest delivery of a large attachment.
  text = replaceOnce(text, 'pipeline: { lease: 3s,', 'pipeline: { lease: 10m, deliveryTimeout: 10m,');
  writeFileSync(file, text);
  return file;
}

async function runOnce(
  run: number,
  size: number,
  bodyLimit: string,
  receiver: CountingReceiver,
): Promise<RunResult> {
  const limitBytes = byteSize(bodyLimit);
  const tag = (what: string): string => `${what}${run}${randomBytes(4).toString('hex')}`.slice(0, 12);

  const bareDir = mkdtempSync(path.join(os.tmpdir(), 'amt-upload-bare-'));
  const bare = await startBaseline(bareDir);
  let bareFile: Measurement;
  let bareJson: Measurement;
  try {
    const target = { url: bare.url, pid: bare.child.pid!, path: '/upload' };
    await send(bare.url, '/upload', multipartUpload(MiB, tag('w')));
    bareFile = await measure(target, multipartUpload(size, tag('f')));
    bareJson = await measure(target, jsonUpload(limitBytes, tag('j')));
  } finally {
    bare.child.kill();
    rmSync(bareDir, { recursive: true, force: true });
  }

  const dir = mkdtempSync(path.join(os.tmpdir(), 'amt-upload-gw-'));
  const port = await freePort();
  const gateway = await spawnGateway(gatewayConfig(dir, port, receiver.url, size, bodyLimit), port, 60_000);
  let gatewayFile: Measurement;
  let gatewayJson: Measurement;
  try {
    const target: Target = {
      url: gateway.url,
      pid: gateway.child.pid!,
      path: '/api/v1/applications',
      awaitDelivery: deliveryWaiter(gateway.url, receiver),
    };
    // Warm-up: loads and compiles the multipart, attachment and delivery paths once.
    for (const warm of [multipartUpload(MiB, tag('w')), jsonUpload(64 * 1024, tag('v'))]) {
      const answer = await send(gateway.url, target.path, warm);
      if (answer.status !== 202) throw new Error(`warm-up answered ${answer.status}: ${answer.text}`);
      await target.awaitDelivery!(answer.text);
    }
    gatewayFile = await measure(target, multipartUpload(size, tag('f')));
    gatewayJson = await measure(target, jsonUpload(limitBytes, tag('j')));
  } catch (err) {
    console.error(gateway.output());
    throw err;
  } finally {
    gateway.child.kill('SIGTERM');
    await gateway.exited;
    rmSync(dir, { recursive: true, force: true });
  }
  return { bareFile, gatewayFile, bareJson, gatewayJson };
}

function runLine(label: string, bare: Measurement, gw: Measurement): string {
  return (
    `    ${label.padEnd(10)} bare Node ${mb(bare.baseline)} → peak ${mb(bare.peak)} MB (+${mb(bare.growth)}), ` +
    `${fmt(bare.throughput, 1)} MB/s | gateway ${mb(gw.baseline)} → peak ${mb(gw.peak)} MB (+${mb(gw.growth)}; ` +
    `upload ${mb(gw.uploadPeak)}, delivery ${mb(gw.deliveryPeak)}), ${fmt(gw.throughput, 1)} MB/s`
  );
}

function summary(label: string, bare: Measurement[], gw: Measurement[]): number {
  const m = (xs: Measurement[], f: (x: Measurement) => number): number => median(xs.map(f));
  const row = (name: string, xs: Measurement[]): string =>
    `  ${name.padEnd(28)} ${mb(m(xs, (x) => x.baseline)).padStart(9)} ${mb(m(xs, (x) => x.peak)).padStart(9)} ` +
    `${mb(m(xs, (x) => x.growth)).padStart(9)} ${fmt(
      m(xs, (x) => x.seconds),
      2,
    ).padStart(8)} ` +
    `${fmt(
      m(xs, (x) => x.throughput),
      1,
    ).padStart(9)}`;
  console.log(`${label}`);
  console.log(`  ${''.padEnd(28)}  base MB   peak MB  growth MB  answer s      MB/s`);
  console.log(row('bare Node (pipe to file)', bare));
  console.log(row('gateway (intake + delivery)', gw));
  const growth = m(gw, (x) => x.growth);
  const bareGrowth = m(bare, (x) => x.growth);
  console.log(
    `  gateway / bare Node: growth ${bareGrowth >= MiB ? `${fmt(growth / bareGrowth, 1)}×` : 'n/a (bare Node grew < 1 MB)'}, ` +
      `peak ${fmt(m(gw, (x) => x.peak) / m(bare, (x) => x.peak), 2)}×, ` +
      `throughput ${fmt(m(gw, (x) => x.throughput) / m(bare, (x) => x.throughput), 2)}×`,
  );
  console.log(
    `  gateway peak by phase: upload ${mb(m(gw, (x) => x.uploadPeak))} MB, delivery ${mb(m(gw, (x) => x.deliveryPeak))} MB (sampled)`,
  );
  return growth;
}

async function main(): Promise<void> {
  const size = byteSize(values.size);
  const runs = Number(values.runs);
  const bodyLimit = values['body-limit'].trim().toLowerCase();
  if (!(size > 0) || !(runs >= 1)) throw new Error('--size and --runs must be positive');
  console.log(
    `bench:upload — ${mb(size)} MB multipart attachment and a JSON application just under the ${bodyLimit} body limit, ` +
      `${runs} run${runs === 1 ? '' : 's'}; RSS sampled every ${SAMPLE_INTERVAL_MS} ms, MB = 2^20 bytes`,
  );
  console.log(
    `machine: ${os.cpus().length} cores, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')} (1 / 5 / 15 min)`,
  );
  const receiver = await startCountingReceiver();
  const results: RunResult[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      const result = await runOnce(run, size, bodyLimit, receiver);
      results.push(result);
      console.log(`  run ${run + 1}:`);
      console.log(runLine('attachment', result.bareFile, result.gatewayFile));
      console.log(runLine('JSON', result.bareJson, result.gatewayJson));
    }
  } finally {
    await receiver.close();
  }

  console.log('');
  console.log(
    `medians over ${runs} run${runs === 1 ? '' : 's'} (growth = peak − RSS just before the request)`,
  );
  const growth = summary(
    `${mb(size)} MB attachment, multipart, delivered as multipart to a loopback receiver`,
    results.map((r) => r.bareFile),
    results.map((r) => r.gatewayFile),
  );
  summary(
    `JSON application of ${fmt(results[0]!.gatewayJson.bytes)} bytes (body limit ${bodyLimit}), its bulk an inline attachment`,
    results.map((r) => r.bareJson),
    results.map((r) => r.gatewayJson),
  );
  console.log(
    `  (answer s: until the answer — the gateway answers after fsync and commit, the bare server after fsync)`,
  );
  console.log('');
  const verdict = growth < TARGET_GROWTH ? 'PASS' : 'MISS';
  const note = size === TARGET_SIZE ? '' : ` — measured with ${mb(size)} MB, not the target's 200 MB`;
  console.log(
    `target (DESIGN.md §7): a 200 MB upload grows resident memory by < 64 MB → ${verdict} ` +
      `(median growth ${mb(growth)} MB${note})`,
  );
  console.log(`this process (client and receiver): max RSS ${mb(process.resourceUsage().maxRSS * 1024)} MB`);
}

if (values['serve-baseline'] !== undefined) await serveBaseline(values['serve-baseline']);
else await main();
