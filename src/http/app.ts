/**
 * The HTTP face of the gateway (express 5): intake and status for portals, the admin API, health,
 * metrics and the OpenAPI document. Every error leaves as problem+json; request bodies, applicant
 * data and keys never reach the log.
 *
 * `POST /api/v1/applications`, the one path every application takes, is served without express'
 * router: its handler works on Node's request and response and answers its own errors, so the
 * request listener hands the canonical request line straight to it (about a tenth of the main
 * thread's time per application went into express' per-request work). express' route for the
 * path calls the same handler for the spellings its router also matches (`/api/v1/applications/`,
 * other letter case, a query).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type RequestHandler } from 'express';
import type { AdapterInstance } from '../adapter-contract.js';
import type { AttachmentStore } from '../attachments.js';
import type { GatewayConfig } from '../config/types.js';
import { AmtError } from '../errors.js';
import type { IdentityVerifier } from '../identity/intake.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Router } from '../routing.js';
import { jobsRouter } from '../scheduler/http.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import { createStatusService, type StatusService } from '../status/context.js';
import type { Store } from '../store/types.js';
import { adminHandlers } from './admin.js';
import { applicationStatusHandler } from './application-status.js';
import { callbackHandlers } from './callbacks.js';
import { createAuthenticator, requireAdmin, requireClient, type AuthenticatedClient } from './auth.js';
import { INTAKE_PATH, intakeHandler } from './intake.js';
import { loadOpenApiDocument, requestValidators } from './openapi.js';
import { live, metricsEndpoint, ready } from './operations.js';
import { answerError, problemHandler, routeOf, sendProblem } from './problem.js';
import { statusReportHandler } from './status-report.js';
import type { SlotReservation } from '../pipeline/pipeline.js';

export interface HttpDeps {
  config: GatewayConfig;
  store: Store; // already wrapped with group commit by the caller
  router: Router;
  attachments: AttachmentStore;
  logger: Logger;
  metrics: Metrics;
  /** Each mapped route and whether its mapping compiles now; sampled into a gauge at scrape time. */
  mappingHealth?: () => Promise<readonly RouteMappingHealth[]>;
  /** Store reachable and config loaded; the caller decides. */
  readiness(): Promise<{ ready: boolean; checks: Record<string, 'ok' | string> }>;
  /** True while draining after SIGTERM: intake answers 503 AMT_SHUTTING_DOWN. */
  shuttingDown(): boolean;
  /** Called after messages were accepted, so the pipeline picks them up at once. */
  onAccepted(): void;
  /** A free delivery slot for an application about to be accepted (`Pipeline.reserve`). */
  reserveSlot?: () => SlotReservation | undefined;
  /** Adapter instances by id, for peer callbacks (`POST /api/v1/callbacks/{instanceId}`). */
  adapters?: ReadonlyMap<string, AdapterInstance>;
  /** Verifies citizen identities (SAML) forwarded with applications; see `createIdentityVerifier`. */
  identity?: IdentityVerifier | undefined;
  /** Records statuses Fachverfahren report; created here from the other deps when not given. */
  status?: StatusService | undefined;
  /** The scheduler of this process; its jobs appear under `/api/v1/admin/jobs`. */
  scheduler?: Scheduler | undefined;
  now?: () => number;
}

export interface RouteMappingHealth {
  readonly route: string;
  readonly compiles: boolean;
}

type Method = 'get' | 'post';

/** What `http.createServer` takes. */
export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export function createApp(deps: HttpDeps): RequestListener {
  const now = deps.now ?? Date.now;
  const document = loadOpenApiDocument();
  const documentJson = JSON.stringify(document);
  const validators = requestValidators(document);
  const authenticate = createAuthenticator(deps.config.clients);
  const client = requireClient(authenticate);
  const admin = adminHandlers({
    config: deps.config,
    store: deps.store,
    validators,
    onAccepted: () => deps.onAccepted(),
    now,
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(accessLog(deps.logger));
  app.use('/api', (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });

  /** Registers one path; any other method on it is a 405 naming the allowed ones. */
  const resource = (path: string, handlers: Partial<Record<Method, RequestHandler[]>>): void => {
    const route = app.route(path);
    const allowed: string[] = [];
    for (const [method, chain] of Object.entries(handlers) as [Method, RequestHandler[]][]) {
      route[method](...chain);
      allowed.push(method.toUpperCase(), ...(method === 'get' ? ['HEAD'] : []));
    }
    route.all((req, res) => {
      sendProblem(req, res, new AmtError('AMT_METHOD_NOT_ALLOWED', `${req.method} is not allowed here`), {
        Allow: allowed.join(', '),
      });
    });
  };

  const intake = intakeHandler({
    config: deps.config,
    authenticate,
    shuttingDown: deps.shuttingDown,
    store: deps.store,
    router: deps.router,
    attachments: deps.attachments,
    metrics: deps.metrics,
    validators,
    onAccepted: () => deps.onAccepted(),
    reserveSlot: deps.reserveSlot,
    now,
    identity: deps.identity,
    logger: deps.logger,
  });
  resource(INTAKE_PATH, {
    post: [(req, res) => intake(req, res, res.locals as { client?: AuthenticatedClient })],
  });
  resource('/api/v1/applications/:id', { get: [client, applicationStatusHandler(deps.store)] });
  const status =
    deps.status ??
    createStatusService({
      config: deps.config,
      store: deps.store,
      router: deps.router,
      logger: deps.logger,
      onEnqueued: () => deps.onAccepted(),
      now,
    });
  resource('/api/v1/status', {
    post: [client, statusReportHandler({ config: deps.config, status, validators })],
  });
  resource('/api/v1/admin/messages', { get: [client, requireAdmin, admin.listMessages] });
  resource('/api/v1/admin/messages/:id', { get: [client, requireAdmin, admin.getMessage] });
  resource('/api/v1/admin/dead-letters', { get: [client, requireAdmin, admin.listDeadLetters] });
  resource('/api/v1/admin/replay', { post: [client, requireAdmin, admin.replay] });
  resource('/api/v1/callbacks/:instanceId', {
    post: callbackHandlers(deps.adapters ?? new Map(), deps.config.server.bodyLimitBytes),
  });
  resource('/api/v1/openapi.json', {
    get: [(_req, res) => void res.type('application/json').send(documentJson)],
  });
  resource('/health/live', { get: [live] });
  resource('/health/ready', { get: [ready(() => deps.readiness(), deps.logger)] });
  resource('/metrics', { get: [metricsEndpoint(deps.store, deps.metrics, deps.logger, deps.mappingHealth)] });

  if (deps.scheduler) {
    app.use(
      '/api/v1/admin',
      jobsRouter({ scheduler: deps.scheduler, store: deps.store, guards: [client, requireAdmin] }),
    );
  }

  app.use((req, res) => sendProblem(req, res, new AmtError('AMT_NOT_FOUND', 'no such resource')));
  app.use(problemHandler(deps.logger));

  return (req, res) => {
    if (req.method !== 'POST' || req.url !== INTAKE_PATH) {
      app(req, res);
      return;
    }
    const observed: { client?: AuthenticatedClient } = {};
    if (deps.logger.isDebugEnabled()) {
      logWhenFinished(
        deps.logger,
        req,
        res,
        () => INTAKE_PATH,
        () => observed.client?.id,
      );
    }
    res.setHeader('Cache-Control', 'no-store');
    // The handler answers its own errors; what escapes it (its metrics, say) is answered here.
    intake(req, res, observed).catch((err: unknown) => answerError(deps.logger, req, res, err, INTAKE_PATH));
  };
}

/** The access log as middleware, for every request express serves. */
function accessLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    if (logger.isDebugEnabled()) {
      const locals = res.locals as { client?: AuthenticatedClient };
      logWhenFinished(
        logger,
        req,
        res,
        () => routeOf(req),
        () => locals.client?.id,
      );
    }
    next();
  };
}

/**
 * One debug line per request once answered: method, route template, status, duration, client id.
 * Never the query, headers or body, which may carry keys and personal data.
 */
function logWhenFinished(
  logger: Logger,
  req: IncomingMessage,
  res: ServerResponse,
  route: () => string,
  client: () => string | undefined,
): void {
  const started = performance.now();
  res.once('finish', () => {
    logger.debug('http request', {
      method: req.method,
      route: route(),
      status: res.statusCode,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
      client: client(),
    });
  });
}
