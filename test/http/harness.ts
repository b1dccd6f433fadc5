/**
 * The real HTTP app on 127.0.0.1 with a real SQLite store in a temp dir, a real configuration
 * and a log captured in memory. Every response the tests get is checked against the OpenAPI
 * document before the test sees it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { defineAdapter } from '../../src/adapter-contract.js';
import { AttachmentStore } from '../../src/attachments.js';
import { validateConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { createApp } from '../../src/http/app.js';
import { hashApiKey } from '../../src/http/auth.js';
import { createLogger } from '../../src/observability/log.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { createRouter } from '../../src/routing.js';
import { withGroupCommit } from '../../src/store/group-commit.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { assertMatchesOpenApi } from './openapi-check.js';

export const MUENSTER_ARS = '055150000000';
export const BIELEFELD_ARS = '057110000000';
export const PARKING = '99058012104000';
/** A service with no route anywhere. */
export const UNROUTED_SERVICE = '99123456789012';

export const KEYS = {
  muenster: 'ms-portal-key-3f9a1c',
  bielefeld: 'bi-portal-key-77e0b2',
  admin: 'ops-admin-key-c41d5e',
} as const;

const testAdapter = defineAdapter({
  type: 'test',
  version: '1.0.0',
  description: 'does nothing; only its type is needed',
  capabilities: { outbound: true, inbound: false, poll: false },
  configSchema: { type: 'object' },
  secrets: [],
  example: {},
  create: () => ({}),
});

export interface HarnessOptions {
  readonly bodyLimit?: string;
  readonly attachmentLimit?: string;
  /** Replaces the store the app sees (e.g. to make one call fail). */
  readonly wrapStore?: (store: Store) => Store;
}

/** Response bodies are validated against the OpenAPI document before tests read their fields. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
export type Json = any;

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: Json;
}

export interface RequestOptions {
  readonly key?: string;
  readonly json?: unknown;
  readonly body?: RequestInit['body'];
  readonly headers?: Record<string, string>;
  /** The documented path to check the answer against, when `path` is another spelling of it. */
  readonly documentedAs?: string;
}

export interface Harness {
  readonly url: string;
  readonly config: GatewayConfig;
  /** The unwrapped store, for arranging and inspecting state. */
  readonly store: SqliteStore;
  readonly attachments: AttachmentStore;
  readonly metrics: Metrics;
  readonly dir: string;
  readonly state: { ready: boolean; shuttingDown: boolean; accepted: number };
  log(): string;
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  close(): Promise<void>;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-http-'));
  const config = validateConfig(
    {
      server: { bodyLimit: options.bodyLimit ?? '64kb', attachmentLimit: options.attachmentLimit ?? '256kb' },
      dataDir: dir,
      tenants: [
        { id: 'muenster', name: 'Stadt Münster', ars: MUENSTER_ARS },
        { id: 'bielefeld', name: 'Stadt Bielefeld', ars: BIELEFELD_ARS },
      ],
      clients: [
        { id: 'portal-ms', keyHash: hashApiKey(KEYS.muenster), tenants: ['muenster'] },
        { id: 'portal-bi', keyHash: hashApiKey(KEYS.bielefeld), tenants: ['bielefeld'] },
        { id: 'ops', keyHash: hashApiKey(KEYS.admin), admin: true },
      ],
      adapters: { dms: { type: 'test', config: {} } },
      routes: [
        { id: 'ms-parking', ars: '05515', service: PARKING, adapter: 'dms' },
        { id: 'bi-parking', ars: '05711', service: PARKING, adapter: 'dms' },
      ],
    },
    { manifests: [testAdapter], baseDir: dir, source: undefined },
  );
  const store = SqliteStore.open(path.join(dir, 'amtsbote.db'));
  await store.migrate();
  const grouped = withGroupCommit(store);
  const attachments = new AttachmentStore(path.join(dir, 'attachments'));
  const metrics = createMetrics({ defaultMetrics: false });
  const logChunks: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _enc, done) {
      logChunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger({ level: 'debug', stream: logStream });
  const state = { ready: true, shuttingDown: false, accepted: 0 };
  const app = createApp({
    config,
    store: options.wrapStore ? options.wrapStore(grouped) : grouped,
    router: createRouter(config),
    attachments,
    logger,
    metrics,
    readiness: async () => ({
      ready: state.ready,
      checks: { store: state.ready ? 'ok' : 'unreachable', config: 'ok' },
    }),
    shuttingDown: () => state.shuttingDown,
    onAccepted: () => {
      state.accepted++;
    },
  });
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    config,
    store,
    attachments,
    metrics,
    dir,
    state,
    log: () => logChunks.join(''),
    async request(method, target, { key, json, body, headers = {}, documentedAs } = {}) {
      const response = await fetch(url + target, {
        method,
        headers: {
          ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
          ...(json === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: json === undefined ? body : JSON.stringify(json),
      });
      const text = await response.text();
      assertMatchesOpenApi({
        method,
        path: documentedAs ?? new URL(url + target).pathname,
        status: response.status,
        headers: response.headers,
        text,
      });
      const isJson = (response.headers.get('content-type') ?? '').includes('json');
      return {
        status: response.status,
        headers: response.headers,
        text,
        body: isJson && text ? JSON.parse(text) : text,
      };
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A valid application for Münster's residents' parking permit. */
export function application(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tenant: MUENSTER_ARS,
    service: PARKING,
    reference: 'PORTAL-2026-000123',
    applicant: {
      givenName: 'Erika',
      familyName: 'Mustermann',
      birthDate: '1964-08-12',
      email: 'erika.mustermann@example.org',
      address: { street: 'Prinzipalmarkt 10', postalCode: '48143', locality: 'Münster' },
    },
    data: { vehicle: { licensePlate: 'MS-EM 123' }, zone: 'A', validFrom: '2026-12-01' },
    ...overrides,
  };
}

export async function messageCount(store: Store): Promise<number> {
  const page = await store.listMessages({ limit: 500 });
  return page.items.length;
}
