/**
 * The real gateway (`startGateway`) in-process with the status back-channel configured: a real
 * SQLite store, the real pipeline, real adapters and the real HTTP app on loopback. Responses are checked against the OpenAPI document. Peers are loopback servers that
 * record what they get.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdapterInstance, AdapterManifest } from '../../src/adapter-contract.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { startGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/observability/log.js';
import type { StatusService } from '../../src/status/context.js';
import type { MessageRecord, Store } from '../../src/store/types.js';
import { assertMatchesOpenApi } from '../http/openapi-check.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked against the OpenAPI document first
export type Json = any;

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Json;
}

export interface StatusGateway {
  readonly url: string;
  readonly config: GatewayConfig;
  readonly store: Store;
  readonly adapters: ReadonlyMap<string, AdapterInstance>;
  readonly status: StatusService;
  request(method: string, target: string, options?: { key?: string; json?: unknown }): Promise<ApiResponse>;
  /** Polls until `probe` gives a value. */
  until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs?: number): Promise<T>;
  messageWithStatus(id: string, status: MessageRecord['status']): Promise<MessageRecord>;
  stop(): Promise<void>;
}

export async function startStatusGateway(
  config: GatewayConfig,
  manifests: readonly AdapterManifest[],
): Promise<StatusGateway> {
  if (config.store.type !== 'sqlite') throw new Error('the status harness runs on SQLite');
  // The gateway as `amtsbote start` assembles it: notice routes, one status service in adapter
  // contexts and HTTP, webhook notifiers, the pipeline and the scheduler.
  const gateway = await startGateway(
    { ...config, server: { ...config.server, host: '127.0.0.1' } },
    {
      manifests,
      loadMapping: async () => {
        throw new Error('no route of this test maps');
      },
      logger: createLogger({ silent: true }),
      port: 0,
    },
  );
  const { url, store, adapters, status } = gateway;

  const until = async <T>(
    probe: () => Promise<T | undefined>,
    what: string,
    timeoutMs = 10_000,
  ): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  return {
    url,
    config,
    store,
    adapters,
    status,
    until,
    messageWithStatus: (id, wanted) =>
      until(async () => {
        const m = await store.getMessage(id);
        return m?.status === wanted ? m : undefined;
      }, `message ${id} ${wanted}`),
    async request(method, target, { key, json } = {}) {
      const response = await fetch(url + target, {
        method,
        headers: {
          ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
          ...(json === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: json === undefined ? undefined : JSON.stringify(json),
      });
      const text = await response.text();
      assertMatchesOpenApi({
        method,
        path: target.split('?')[0]!,
        status: response.status,
        headers: response.headers,
        text,
      });
      return {
        status: response.status,
        headers: response.headers,
        body: (response.headers.get('content-type') ?? '').includes('json') && text ? JSON.parse(text) : text,
      };
    },
    stop: () => gateway.stop(),
  };
}

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface Peer {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** What the next requests are answered with; the last one stays. */
  answers: { status: number; body?: string; headers?: Record<string, string> }[];
  close(): Promise<void>;
}

/** A loopback HTTP server that records every request and answers from `answers`. */
export async function startPeer(answers: Peer['answers'] = [{ status: 200 }]): Promise<Peer> {
  const requests: RecordedRequest[] = [];
  const peer = { answers } as Peer;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const answer = peer.answers.length > 1 ? peer.answers.shift()! : peer.answers[0]!;
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body ?? '{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(peer, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
