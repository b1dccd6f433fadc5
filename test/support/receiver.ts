/**
 * An idempotent receiver on loopback, as a Fachverfahren with an import API would be: it keeps
 * what it got by delivery id (Idempotency-Key), so a redelivery is acknowledged but not stored
 * twice, and it counts raw receipts so tests can tell at-least-once from exactly-once.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedDelivery {
  readonly deliveryId: string;
  readonly messageId: string;
  readonly contentType: string;
  /** The body as text; empty when the receiver was started with `keepBodies: false`. */
  readonly body: string;
}

export interface Receiver {
  readonly url: string;
  /** Delivery id → first delivery stored under it. */
  readonly byDeliveryId: Map<string, ReceivedDelivery>;
  /** Message id → every delivery id it arrived with (exactly one when all is well). */
  readonly deliveryIdsByMessage: Map<string, Set<string>>;
  receipts: number;
  /** Answers the next `n` requests with this status (e.g. 503) before storing anything. */
  failNext(n: number, status: number, headers?: Record<string, string>): void;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage, keep: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    if (keep) req.on('data', (c: Buffer) => chunks.push(c));
    else req.resume();
    req.on('end', () => resolve(keep ? Buffer.concat(chunks).toString('utf8') : ''));
    req.on('error', reject);
  });
}

export interface ReceiverOptions {
  /** Answers each request after a random delay of up to this many ms. */
  readonly maxDelayMs?: number;
  /**
   * Keep each body (default). The benches turn it off: they count deliveries by id, and a load
   * generator that hoards every body it received (100 MB and more per run) measures its own
   * garbage collection along with the gateway.
   */
  readonly keepBodies?: boolean;
}

export async function startReceiver(options: ReceiverOptions = {}): Promise<Receiver> {
  const keepBodies = options.keepBodies ?? true;
  const byDeliveryId = new Map<string, ReceivedDelivery>();
  const deliveryIdsByMessage = new Map<string, Set<string>>();
  let failures: { n: number; status: number; headers: Record<string, string> } = {
    n: 0,
    status: 503,
    headers: {},
  };
  const state = {
    receipts: 0,
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req, keepBodies);
      if (failures.n > 0) {
        failures.n -= 1;
        res.writeHead(failures.status, { 'content-type': 'application/problem+json', ...failures.headers });
        res.end(JSON.stringify({ title: 'temporarily unavailable', status: failures.status }));
        return;
      }
      const deliveryId = String(req.headers['idempotency-key'] ?? '');
      const messageId = String(req.headers['x-amtsbote-message-id'] ?? '');
      if (options.maxDelayMs) await new Promise((r) => setTimeout(r, Math.random() * options.maxDelayMs!));
      state.receipts += 1;
      if (!byDeliveryId.has(deliveryId)) {
        byDeliveryId.set(deliveryId, {
          deliveryId,
          messageId,
          contentType: String(req.headers['content-type'] ?? ''),
          body,
        });
      }
      const ids = deliveryIdsByMessage.get(messageId) ?? new Set<string>();
      ids.add(deliveryId);
      deliveryIdsByMessage.set(messageId, ids);
      res.writeHead(201, { location: `/vorgaenge/${deliveryId}` });
      res.end();
    })();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    byDeliveryId,
    deliveryIdsByMessage,
    get receipts() {
      return state.receipts;
    },
    set receipts(v: number) {
      state.receipts = v;
    },
    failNext(n, status, headers = {}) {
      failures = { n, status, headers };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
