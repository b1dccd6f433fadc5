/**
 * Notifications of a citizen-status change are messages themselves: the portal's webhook and the
 * citizen's postbox notice are accepted in the same commit as the status, then delivered by the
 * pipeline like any application — with retries, dead letters, replay and history. Each has an
 * idempotency key per (application, change), so a repeated report never notifies twice.
 */
import { createHash } from 'node:crypto';
import { newId } from '../ids.js';
import { rejectPermanently } from '../adapter-contract.js';
import { canonicalJson } from '../canonical-json.js';
import type { GatewayConfig, PostboxNoticeConfig, RetryPolicy, RouteConfig } from '../config/types.js';
import type { MessageRecord, NewMessage } from '../store/types.js';
import type { StatusMapping, StatusTextValues } from './mapping.js';
import {
  compileTemplate,
  DEFAULT_SUBJECT,
  isCitizenStatus,
  STATUS_LABELS,
  type CitizenStatus,
  type TextTemplate,
} from './model.js';

/** Client id of notification messages; scopes their idempotency keys apart from every portal's. */
export const STATUS_NOTICE_CLIENT = 'amtsbote:status';
/** Route ids of notification messages; a configured route id can never contain a colon. */
export const WEBHOOK_ROUTE = 'status:webhook';
export const POSTBOX_ROUTE = 'status:postbox';

/** Adapter instance id of the webhook notifier of one portal client. */
export function webhookTarget(clientId: string): string {
  return `webhook:${clientId}`;
}

/**
 * The routes notification messages travel on: no mapping (the notice is sent as it was stored)
 * and the global retry policy. No application can be routed to them: their ARS `-` is a prefix of
 * no ARS, and their service is no Leistungsschlüssel.
 */
export function statusNoticeRoutes(config: Pick<GatewayConfig, 'retry'>): RouteConfig[] {
  const route = (id: string, retry: RetryPolicy): RouteConfig => ({
    id,
    ars: '-',
    service: 'amtsbote:status-notice',
    channel: undefined,
    adapter: '',
    mapping: undefined,
    retry,
  });
  return [route(WEBHOOK_ROUTE, config.retry), route(POSTBOX_ROUTE, config.retry)];
}

/** What the portal's webhook receives (the JSON body, signed). */
export interface WebhookNotice {
  readonly event: 'application.status';
  readonly applicationId: string;
  readonly reference: string | null;
  readonly tenant: string;
  readonly service: string;
  readonly citizenStatus: CitizenStatus;
  readonly citizenText: string;
  readonly remoteStatus: string;
  readonly remoteReference: string | null;
  /** Numbers the citizen-status changes of the application from 1: a portal keeps the highest. */
  readonly change: number;
  readonly at: string;
}

/** What a `postbox` adapter instance receives: the notice, ready to send. */
export interface PostboxNotice {
  /** bPK2 pseudonym when the citizen logged in with a verified identity, else the portal's reference. */
  readonly recipient: { readonly pseudonym: string } | { readonly reference: string };
  readonly subject: string;
  readonly text: string;
  readonly status: CitizenStatus;
  readonly service: string;
  readonly reference: string | null;
  readonly applicationId: string;
}

/**
 * States of the federal citizen postbox. FIT-Connect's own events are delivery states only; these
 * are what the citizen sees. The gateway sends RECEIVED … COMPLETED (INITIATED and SUBMITTED
 * belong to the portal before the gateway is involved).
 */
export const POSTBOX_STATUSES = [
  'INITIATED',
  'SUBMITTED',
  'RECEIVED',
  'PROCESSING',
  'ACTION_REQUIRED',
  'COMPLETED',
] as const;

/**
 * How a citizen status is sent to a postbox unless an adapter instance's `statusValues` says
 * otherwise: the federal postbox knows no rejected state, and a rejection ends the procedure.
 */
export const DEFAULT_POSTBOX_STATUS_VALUES: Readonly<Partial<Record<CitizenStatus, string>>> = {
  REJECTED: 'COMPLETED',
};

/** The postbox's value for a citizen status: configured, else the default, else the status itself. */
export function postboxStatus(
  status: CitizenStatus,
  statusValues: Readonly<Partial<Record<string, string>>> = {},
): string {
  return statusValues[status] ?? DEFAULT_POSTBOX_STATUS_VALUES[status] ?? status;
}

/**
 * What a postbox receives for one notice — the body of the REST postbox API and the Fachdaten
 * of a FIT-Connect submission to the postbox alike.
 */
export interface PostboxMessage {
  readonly recipient: PostboxNotice['recipient'];
  readonly subject: string;
  readonly text: string;
  /** In the postbox's vocabulary (see `postboxStatus`). */
  readonly status: string;
  readonly service: string;
  readonly reference: string | null;
  readonly sender?: string;
}

/** The message a postbox gets for `notice`, with the status in its vocabulary. */
function postboxMessage(
  notice: PostboxNotice,
  options: { statusValues?: Readonly<Partial<Record<string, string>>>; sender?: string | undefined } = {},
): PostboxMessage {
  return {
    recipient: notice.recipient,
    subject: notice.subject,
    text: notice.text,
    status: postboxStatus(notice.status, options.statusValues),
    service: notice.service,
    reference: notice.reference,
    ...(options.sender === undefined ? {} : { sender: options.sender }),
  };
}

/**
 * What a postbox adapter sends for one delivery: the notice the core stored, as the postbox
 * message (status in the postbox's vocabulary). A body that is not such a notice — or a notice
 * without a bPK2 pseudonym where one is required — is refused for good and never sent.
 */
export function deliveredPostboxMessage(
  content: string | Buffer,
  options: {
    readonly statusValues?: Readonly<Partial<Record<string, string>>> | undefined;
    readonly sender?: string | undefined;
    readonly requirePseudonym?: boolean | undefined;
  },
): { readonly notice: PostboxNotice; readonly message: PostboxMessage } {
  let notice: unknown;
  try {
    notice = JSON.parse(content.toString());
  } catch {
    notice = undefined;
  }
  if (!isPostboxNotice(notice)) {
    throw rejectPermanently(
      'the message is not a status notice; an adapter that carries status notices carries only those',
    );
  }
  if (options.requirePseudonym && !('pseudonym' in notice.recipient)) {
    throw rejectPermanently(
      'the application has no verified citizen identity (bPK2) to address the notice to',
    );
  }
  return { notice, message: postboxMessage(notice, options) };
}

/** Whether a parsed message body is a postbox notice as `StatusNotices` builds it. */
function isPostboxNotice(value: unknown): value is PostboxNotice {
  if (typeof value !== 'object' || value === null) return false;
  const notice = value as Partial<Record<keyof PostboxNotice, unknown>>;
  const recipient = notice.recipient as Record<string, unknown> | null | undefined;
  const addressed =
    typeof recipient === 'object' &&
    recipient !== null &&
    (typeof recipient.pseudonym === 'string' || typeof recipient.reference === 'string');
  return (
    addressed &&
    typeof notice.subject === 'string' &&
    typeof notice.text === 'string' &&
    isCitizenStatus(notice.status) &&
    typeof notice.service === 'string'
  );
}

export interface StatusChange {
  readonly message: MessageRecord;
  readonly route: RouteConfig | undefined;
  readonly mapping: StatusMapping;
  readonly values: StatusTextValues;
  readonly citizenStatus: CitizenStatus;
  readonly citizenText: string;
  readonly remoteStatus: string;
  readonly at: number;
}

/** Postbox subject and texts of one route, compiled once. */
interface PostboxTemplates {
  readonly config: PostboxNoticeConfig;
  readonly subject: TextTemplate;
  readonly texts: Readonly<Partial<Record<string, TextTemplate>>>;
}

/**
 * Builds the follow-up messages of citizen-status changes. Construct it once at start: it
 * compiles the postbox templates of every route.
 */
export class StatusNotices {
  private readonly webhookClients: ReadonlySet<string>;
  private readonly postbox = new Map<string, PostboxTemplates>();

  constructor(config: Pick<GatewayConfig, 'clients' | 'routes'>) {
    this.webhookClients = new Set(config.clients.filter((c) => c.webhook !== undefined).map((c) => c.id));
    for (const route of config.routes) {
      if (!route.postbox) continue;
      const where = `route ${route.id} postbox`;
      this.postbox.set(route.id, {
        config: route.postbox,
        subject: compileTemplate(route.postbox.subject ?? DEFAULT_SUBJECT, `${where} subject`),
        texts: Object.fromEntries(
          Object.entries(route.postbox.templates).map(([status, text]) => [
            status,
            compileTemplate(text ?? '', `${where} template ${status}`),
          ]),
        ),
      });
    }
  }

  /** The follow-up messages of change number `change`; the same change always gives the same keys. */
  followUps(change: StatusChange, number: number): NewMessage[] {
    const { message } = change;
    const notices: NewMessage[] = [];
    if (this.webhookClients.has(message.clientId)) {
      const notice: WebhookNotice = {
        event: 'application.status',
        applicationId: message.id,
        reference: message.reference ?? null,
        tenant: message.ars,
        service: message.service,
        citizenStatus: change.citizenStatus,
        citizenText: change.citizenText,
        remoteStatus: change.remoteStatus,
        remoteReference: message.remoteReference ?? null,
        change: number,
        at: new Date(change.at).toISOString(),
      };
      notices.push(
        followUp(message, WEBHOOK_ROUTE, webhookTarget(message.clientId), notice, number, change.at),
      );
    }
    const postbox = change.route && this.postbox.get(change.route.id);
    if (postbox) {
      const values = {
        ...change.values,
        service: change.mapping.serviceName,
        status: STATUS_LABELS[change.citizenStatus],
      };
      const template = postbox.texts[change.citizenStatus];
      const notice: PostboxNotice = {
        recipient: recipientOf(message),
        subject: postbox.subject.render(values),
        text: template ? template.render(values) : change.citizenText,
        status: change.citizenStatus,
        service: message.service,
        reference: message.reference ?? null,
        applicationId: message.id,
      };
      notices.push(followUp(message, POSTBOX_ROUTE, postbox.config.adapter, notice, number, change.at));
    }
    return notices;
  }
}

function followUp(
  message: MessageRecord,
  routeId: string,
  target: string,
  notice: WebhookNotice | PostboxNotice,
  number: number,
  at: number,
): NewMessage {
  const key = `${routeId === WEBHOOK_ROUTE ? 'webhook' : 'postbox'}:${message.id}:${number}`;
  return {
    id: newId(),
    deliveryId: newId(),
    direction: 'outbound',
    tenantId: message.tenantId,
    ars: message.ars,
    service: message.service,
    reference: message.reference,
    clientId: STATUS_NOTICE_CLIENT,
    routeId,
    target,
    payload: canonicalJson(notice),
    attachments: [],
    // The key alone identifies the notice; its hash keeps a repeat from counting as a conflict.
    idempotency: { key, requestHash: createHash('sha256').update(key).digest('hex') },
    receivedAt: at,
  };
}

/** The citizen's bPK2 pseudonym from a verified login stored with the application, else the reference. */
export function recipientOf(message: MessageRecord): PostboxNotice['recipient'] {
  if (message.payload.includes('"verifiedIdentity"')) {
    try {
      const payload = JSON.parse(message.payload) as { verifiedIdentity?: { pseudonym?: unknown } } | null;
      const pseudonym = payload?.verifiedIdentity?.pseudonym;
      if (typeof pseudonym === 'string' && pseudonym !== '') return { pseudonym };
    } catch {
      // Not JSON: not written by this gateway's intake, so there is no identity in it either.
    }
  }
  return { reference: message.reference ?? message.id };
}
