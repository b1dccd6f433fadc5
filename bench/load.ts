/** A small HTTP load generator for the benches: closed-loop (fixed concurrency) or open-loop (fixed rate). */
import http from 'node:http';

export interface LoadResult {
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  readonly latenciesMs: number[];
}

export interface Request {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

function send(agent: http.Agent, base: URL, request: Request): Promise<{ status: number; ms: number }> {
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path: request.path,
        method: 'POST',
        agent,
        headers: { ...request.headers, 'content-length': request.body.length },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, ms: Number(process.hrtime.bigint() - started) / 1e6 }),
        );
      },
    );
    req.on('error', () => resolve({ status: 0, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
    req.end(request.body);
  });
}

/** Sends `total` requests with `concurrency` in flight. */
export async function closedLoop(
  baseUrl: string,
  total: number,
  concurrency: number,
  make: (i: number) => Request,
): Promise<LoadResult> {
  const base = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let ok = 0;
  let failed = 0;
  const latenciesMs: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const { status, ms } = await send(agent, base, make(i));
        if (status >= 200 && status < 300) ok++;
        else failed++;
        latenciesMs.push(ms);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { ok, failed, seconds, latenciesMs };
}

/**
 * Starts `rate` requests per second for `warmupSeconds + seconds`, whatever the answers take
 * (open loop), on one keep-alive agent. Only requests started after the warm-up count: the
 * connections, the JIT and the gateway's pipeline are then in their steady state at this rate.
 */
export async function openLoop(
  baseUrl: string,
  rate: number,
  seconds: number,
  make: (i: number) => Request,
  warmupSeconds = 0,
): Promise<LoadResult> {
  const base = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const warmup = Math.round(rate * warmupSeconds);
  const total = warmup + Math.round(rate * seconds);
  const latenciesMs: number[] = [];
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  let measuredFrom = started;
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    if (i === warmup) measuredFrom = performance.now();
    const counted = i >= warmup;
    pending.push(
      send(agent, base, make(i)).then(({ status, ms }) => {
        if (!counted) return;
        if (status >= 200 && status < 300) ok++;
        else failed++;
        latenciesMs.push(ms);
      }),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  return { ok, failed, seconds: (performance.now() - measuredFrom) / 1000, latenciesMs };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}
