/**
 * `POST /api/v1/applications`: validate, resolve tenant and route, verify the citizen identity
 * when one is forwarded, save attachments, then one durable `store.accept`. The 202 leaves only
 * after that commit; no message is stored for a request that fails before it.
 */
import { createHash, hash } from 'node:crypto';
import { newId } from '../ids.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import type { AttachmentStore } from '../attachments.js';
import { canonicalJson } from '../canonical-json.js';
import type { GatewayConfig, RouteConfig, TenantConfig } from '../config/types.js';
import { normalizeLeistungsschluessel } from '../domain.js';
import { AmtError, isAmtError, type Problem } from '../errors.js';
import type { VerifiedIdentity } from '../identity/identity.js';
import { identityForApplication, requireIdentityPresent } from '../identity/intake.js';
import type { IdentityRequest, IdentityVerifier, SubmittedIdentity } from '../identity/intake.js';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Router } from '../routing.js';
import type { SlotReservation } from '../pipeline/pipeline.js';
import type { AcceptResult, AttachmentRef, MessageRecord, Store } from '../store/types.js';
import { authenticateRequest, mayActFor, type AuthenticatedClient, type Authenticator } from './auth.js';
import { bodyKind, readJsonBody } from './body.js';
import { readMultipart, type UploadedFile } from './multipart.js';
import { validationProblems, type RequestValidators } from './openapi.js';
import { answerError } from './problem.js';

/** Most attachments of one application (also `maxItems` in the OpenAPI document). */
export const MAX_ATTACHMENTS = 100;

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

/** The intake's path: what the request listener matches, the route in logs, the base of `Location`. */
export const INTAKE_PATH = '/api/v1/applications';

export interface IntakeDeps {
  readonly config: GatewayConfig;
  readonly authenticate: Authenticator;
  /** True while draining after SIGTERM: intake answers 503 AMT_SHUTTING_DOWN. */
  readonly shuttingDown: () => boolean;
  readonly store: Store;
  readonly router: Router;
  readonly attachments: AttachmentStore;
  readonly metrics: Metrics;
  readonly validators: RequestValidators;
  readonly onAccepted: () => void;
  /** A free delivery slot for the message about to be accepted, if the pipeline has one. */
  readonly reserveSlot?: () => SlotReservation | undefined;
  readonly now: () => number;
  /** Verifies forwarded SAML responses; absent when the gateway has no `identity` section. */
  readonly identity?: IdentityVerifier | undefined;
  readonly logger: Logger;
}

/**
 * Serves one intake request on plain Node objects, errors included (the gateway's request listener
 * calls it without express for the canonical path; express' route for the same path calls it
 * too). `observed.client` is set once the request authenticated, for the access log.
 */
export type IntakeHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  observed: { client?: AuthenticatedClient },
) => Promise<void>;

/** The application fields after schema validation (attachments are handled apart). */
interface ApplicationInput {
  readonly tenant: string;
  readonly service: string;
  readonly reference: string;
  readonly channel?: string;
  readonly applicant: Record<string, unknown>;
  readonly data: Record<string, unknown>;
  readonly attachments?: readonly InlineAttachment[];
  readonly identity?: SubmittedIdentity;
}

interface InlineAttachment {
  readonly filename: string;
  readonly mediaType: string;
  readonly purpose?: string;
  readonly contentBase64: string;
}

/** A valid application whose tenant this client may submit for and which a route serves. */
interface RoutedApplication {
  readonly input: ApplicationInput;
  readonly tenant: TenantConfig;
  readonly service: string;
  readonly route: RouteConfig;
}

type IntakeOutcome = 'accepted' | 'duplicate' | 'rejected' | 'failed';

export function intakeHandler(deps: IntakeDeps): IntakeHandler {
  return async (req, res, observed) => {
    const started = performance.now();
    const metricLabels: { tenant: string } = { tenant: 'unknown' };
    let outcome: IntakeOutcome = 'failed';
    try {
      if (deps.shuttingDown())
        throw new AmtError('AMT_SHUTTING_DOWN', 'the gateway is shutting down; send the application again');
      const client = authenticateRequest(deps.authenticate, req, res);
      observed.client = client;
      outcome = await submitApplication(deps, client, req, res, metricLabels);
    } catch (err) {
      outcome = isAmtError(err) && err.status < 500 ? 'rejected' : 'failed';
      answerError(deps.logger, req, res, err, INTAKE_PATH);
    } finally {
      deps.metrics.intakeTotal.inc({ tenant: metricLabels.tenant, outcome });
      deps.metrics.intakeDuration.observe({ outcome }, (performance.now() - started) / 1000);
    }
  };
}

async function submitApplication(
  deps: IntakeDeps,
  client: AuthenticatedClient,
  req: IncomingMessage,
  res: ServerResponse,
  metricLabels: { tenant: string },
): Promise<IntakeOutcome> {
  const kind = bodyKind(req, ['json', 'multipart']);
  const idempotencyKey = parseIdempotencyKey(req.headers['idempotency-key']);
  const routeFor = (application: unknown, validate: ValidateFunction): RoutedApplication => {
    const routed = routeApplication(deps, client, application, validate);
    metricLabels.tenant = routed.tenant.id;
    return routed;
  };

  let routed: RoutedApplication;
  let attachments: AttachmentRef[];
  let inline: DecodedAttachment[] = [];
  if (kind === 'json') {
    const body = await readJsonBody(req, deps.config.server.bodyLimitBytes);
    routed = routeFor(body, deps.validators.application);
    inline = decodeInlineAttachments(deps, routed.input.attachments ?? []);
    attachments = inline.map((decoded) => decoded.ref);
  } else {
    const upload = await readMultipart(req, {
      attachments: deps.attachments,
      fileLimitBytes: deps.config.server.attachmentLimitBytes,
      maxFiles: MAX_ATTACHMENTS,
      applicationLimitBytes: deps.config.server.bodyLimitBytes,
      inspect: (application) => routeFor(application, deps.validators.applicationForm),
    });
    routed = upload.application;
    attachments = uploadedAttachments(deps, upload.files, upload.purposes);
  }

  const { input, tenant, service, route } = routed;
  const application = {
    tenant: tenant.ars,
    service,
    reference: input.reference,
    channel: input.channel,
    applicant: input.applicant,
    data: input.data,
    identity: input.identity,
  };
  // Hashed only when something compares it: an Idempotency-Key or a login assertion to bind.
  let requestHash: string | undefined;
  const request: IdentityRequest = {
    clientId: client.id,
    idempotencyKey,
    get requestHash() {
      requestHash ??= createHash('sha256').update(canonicalJson({ application, attachments })).digest('hex');
      return requestHash;
    },
    now: deps.now(),
  };
  if (input.identity !== undefined && idempotencyKey !== undefined) {
    // A retry of an accepted request is answered from the store: its assertion was used up by the
    // first attempt and may have expired since.
    const earlier = await acceptedBefore(deps.store, request);
    if (earlier) {
      sendAccepted(res, earlier);
      return 'duplicate';
    }
  }
  const verifiedIdentity = await verifiedIdentityOf(deps, routed, request);
  await storeInlineAttachments(deps, inline);
  const slot = deps.reserveSlot?.();
  let result: AcceptResult | undefined;
  try {
    [result] = await deps.store.accept([
      {
        id: newId(),
        deliveryId: newId(),
        direction: 'outbound',
        tenantId: tenant.id,
        ars: tenant.ars,
        service,
        reference: input.reference,
        clientId: client.id,
        routeId: route.id,
        target: route.adapter,
        // Stored as sent (key order included); what identifies the request is its hash above.
        payload: JSON.stringify({
          reference: input.reference,
          applicant: input.applicant,
          data: input.data,
          channel: input.channel,
          verifiedIdentity,
        }),
        attachments,
        idempotency:
          idempotencyKey === undefined
            ? undefined
            : { key: idempotencyKey, requestHash: request.requestHash },
        receivedAt: request.now,
        ...(slot ? { claim: slot.claim } : {}),
      },
    ]);
  } catch (err) {
    slot?.release();
    throw err;
  }
  if (slot && result?.kind !== 'created') slot.release();
  if (!result) throw new AmtError('AMT_INTERNAL', 'the store returned no result for an accepted message');
  if (result.kind === 'conflict') {
    throw new AmtError(
      'AMT_IDEMPOTENCY_CONFLICT',
      'this Idempotency-Key was already used for a different application',
    );
  }
  if (result.kind !== 'created') {
    sendAccepted(res, result.message);
    return 'duplicate';
  }
  try {
    sendAccepted(res, result.message);
  } finally {
    // Answered first: delivery work started here runs partly before the next await.
    if (slot) slot.take(result.message);
    else deps.onAccepted();
  }
  return 'accepted';
}

/** The message an earlier request with this client, key and body created, if any. */
async function acceptedBefore(store: Store, request: IdentityRequest): Promise<MessageRecord | undefined> {
  if (request.idempotencyKey === undefined) return undefined;
  const earlier = await store.findByIdempotencyKey(request.clientId, request.idempotencyKey);
  if (earlier === undefined || earlier.requestHash !== request.requestHash) return undefined;
  return store.getMessage(earlier.messageId);
}

/** Verifies the forwarded identity against the route's trust level; a refusal is logged by its code only. */
async function verifiedIdentityOf(
  deps: IntakeDeps,
  routed: RoutedApplication,
  request: IdentityRequest,
): Promise<VerifiedIdentity | undefined> {
  const { input, tenant, route } = routed;
  if (input.identity === undefined && route.minTrustLevel === undefined) return undefined;
  try {
    return await identityForApplication(deps.identity, input.identity, route.minTrustLevel, request);
  } catch (err) {
    if (isAmtError(err) && err.status < 500) {
      deps.logger.info('citizen identity refused', {
        code: err.code,
        client: request.clientId,
        tenant: tenant.id,
        route: route.id,
      });
    }
    throw err;
  }
}

function sendAccepted(res: ServerResponse, message: MessageRecord): void {
  const self = `${INTAKE_PATH}/${message.id}`;
  const body = JSON.stringify({ id: message.id, status: message.status, links: { self } });
  res.writeHead(202, {
    Location: self,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !IDEMPOTENCY_KEY.test(header)) {
    throw new AmtError(
      'AMT_IDEMPOTENCY_KEY_INVALID',
      'an Idempotency-Key has 1 to 200 printable ASCII characters without spaces',
      {
        problems: [{ path: 'Idempotency-Key', message: 'must be 1–200 printable ASCII characters' }],
      },
    );
  }
  return header;
}

function routeApplication(
  deps: IntakeDeps,
  client: AuthenticatedClient,
  application: unknown,
  validate: ValidateFunction,
): RoutedApplication {
  if (!validate(application)) {
    throw new AmtError('AMT_VALIDATION_FAILED', 'the application does not match the schema', {
      problems: validationProblems(validate.errors),
    });
  }
  const input = application as ApplicationInput;
  const tenant = deps.router.tenantByArs(input.tenant);
  if (!tenant) {
    throw new AmtError('AMT_UNKNOWN_TENANT', `no tenant has the ARS ${input.tenant}`, {
      problems: [{ path: '/tenant', message: 'no tenant has this ARS' }],
    });
  }
  if (!mayActFor(client, tenant.id)) {
    throw new AmtError('AMT_FORBIDDEN', `this client may not submit applications for tenant ${tenant.id}`);
  }
  // The schema admits the bare key and its URN form; both name the same service.
  const service = normalizeLeistungsschluessel(input.service);
  if (service === undefined) throw new AmtError('AMT_INTERNAL', 'a validated service key did not normalise');
  const route = deps.router.resolve(tenant.ars, service, input.channel);
  if (!route) {
    throw new AmtError('AMT_NO_ROUTE', `no route serves tenant ${tenant.id} and service ${service}`, {
      problems: [{ path: '/service', message: 'no route serves this service for the tenant' }],
    });
  }
  // Here already, so that a multipart upload is refused before its files are read.
  requireIdentityPresent(input.identity, route.minTrustLevel);
  return { input, tenant, service, route };
}

/** An inline attachment, decoded and hashed but not yet written. */
interface DecodedAttachment {
  readonly ref: AttachmentRef;
  readonly content: Buffer;
}

/** Checks every size and hashes the content; nothing is written before the request passed every check. */
function decodeInlineAttachments(deps: IntakeDeps, inline: readonly InlineAttachment[]): DecodedAttachment[] {
  const limit = deps.config.server.attachmentLimitBytes;
  return inline.map((attachment, i) => {
    const content = Buffer.from(attachment.contentBase64, 'base64');
    if (content.length > limit) {
      throw new AmtError('AMT_ATTACHMENT_TOO_LARGE', `attachment ${i} exceeds ${limit} bytes`, {
        problems: [{ path: `/attachments/${i}/contentBase64`, message: `exceeds ${limit} bytes` }],
      });
    }
    const ref: AttachmentRef = {
      sha256: hash('sha256', content),
      size: content.length,
      filename: attachment.filename,
      mediaType: attachment.mediaType,
      purpose: attachment.purpose,
    };
    return { ref, content };
  });
}

async function storeInlineAttachments(
  deps: IntakeDeps,
  decoded: readonly DecodedAttachment[],
): Promise<void> {
  await Promise.all(decoded.map(({ content, ref }) => deps.attachments.saveBuffer(content, ref.sha256)));
}

function uploadedAttachments(
  deps: IntakeDeps,
  files: readonly UploadedFile[],
  purposes: readonly string[],
): AttachmentRef[] {
  const problems: Problem[] = [];
  for (let i = files.length; i < purposes.length; i++)
    problems.push({ path: `/purpose/${i}`, message: 'has no attachment' });
  const refs = files.map((file, i) => {
    const metadata = {
      filename: file.filename,
      mediaType: file.mediaType,
      ...(purposes[i] === undefined ? {} : { purpose: purposes[i] }),
    };
    if (!deps.validators.attachmentMetadata(metadata)) {
      problems.push(...validationProblems(deps.validators.attachmentMetadata.errors, `/attachment/${i}`));
    }
    // busboy decodes names and text parts leniently: a replacement character is the trace of
    // bytes that were not UTF-8 (a file name sent in Latin-1, say), which must not be kept altered.
    if (file.filename.includes('\uFFFD')) {
      problems.push({
        path: `/attachment/${i}/filename`,
        message: "is not valid UTF-8 (send it in UTF-8, or as filename*=UTF-8''…)",
      });
    }
    if (purposes[i]?.includes('\uFFFD')) {
      problems.push({ path: `/attachment/${i}/purpose`, message: 'is not valid UTF-8' });
    }
    return { sha256: file.stored.sha256, size: file.stored.size, ...metadata };
  });
  if (problems.length > 0) {
    throw new AmtError('AMT_VALIDATION_FAILED', 'an attachment is not valid', { problems });
  }
  return refs;
}
