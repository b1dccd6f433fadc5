/**
 * A FIT-Connect Zustelldienst on 127.0.0.1 for tests: OAuth2 token endpoint, Submission API v1
 * (destinations and keys, announce / upload / submit, receiver listing and fetch, case event log),
 * its own JWKS, signed callbacks, a Routing API, and fault injection. It checks what senders and
 * receivers send the way the real one does — well-formed JWE for the destination's key, SETs
 * signed by the destination's registered key with matching authentication tags — without ever
 * decrypting anything itself.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { CompactSign, compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { sendNewSubmissionsCallback } from './callbacks.js';
import { fitConnectTestKeys, signingJwk, type RsaKeyPair } from './keys.js';
import { routingRouter, signRoute } from './routing-api.js';
import { EmulatorState, type EmulatedSubmission } from './state.js';

export { EmulatorState } from './state.js';

const EVENTS = 'https://schema.fitko.de/fit-connect/events/';
const PROBLEMS = 'https://schema.fitko.de/fit-connect/submission-api/problems/';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COMPACT_JWE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface FitConnectEmulatorOptions {
  /** Lifetime of issued tokens (FIT-Connect: at most 30 minutes). */
  readonly tokenLifetimeSeconds?: number;
  /** Use this key for the Zustelldienst's own SETs instead of the shared test key. */
  readonly serviceKey?: RsaKeyPair;
  /** Port on 127.0.0.1 (default: a free one). */
  readonly port?: number;
}

export interface FitConnectEmulator {
  /** Base URL of the Submission API (without version). */
  readonly url: string;
  readonly tokenUrl: string;
  readonly jwksUrl: string;
  /** Routing API base (append `/routes`). */
  readonly routingUrl: string;
  readonly routingJwksUrl: string;
  readonly state: EmulatorState;
  /** Signs a SET with the Zustelldienst's key and appends it to the case of `submissionId`. */
  emitServiceEvent(submissionId: string, event: string, payload?: Record<string, unknown>): Promise<string>;
  /** Adds a route whose destinationSignature is signed with the routing key (or `signWith`). */
  addRoute(input: {
    ars: string;
    leikaKey: string;
    destinationId: string;
    signWith?: RsaKeyPair;
    submissionHost?: string;
  }): Promise<void>;
  close(): Promise<void>;
}

export async function startFitConnectEmulator(
  options: FitConnectEmulatorOptions = {},
): Promise<FitConnectEmulator> {
  const keys = await fitConnectTestKeys();
  const serviceKey = options.serviceKey ?? keys.service;
  const serviceSigner = await importJWK({ ...serviceKey.privateJwk, alg: 'PS512' }, 'PS512');
  const state = new EmulatorState(options.tokenLifetimeSeconds ?? 1800);
  const app = express();
  let baseUrl = '';

  const problem = (res: Response, status: number, slug: string, title: string, detail?: string): void => {
    res
      .status(status)
      .type('application/problem+json')
      .send(JSON.stringify({ type: PROBLEMS + slug, title, status, ...(detail ? { detail } : {}) }));
  };

  const signServiceSet = async (
    s: EmulatedSubmission,
    event: string,
    payload: Record<string, unknown> = {},
  ) => {
    const claims = {
      $schema: 'https://schema.fitko.de/fit-connect/set-payload/1.0.0/set-payload.schema.json',
      jti: randomUUID(),
      iss: baseUrl,
      iat: Math.floor(Date.now() / 1000),
      sub: `submission:${s.submissionId}`,
      txn: `case:${s.caseId}`,
      events: { [event]: payload },
    };
    const set = await new CompactSign(Buffer.from(JSON.stringify(claims)))
      .setProtectedHeader({ alg: 'PS512', typ: 'secevent+jwt', kid: serviceKey.kid })
      .sign(serviceSigner);
    state.appendEvent(s.caseId, set);
    return set;
  };

  app.use((req, res, next) => {
    const path = req.path; // routers below rewrite req.url; record the path as requested
    res.on('finish', () => state.requests.push({ method: req.method, path, status: res.statusCode }));
    const fault = path.startsWith('/v1/') || path === '/token' ? state.takeFault(path) : undefined;
    if (!fault) return next();
    if (fault.retryAfter !== undefined) res.setHeader('Retry-After', fault.retryAfter);
    problem(
      res,
      fault.status,
      'injected-fault',
      fault.status === 429 ? 'Too Many Requests' : 'Service Unavailable',
    );
  });

  app.post('/token', express.urlencoded({ extended: false }), (req, res) => {
    state.tokenRequests++;
    const body = req.body as Record<string, string | undefined>;
    if (body.scope !== undefined) state.requestedScopes.push(body.scope);
    if (body.grant_type !== 'client_credentials')
      return void res.status(400).json({ error: 'unsupported_grant_type' });
    const secret = state.clients.get(body.client_id ?? '');
    if (secret === undefined || secret !== body.client_secret)
      return void res.status(401).json({ error: 'invalid_client' });
    const { token, expiresIn } = state.issueToken(body.client_id!);
    res.json({ access_token: token, token_type: 'Bearer', expires_in: expiresIn });
  });

  app.get('/.well-known/jwks.json', (_req, res) => {
    res.json({ keys: [signingJwk(serviceKey)] });
  });

  app.use('/routing', routingRouter(state, keys.routing));

  const api = express.Router();
  api.use((req: Request, res: Response, next: NextFunction) => {
    const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const token = match ? state.tokens.get(match[1]!) : undefined;
    if (!token || token.expiresAt <= Date.now()) {
      return problem(
        res,
        401,
        'unauthorized',
        'Unauthorized',
        'the access token is missing, unknown or expired',
      );
    }
    res.locals.clientId = token.clientId;
    next();
  });
  api.use(express.json({ limit: '300mb' }));
  api.use(express.text({ type: 'application/jose', limit: '300mb' }));

  api.get('/destinations/:id', (req, res) => {
    const d = state.destinations.get(req.params.id!);
    if (!d) return problem(res, 404, 'destination-not-found', 'Destination not found');
    res.json({
      destinationId: d.destinationId,
      status: d.status,
      services: d.services,
      encryptionKid: d.encryptionKid,
      metadataVersions: ['1.0.0', '1.1.0', '1.2.0'],
    });
  });

  api.get('/destinations/:id/keys/:kid', (req, res) => {
    const key = state.destinations.get(req.params.id!)?.keys.get(req.params.kid!);
    if (!key) return problem(res, 404, 'key-not-found', 'Key not found');
    res.json(key);
  });

  api.post('/submissions', (req, res) => {
    const body = req.body as {
      destinationId?: string;
      announcedAttachments?: unknown;
      serviceType?: { identifier?: string; name?: string };
    };
    const d = state.destinations.get(body.destinationId ?? '');
    if (!d) return problem(res, 404, 'destination-not-found', 'Destination not found');
    if (d.status !== 'active') return problem(res, 422, 'destination-inactive', 'Destination is not active');
    const announced = body.announcedAttachments ?? [];
    if (!Array.isArray(announced) || !announced.every((a) => typeof a === 'string' && UUID.test(a))) {
      return problem(res, 422, 'invalid-attachments', 'announcedAttachments must be UUIDs');
    }
    const identifier = body.serviceType?.identifier;
    if (!body.serviceType?.name || !d.services.some((s) => s.identifier === identifier)) {
      return problem(
        res,
        422,
        'service-not-offered',
        'The destination does not offer this service',
        String(identifier),
      );
    }
    const submission: EmulatedSubmission = {
      submissionId: randomUUID(),
      caseId: randomUUID(),
      destinationId: d.destinationId,
      clientId: res.locals.clientId as string,
      serviceType: { identifier: identifier!, name: body.serviceType.name },
      announcedAttachments: announced as string[],
      attachments: new Map(),
      encryptedMetadata: undefined,
      encryptedData: undefined,
      status: 'incomplete',
    };
    state.submissions.set(submission.submissionId, submission);
    void signServiceSet(submission, `${EVENTS}create-submission`);
    res.status(201).json({
      destinationId: d.destinationId,
      submissionId: submission.submissionId,
      caseId: submission.caseId,
    });
  });

  const jweProblem = (jwe: unknown, kid: string): string | undefined => {
    if (typeof jwe !== 'string' || !COMPACT_JWE.test(jwe)) return 'not a JWE in compact serialisation';
    const header = decodeProtectedHeader(jwe);
    if (header.alg !== 'RSA-OAEP-256' || header.enc !== 'A256GCM')
      return `alg/enc ${String(header.alg)}/${String(header.enc)}`;
    if (header.kid !== kid) return `kid ${String(header.kid)} is not the destination's encryption key`;
    return undefined;
  };

  api.put('/submissions/:id/attachments/:attachmentId', (req, res) => {
    const s = state.submissions.get(req.params.id!);
    if (!s) return problem(res, 404, 'submission-not-found', 'Submission not found');
    if (s.status !== 'incomplete')
      return problem(res, 409, 'submission-not-incomplete', 'Submission already submitted');
    if (!s.announcedAttachments.includes(req.params.attachmentId!)) {
      return problem(res, 404, 'attachment-not-announced', 'Attachment was not announced');
    }
    if (!req.is('application/jose'))
      return problem(res, 415, 'unsupported-media-type', 'Expected application/jose');
    const bad = jweProblem(req.body, state.destinations.get(s.destinationId)!.encryptionKid);
    if (bad) return problem(res, 422, 'invalid-jwe', 'Attachment is not a valid JWE', bad);
    s.attachments.set(req.params.attachmentId!, req.body as string);
    res.status(204).end();
  });

  api.put('/submissions/:id', async (req, res) => {
    const s = state.submissions.get(req.params.id!);
    if (!s) return problem(res, 404, 'submission-not-found', 'Submission not found');
    if (s.status !== 'incomplete')
      return problem(res, 409, 'submission-not-incomplete', 'Submission already submitted');
    const missing = s.announcedAttachments.filter((a) => !s.attachments.has(a));
    if (missing.length > 0)
      return problem(res, 422, 'missing-attachments', 'Announced attachments are missing', missing.join());
    const body = req.body as { encryptedMetadata?: unknown; encryptedData?: unknown };
    const kid = state.destinations.get(s.destinationId)!.encryptionKid;
    const bad =
      jweProblem(body.encryptedMetadata, kid) ??
      (body.encryptedData === undefined ? undefined : jweProblem(body.encryptedData, kid));
    if (bad) return problem(res, 422, 'invalid-jwe', 'Metadata or data is not a valid JWE', bad);
    s.encryptedMetadata = body.encryptedMetadata as string;
    s.encryptedData = body.encryptedData as string | undefined;
    s.status = 'submitted';
    await signServiceSet(s, `${EVENTS}submit-submission`);
    void sendNewSubmissionsCallback(state, s.destinationId, [s.submissionId]);
    res.status(202).json({ destinationId: s.destinationId, submissionId: s.submissionId, caseId: s.caseId });
  });

  api.get('/submissions', (req, res) => {
    const destinationId = String(req.query.destinationId ?? '');
    const offset = Number(req.query.offset ?? 0);
    const limit = Number(req.query.limit ?? 100);
    const waiting = [...state.submissions.values()].filter(
      (s) => s.destinationId === destinationId && (s.status === 'submitted' || s.status === 'forwarded'),
    );
    const page = waiting.slice(offset, offset + limit);
    res.json({
      count: page.length,
      offset,
      totalCount: waiting.length,
      submissions: page.map((s) => ({
        destinationId: s.destinationId,
        submissionId: s.submissionId,
        caseId: s.caseId,
      })),
    });
  });

  api.get('/submissions/:id', (req, res) => {
    const s = state.submissions.get(req.params.id!);
    if (!s || s.status === 'incomplete')
      return problem(res, 404, 'submission-not-found', 'Submission not found');
    res.json({
      destinationId: s.destinationId,
      submissionId: s.submissionId,
      caseId: s.caseId,
      serviceType: s.serviceType,
      attachments: s.announcedAttachments,
      encryptedMetadata: s.encryptedMetadata,
      ...(s.encryptedData ? { encryptedData: s.encryptedData } : {}),
    });
  });

  api.get('/submissions/:id/attachments/:attachmentId', (req, res) => {
    const jwe = state.submissions.get(req.params.id!)?.attachments.get(req.params.attachmentId!);
    if (!jwe) return problem(res, 404, 'attachment-not-found', 'Attachment not found');
    res.type('application/jose').send(jwe);
  });

  api.get('/cases/:caseId/events', (req, res) => {
    res.json({ eventLog: state.caseEvents.get(req.params.caseId!) ?? [] });
  });

  api.post('/cases/:caseId/events', async (req, res) => {
    const refuse = (reason: string) => {
      state.refusedEvents.push({ caseId: req.params.caseId!, reason });
      problem(res, 422, 'invalid-event', 'The event is not valid', reason);
    };
    if (!req.is('application/jose') || typeof req.body !== 'string')
      return refuse('expected application/jose');
    const set = req.body;
    let header;
    try {
      header = decodeProtectedHeader(set);
    } catch {
      return refuse('not a JWS');
    }
    if (header.typ !== 'secevent+jwt' || header.alg !== 'PS512') return refuse('typ/alg');
    const s = [...state.submissions.values()].find((x) => x.caseId === req.params.caseId);
    if (!s) return problem(res, 404, 'case-not-found', 'Case not found');
    const d = state.destinations.get(s.destinationId)!;
    if (!header.kid || !d.signingKids.has(header.kid))
      return refuse('kid is not a signing key of the destination');
    let claims: Record<string, unknown>;
    try {
      const { key_ops: _ops, ...registered } = d.keys.get(header.kid)!;
      const key = await importJWK({ ...registered, alg: 'PS512' }, 'PS512');
      claims = JSON.parse(Buffer.from((await compactVerify(set, key)).payload).toString()) as Record<
        string,
        unknown
      >;
    } catch {
      return refuse('signature does not verify');
    }
    if (
      claims.iss !== d.destinationId ||
      claims.txn !== `case:${s.caseId}` ||
      claims.sub !== `submission:${s.submissionId}`
    ) {
      return refuse('iss, sub or txn do not match');
    }
    const [event, payload] =
      Object.entries((claims.events ?? {}) as Record<string, Record<string, unknown>>)[0] ?? [];
    if (event === `${EVENTS}accept-submission`) {
      const tags = payload?.authenticationTags as {
        metadata?: string;
        data?: string;
        attachments?: Record<string, string>;
      };
      const tag = (jwe: string | undefined) => jwe?.slice(jwe.lastIndexOf('.') + 1);
      const attachmentsOk = s.announcedAttachments.every(
        (a) => tags?.attachments?.[a] === tag(s.attachments.get(a)),
      );
      if (
        tags?.metadata !== tag(s.encryptedMetadata) ||
        tags?.data !== tag(s.encryptedData) ||
        !attachmentsOk
      ) {
        return refuse('authenticationTags do not match the submission');
      }
      s.status = 'accepted';
    } else if (event === `${EVENTS}reject-submission`) {
      if (!Array.isArray(payload?.problems)) return refuse('reject-submission without problems');
      s.status = 'rejected';
    } else if (event === `${EVENTS}forward-submission`) {
      s.status = 'forwarded';
    } else {
      return refuse(`event ${String(event)} may not be posted by a receiver`);
    }
    state.appendEvent(s.caseId, set);
    res.status(204).end();
  });

  app.use('/v1', api);

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port ?? 0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: baseUrl,
    tokenUrl: `${baseUrl}/token`,
    jwksUrl: `${baseUrl}/.well-known/jwks.json`,
    routingUrl: `${baseUrl}/routing/v1`,
    routingJwksUrl: `${baseUrl}/routing/jwks.json`,
    state,
    async emitServiceEvent(submissionId, event, payload) {
      const s = state.submissions.get(submissionId);
      if (!s) throw new Error(`no submission ${submissionId}`);
      return signServiceSet(s, event, payload);
    },
    async addRoute({ ars, leikaKey, destinationId, signWith, submissionHost }) {
      const destinationSignature = await signRoute({
        signer: signWith ?? keys.routing,
        ars,
        leikaKey,
        destinationId,
        submissionHost: submissionHost ?? new URL(baseUrl).host,
        issuer: `${baseUrl}/portal`,
      });
      state.routes.push({ ars, leikaKey, destinationId, destinationSignature });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

export type { JWK };
