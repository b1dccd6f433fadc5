/**
 * The real HTTP app with citizen identity switched on: IdP metadata files (BundID and
 * Servicekonto.NRW test IdPs) and an SP key in a temp dir, a configuration whose parking route
 * requires trust level `substantiell`, the verifier made by `createIdentityVerifier`, a real
 * SQLite store and a log captured in memory. Every response is checked against the OpenAPI
 * document, like in harness.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
import { createIdentityVerifier, type IdentityVerifier } from '../../src/identity/intake.js';
import { createLogger } from '../../src/observability/log.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRouter } from '../../src/routing.js';
import { withGroupCommit } from '../../src/store/group-commit.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import {
  ACS_URL,
  BUNDID_ENTITY_ID,
  NOW,
  SERVICEKONTO_ENTITY_ID,
  SP_ENTITY_ID,
  idpMetadataXml,
  testPki,
} from '../identity/saml-fixtures.js';
import type { ApiResponse, RequestOptions } from './harness.js';
import { KEYS, MUENSTER_ARS, PARKING } from './harness.js';
import { assertMatchesOpenApi } from './openapi-check.js';

/** Served by a route that requires no trust level. */
export const OPEN_SERVICE = '99123456760000';

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

export interface IdentityHarnessOptions {
  /** Without the identity section (and without trust levels on routes). */
  readonly withoutIdentity?: boolean;
  readonly wrapStore?: (store: Store) => Store;
}

export interface IdentityHarness {
  readonly url: string;
  readonly config: GatewayConfig;
  readonly store: SqliteStore;
  readonly attachments: AttachmentStore;
  readonly verifier: IdentityVerifier | undefined;
  readonly dir: string;
  /** The app's clock; the SAML fixtures are made for `NOW`. */
  readonly clock: { now: number };
  log(): string;
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  close(): Promise<void>;
}

export async function startIdentityHarness(options: IdentityHarnessOptions = {}): Promise<IdentityHarness> {
  const pki = testPki();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-http-identity-'));
  mkdirSync(path.join(dir, 'idp'));
  writeFileSync(path.join(dir, 'idp/bundid.xml'), idpMetadataXml(BUNDID_ENTITY_ID, [pki.bundId.certBase64]));
  writeFileSync(
    path.join(dir, 'idp/servicekonto.xml'),
    idpMetadataXml(SERVICEKONTO_ENTITY_ID, [pki.servicekonto.certBase64]),
  );
  writeFileSync(path.join(dir, 'sp-key.pem'), pki.sp.keyPem);
  const withIdentity = options.withoutIdentity !== true;
  const config = validateConfig(
    {
      server: { bodyLimit: '256kb', attachmentLimit: '256kb' },
      dataDir: dir,
      tenants: [{ id: 'muenster', name: 'Stadt Münster', ars: MUENSTER_ARS }],
      clients: [
        { id: 'portal-ms', keyHash: hashApiKey(KEYS.muenster), tenants: ['muenster'] },
        { id: 'ops', keyHash: hashApiKey(KEYS.admin), admin: true },
      ],
      adapters: { dms: { type: 'test', config: {} } },
      routes: [
        {
          id: 'ms-parking',
          ars: '05515',
          service: PARKING,
          adapter: 'dms',
          ...(withIdentity ? { minTrustLevel: 'substantiell' } : {}),
        },
        { id: 'ms-open', ars: '05515', service: OPEN_SERVICE, adapter: 'dms' },
      ],
      ...(withIdentity
        ? {
            identity: {
              idps: [{ metadata: 'idp/bundid.xml' }, { metadata: 'idp/servicekonto.xml' }],
              audience: SP_ENTITY_ID,
              recipient: ACS_URL,
              spDecryptionKey: 'sp-key.pem',
            },
          }
        : {}),
    },
    { manifests: [testAdapter], baseDir: dir, source: undefined },
  );
  const store = SqliteStore.open(path.join(dir, 'amtsbote.db'));
  await store.migrate();
  const grouped = withGroupCommit(store);
  const appStore = options.wrapStore ? options.wrapStore(grouped) : grouped;
  const attachments = new AttachmentStore(path.join(dir, 'attachments'));
  const logChunks: string[] = [];
  const logger = createLogger({
    level: 'debug',
    stream: new Writable({
      write(chunk: Buffer, _enc, done) {
        logChunks.push(chunk.toString('utf8'));
        done();
      },
    }),
  });
  const clock = { now: NOW };
  const verifier = await createIdentityVerifier(config, appStore, { logger });
  const app = createApp({
    config,
    store: appStore,
    router: createRouter(config),
    attachments,
    logger,
    metrics: createMetrics({ defaultMetrics: false }),
    readiness: async () => ({ ready: true, checks: { store: 'ok', config: 'ok' } }),
    shuttingDown: () => false,
    onAccepted: () => undefined,
    identity: verifier,
    now: () => clock.now,
  });
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    config,
    store,
    attachments,
    verifier,
    dir,
    clock,
    log: () => logChunks.join(''),
    async request(method, target, { key, json, body, headers = {} } = {}) {
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
        path: new URL(url + target).pathname,
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
