/**
 * Assembles one gateway process: store, adapter instances, pipeline and HTTP server, and takes
 * them down in order (intake closed → deliveries drained → leases released → store closed).
 */
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { AdapterInstance, AdapterManifest } from './adapter-contract.js';
import { AttachmentStore } from './attachments.js';
import type { GatewayConfig } from './config/types.js';
import { AmtError, isAmtError } from './errors.js';
import { createApp, type RouteMappingHealth } from './http/app.js';
import { createIdentityVerifier } from './identity/intake.js';
import { createMappingPool, type MappingPool, type WarmUpFailure } from './mapping/pool.js';
import { adapterLogger, createLogger, type Logger } from './observability/log.js';
import { createMetrics, observeCommit, type Metrics } from './observability/metrics.js';
import { inboundReceiver } from './pipeline/inbound.js';
import type { MappingStep } from './pipeline/mapping-step.js';
import { Pipeline } from './pipeline/pipeline.js';
import { createRouter, type Router } from './routing.js';
import { startScheduler } from './scheduler/start.js';
import { createStatusService, statusNoticeRoutes, type StatusService } from './status/context.js';
import { openStore } from './store/open.js';
import { amtsboteVersion } from './version.js';
import type { Store } from './store/types.js';

export interface GatewayOptions {
  readonly manifests: readonly AdapterManifest[];
  /**
   * Where the pipeline gets a route's mapping step; by default a pool of
   * `pipeline.mappingThreads` worker threads that the gateway closes when it stops.
   */
  readonly loadMapping?: (file: string) => Promise<MappingStep>;
  readonly logger?: Logger;
  /** Overrides `server.port` (0 picks a free port). */
  readonly port?: number;
  /** Start the delivery workers (default true); an intake-only instance sets false. */
  readonly workers?: boolean;
}

export interface Gateway {
  readonly url: string;
  readonly store: Store;
  readonly pipeline: Pipeline;
  readonly adapters: ReadonlyMap<string, AdapterInstance>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly status: StatusService;
  /** Graceful stop; safe to call twice. */
  stop(): Promise<void>;
}

export async function startGateway(config: GatewayConfig, options: GatewayOptions): Promise<Gateway> {
  const logger = options.logger ?? createLogger({ level: config.logging.level });
  const metrics = createMetrics();
  makeDataDir(config.dataDir);
  const { store, onWork } = await openStore(config.store, {
    writerThread: true,
    onCommit: (commit) => observeCommit(metrics, commit),
  });
  const router = gatewayRouter(config);
  const attachments = attachmentStore(config);
  const adapters = new Map<string, AdapterInstance>();
  // Tests and embedders may bring their own mapping step; otherwise mapping runs on worker threads.
  const mappingPool: MappingPool | undefined =
    options.loadMapping === undefined
      ? createMappingPool({ threads: config.pipeline.mappingThreads })
      : undefined;
  const loadMapping = options.loadMapping ?? (mappingPool as MappingPool).loadMappingStep;
  // The routes' mappings are compiled, with their schemas, on every worker before the gateway
  // reports ready: the first applications after a start do not wait a second or more for it.
  const warm = options.workers === false ? undefined : mappingPool?.warmUp(mappingFiles(config));
  const pipeline = new Pipeline({
    config,
    store,
    router,
    adapters,
    attachments,
    loadMapping,
    logger,
    metrics,
  });
  const wake = (): void => pipeline.wake();

  const status = createStatusService({ config, store, router, logger, onEnqueued: wake });
  for (const [id, notifier] of status.notifiers()) adapters.set(id, notifier);
  const created = createAdapterInstances(config, options.manifests, {
    store,
    router,
    attachments,
    logger,
    status,
    onAccepted: wake,
  });
  for (const [id, instance] of created) adapters.set(id, instance);

  if (options.workers !== false) pipeline.start();
  const stopListening = onWork ? await onWork(wake) : undefined;
  const jobs = await startScheduler({
    config,
    store,
    adapters,
    attachments,
    logger,
    registry: metrics.registry,
  });

  const identity = await createIdentityVerifier(config, store, { logger });
  logBrokenMappings(config, (await warm) ?? [], logger);
  let shuttingDown = false;
  // Not asked while stopping: the mapping threads are being closed, which is not a broken mapping.
  const mappingHealth = async (): Promise<RouteMappingHealth[]> =>
    shuttingDown ? [] : await routeMappingHealth(config, loadMapping);
  const app = createApp({
    identity,
    config,
    store,
    router,
    attachments,
    logger,
    metrics,
    shuttingDown: () => shuttingDown,
    onAccepted: wake,
    reserveSlot: () => pipeline.reserve(),
    adapters,
    status,
    scheduler: jobs.scheduler,
    mappingHealth,
    readiness: async () => {
      // A route whose mapping does not compile leaves the gateway ready: the other routes work,
      // and that route's applications wait, retried, until the file is fixed. The check names it.
      const mappings = mappingsCheck(await mappingHealth());
      try {
        await store.ping();
        return {
          ready: !shuttingDown,
          checks: { store: 'ok', config: 'ok', mappings, ...(shuttingDown ? { shutdown: 'draining' } : {}) },
        };
      } catch (err) {
        return { ready: false, checks: { store: (err as Error).message, config: 'ok', mappings } };
      }
    },
  });
  /** Stops what runs, in order; `server` once it listens. */
  const shutDown = async (server: Server | undefined): Promise<void> => {
    await pipeline.stop();
    await mappingPool?.close();
    await jobs.stop();
    await stopListening?.();
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      });
    }
    for (const adapter of adapters.values()) await adapter.close?.();
    await store.close();
  };

  const port = options.port ?? config.server.port;
  let server: Server;
  try {
    server = await new Promise((resolve, reject) => {
      const s = createServer(app);
      s.once('error', reject);
      s.listen(port, config.server.host, () => {
        s.off('error', reject);
        resolve(s);
      });
    });
  } catch (err) {
    // Nothing may keep running without the API: a process that cannot listen ends.
    await shutDown(undefined);
    throw listenError(err, config.server.host, port);
  }
  server.requestTimeout = config.server.requestTimeoutMs;
  server.keepAliveTimeout = 5_000;
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info('gateway started', {
    version: amtsboteVersion(),
    url,
    store: config.store.type,
    adapters: [...adapters.keys()],
    routes: config.routes.length,
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      shuttingDown = true;
      logger.info('gateway stopping: intake closed, draining deliveries');
      await shutDown(server);
      logger.info('gateway stopped');
    })();
    return stopping;
  };
  return { url, store, pipeline, adapters, metrics, logger, status, stop };
}

/** Routes as the gateway resolves them: the configured ones and those of status notices. */
function gatewayRouter(config: GatewayConfig): Router {
  // Status notices to citizens' postboxes travel as messages of their own, on routes derived here.
  return createRouter({ ...config, routes: [...config.routes, ...statusNoticeRoutes(config)] });
}

/** The mapping files of the configured routes (status notice routes never map). */
function mappingFiles(config: GatewayConfig): string[] {
  return config.routes.flatMap((route) => (route.mapping === undefined ? [] : [route.mapping]));
}

/**
 * Whether each mapped route's mapping compiles now. The compiled mappings are cached and their
 * files looked at again at most once a second, so a file fixed (or broken) without a restart
 * shows here within a second, and asking costs no more than a `stat` per file.
 */
function routeMappingHealth(
  config: GatewayConfig,
  loadMapping: (file: string) => Promise<MappingStep>,
): Promise<RouteMappingHealth[]> {
  return Promise.all(
    config.routes.flatMap(({ id, mapping }) =>
      mapping === undefined
        ? []
        : [
            loadMapping(mapping).then(
              () => ({ route: id, compiles: true }),
              () => ({ route: id, compiles: false }),
            ),
          ],
    ),
  );
}

function mappingsCheck(health: readonly RouteMappingHealth[]): string {
  const broken = health.filter((h) => !h.compiles).map((h) => h.route);
  if (broken.length === 0) return 'ok';
  return `the mapping of route ${broken.join(', ')} does not compile: its applications wait until it is fixed (amtsbote check names the problems)`;
}

/**
 * The gateway still starts with a mapping that does not compile — the other routes keep working —
 * but says so at once, per route: until the file is fixed, that route's applications are
 * accepted and retried by the retry policy. `amtsbote check` refuses such a file.
 */
function logBrokenMappings(config: GatewayConfig, failures: readonly WarmUpFailure[], logger: Logger): void {
  for (const { file, error } of failures) {
    const routes = config.routes.filter(
      (route) => route.mapping !== undefined && path.resolve(route.mapping) === file,
    );
    logger.error("a route's mapping does not compile: its applications are retried until it is fixed", {
      routes: routes.map((route) => route.id),
      mapping: file,
      error,
      // Logged errors carry no problems (those of a failed mapping may quote application data);
      // a compile error's name only places in the mapping file.
      ...(isAmtError(error) ? { problems: error.problems } : {}),
    });
  }
}

function attachmentStore(config: GatewayConfig): AttachmentStore {
  return new AttachmentStore(path.join(config.dataDir, 'attachments'));
}

/**
 * The adapter instances of a configuration outside a running gateway (`amtsbote jobs run`),
 * wired as the gateway wires them; what they receive is stored and delivered by the gateway.
 */
export function standaloneAdapterInstances(
  config: GatewayConfig,
  installed: readonly AdapterManifest[],
  store: Store,
): Map<string, AdapterInstance> {
  const logger = createLogger({ level: config.logging.level });
  const router = gatewayRouter(config);
  const nothing = (): void => {};
  return createAdapterInstances(config, installed, {
    store,
    router,
    attachments: attachmentStore(config),
    logger,
    status: createStatusService({ config, store, router, logger, onEnqueued: nothing }),
    onAccepted: nothing,
  });
}

interface AdapterInstanceDeps {
  readonly store: Store;
  readonly router: Router;
  readonly attachments: AttachmentStore;
  readonly logger: Logger;
  readonly status: StatusService;
  /** Called after an adapter handed over inbound applications. */
  readonly onAccepted: () => void;
}

/** Creates the configured adapter instances, each with its own context (data directory, logger, status). */
function createAdapterInstances(
  config: GatewayConfig,
  installed: readonly AdapterManifest[],
  deps: AdapterInstanceDeps,
): Map<string, AdapterInstance> {
  const { store, router, attachments, logger, status } = deps;
  const configBase = config.source ? path.dirname(config.source) : process.cwd();
  const manifests = new Map(installed.map((m) => [m.type, m]));
  const adapters = new Map<string, AdapterInstance>();
  for (const [instanceId, instance] of Object.entries(config.adapters)) {
    const manifest = manifests.get(instance.type);
    if (!manifest)
      throw new AmtError('AMT_ADAPTER_UNKNOWN', `adapter type ${instance.type} is not installed`);
    const dataDir = path.join(config.dataDir, 'adapters', instanceId);
    mkdirSync(dataDir, { recursive: true });
    adapters.set(
      instanceId,
      manifest.create(
        {
          instanceId,
          dataDir,
          resolvePath: (configured) => path.resolve(configBase, configured),
          logger: adapterLogger(logger, instanceId),
          receive: inboundReceiver(instanceId, { store, router, attachments, onAccepted: deps.onAccepted }),
          ...status.adapterContext(instanceId),
          awaitingStatus: async (finalStatuses, limit) =>
            (await store.awaitingRemoteStatus(instanceId, finalStatuses, limit)).map((m) => ({
              messageId: m.id,
              deliveryId: m.deliveryId,
              remoteReference: m.remoteReference,
              remoteStatus: m.remoteStatus,
            })),
          rememberOnce: (key, expiresAt) =>
            store.rememberOnce(`adapter:${instanceId}`, key, expiresAt, Date.now()),
        },
        instance.config,
      ),
    );
  }
  return adapters;
}

/** Why the API cannot listen, in the operator's terms. */
function listenError(err: unknown, host: string, port: number): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${host}:${port}`;
  const why =
    code === 'EADDRINUSE'
      ? 'the port is in use (is another amtsbote running?); choose server.port or --port'
      : code === 'EACCES'
        ? 'not allowed (ports below 1024 need privileges); choose server.port or --port'
        : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND'
          ? `${host} is not an address of this machine; check server.host`
          : ((err as Error).message ?? String(err));
  return new Error(`cannot listen on ${where}: ${why}`, { cause: err });
}

function makeDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new Error(`cannot create the data directory ${dir} (dataDir): ${code}`, { cause: err });
  }
}
