/**
 * A gateway assembled in-process the way `startGateway` assembles it, with the status
 * back-channel wired (notice routes, status service in adapter contexts and HTTP, webhook
 * notifiers): a real SQLite store, the real pipeline, real adapters and the real HTTP app on
 * loopback. Responses are checked against the OpenAPI document. Peers are loopback servers that
 * record what they get.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { AdapterInstance, AdapterManifest } from '../../src/adapter-contract.js';
import { AttachmentStore } from '../../src/attachments.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { createApp } from '../../src/http/app.js';
import { adapterLogger, createLogger } from '../../src/observability/log.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { inboundReceiver } from '../../src/pipeline/inbound.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { createRouter } from '../../src/routing.js';
import { createStatusService, statusNoticeRoutes, type StatusService } from '../../src/status/context.js';
import { withGroupCommit } from '../../src/store/group-commit.js';
import { SqliteStore } from '../../src/store/sqlite.js';
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
  const logger = createLogger({ silent: true });
  const metrics = createMetrics({ defaultMetrics: false });
  mkdirSync(config.dataDir, { recursive: true });
  if (config.store.type !== 'sqlite') throw new Error('the status harness runs on SQLite');
  const raw = SqliteStore.open(config.store.path);
  await raw.migrate();
  const store = withGroupCommit(raw);
  // The wiring under test: notice routes, one status service, webhook notifiers.
  const router = createRouter({ ...config, routes: [...config.routes, ...statusNoticeRoutes(config)] });
  const attachments = new AttachmentStore(path.join(config.dataDir, 'attachments'));
  const adapters = new Map<string, AdapterInstance>();
  const pipeline = new Pipeline({
    config,
    store,
    router,
    adapters,
    attachments,
    loadMapping: async () => {
      throw new Error('no route of this test maps');
    },
    logger,
    metrics,
  });
  const wake = (): void => pipeline.wake();
  const status = createStatusService({ config, store, router, logger, onEnqueued: wake });
  const byType = new Map(manifests.map((m) => [m.type, m]));
  for (const [instanceId, instance] of Object.entries(config.adapters)) {
    const dataDir = path.join(config.dataDir, 'adapters', instanceId);
    mkdirSync(dataDir, { recursive: true });
    adapters.set(
      instanceId,
      byType.get(instance.type)!.create(
        {
          instanceId,
          dataDir,
          resolvePath: (configured) => path.resolve(config.dataDir, configured),
          logger: adapterLogger(logger, instanceId),
          receive: inboundReceiver(instanceId, { store, router, attachments, onAccepted: wake }),
          ...status.adapterContext(instanceId),
          awaitingStatus: async () => [],
          rememberOnce: (key, expiresAt) =>
            store.rememberOnce(`adapter:${instanceId}`, key, expiresAt, Date.now()),
        },
        instance.config,
      ),
    );
  }
  for (const [id, notifier] of status.notifiers()) adapters.set(id, notifier);
  pipeline.start();

  const app = createApp({
    config,
    store,
    router,
    attachments,
    logger,
    metrics,
    status,
    shuttingDown: () => false,
    onAccepted: wake,
    readiness: async () => ({ ready: true, checks: { store: 'ok', config: 'ok' } }),
  });
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

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
    async stop() {
      await pipeline.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      for (const adapter of adapters.values()) await adapter.close?.();
      await store.close();
    },
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
