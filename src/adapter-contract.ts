/**
 * The public adapter contract. Adapters import from this module only — never the store, the
 * pipeline or another adapter. The core knows adapters only through their manifests.
 */
import type { Readable } from 'node:stream';
import { AmtError } from './errors.js';
import type { VerifiedIdentity } from './identity/identity.js';
import type { AttachmentRef } from './store/types.js';

/** A JSON Schema object (draft 2020-12) as plain data. */
export type JsonSchema = Readonly<Record<string, unknown>>;

export interface AdapterCapabilities {
  /** Delivers messages to a receiver. */
  readonly outbound: boolean;
  /** Receives messages pushed to the gateway. */
  readonly inbound: boolean;
  /** Fetches messages or status on a schedule. */
  readonly poll: boolean;
  /** Re-reads routing and destination data it keeps, on a schedule (`task: refresh`); false when absent. */
  readonly refresh?: boolean;
}

/** Minimal structured logger handed to adapters; personal data is redacted by the core. */
export interface AdapterLogger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

/** An application an inbound adapter received (e.g. an EfA submission for the city's own Fachverfahren). */
export interface InboundApplication {
  /** 12-digit ARS of the receiving authority. */
  readonly ars: string;
  readonly service: string;
  /** The sender's id for it (submission id …); with `source` it makes the hand-over idempotent. */
  readonly reference: string;
  readonly channel?: string;
  /**
   * The application as JSON-compatible data, and adapter metadata (e.g. XTA's OSCI message
   * metadata beside a `document`). Stored as `data`, where a JSON-source mapping finds it.
   */
  readonly data?: unknown;
  /**
   * The message as received, when it is a document rather than JSON data (e.g. an XÖV XML
   * message), with its media type; XML-source mappings read it. `receive` refuses anything but
   * a non-empty `mediaType` string and a `content` string.
   */
  readonly document?: { readonly mediaType: string; readonly content: string };
  readonly attachments?: readonly {
    readonly filename: string;
    readonly mediaType: string;
    readonly content: Buffer;
    readonly purpose?: string;
  }[];
}

export interface AdapterContext {
  /** The instance id from `gateway.yaml` (key under `adapters:`). */
  readonly instanceId: string;
  readonly logger: AdapterLogger;
  /** A directory the adapter may use for its own files (resolved, exists). */
  readonly dataDir: string;
  /** Resolves a path from the adapter's config: relative paths are relative to the configuration file. */
  readonly resolvePath: (configured: string) => string;
  /**
   * Hands a received application to the pipeline. Resolves only once it is durably stored; the
   * same (instance, reference) twice yields the same message id, so a re-fetch never duplicates.
   */
  readonly receive: (application: InboundApplication) => Promise<{ readonly messageId: string }>;
  /**
   * Records a status the receiver reported for a delivered message of this instance and maps it
   * to the citizen status. Reporting the latest status again changes nothing. Throws
   * `AMT_STATUS_NOT_DELIVERED` (retryable) while the message is not delivered yet and
   * `AMT_NOT_FOUND` for a message of another instance.
   */
  readonly reportStatus: (update: RemoteStatusUpdate) => Promise<void>;
  /**
   * Finds a message this instance delivered (or is delivering) by its delivery id or by the
   * remote reference its delivery returned; for receivers that answer with either. Throws
   * `AMT_STATUS_AMBIGUOUS` when a remote reference names several messages.
   */
  readonly findMessage?: (
    by: { readonly deliveryId: string } | { readonly remoteReference: string },
  ) => Promise<{ readonly messageId: string } | undefined>;
  /** Delivered messages of this instance still waiting for a final remote status (for status polling). */
  readonly awaitingStatus: (
    finalStatuses: readonly string[],
    limit: number,
  ) => Promise<readonly AwaitingStatus[]>;
  /** Remembers a key once until `expiresAt` (epoch ms); false when it was seen before (replay protection). */
  readonly rememberOnce: (key: string, expiresAt: number) => Promise<boolean>;
}

export interface RemoteStatusUpdate {
  readonly messageId: string;
  /** The receiver's status, e.g. `forwarded`, `accepted`, `rejected`, or a Fachverfahren state. */
  readonly status: string;
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface AwaitingStatus {
  readonly messageId: string;
  readonly deliveryId: string;
  readonly remoteReference: string | undefined;
  readonly remoteStatus: string | undefined;
}

/** One attachment of a delivery: its reference and a way to read it. */
export interface DeliveryAttachment {
  readonly ref: AttachmentRef;
  /** Absolute path of the content-addressed file. */
  readonly path: string;
  open(): Readable;
}

export interface Delivery {
  readonly messageId: string;
  /** Stable across retries: send it as the receiver's idempotency key. */
  readonly deliveryId: string;
  readonly tenant: { readonly id: string; readonly ars: string; readonly name: string };
  readonly service: string;
  /** The portal's own reference of the application. */
  readonly reference: string | undefined;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** The mapped message as it goes to the receiver. */
  readonly body: { readonly contentType: string; readonly content: string | Buffer };
  readonly attachments: readonly DeliveryAttachment[];
  /**
   * The citizen's identity as their IdP confirmed it in a verified SAML assertion (issuer, trust
   * level, pseudonym, names …), exactly as stored at intake. Absent when no one logged in; never
   * what the applicant typed into the form.
   */
  readonly identity?: VerifiedIdentity;
}

export interface DeliveryResult {
  /** The receiver's id for what it got (case number, submission id, file name …). */
  readonly remoteReference?: string | undefined;
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface CallbackRequest {
  /** Header names in lower case, as Node delivers them. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly rawBody: Buffer;
}

export interface CallbackResponse {
  readonly status: number;
  readonly contentType: string;
  /** Sent as JSON unless it is a string or Buffer. */
  readonly body: unknown;
}

export interface AdapterInstance {
  /** Delivers one message. Throw `retryLater` or `rejectPermanently` errors to classify failures. */
  deliver?(delivery: Delivery, signal: AbortSignal): Promise<DeliveryResult>;
  /**
   * Handles a peer's HTTP callback, mounted at `POST /api/v1/callbacks/{instanceId}` with the raw
   * body. No API key is asked for: the adapter authenticates the peer itself (HMAC, signature).
   */
  handleCallback?(request: CallbackRequest): Promise<CallbackResponse>;
  /** One scheduled poll (inbox, status): returns how many items it handled. */
  poll?(signal: AbortSignal): Promise<{ readonly items: number }>;
  /**
   * Re-reads routing and destination data the instance keeps, so a changed or revoked destination
   * key is noticed before the next delivery: returns how many items (destinations) it refreshed.
   */
  refresh?(signal: AbortSignal): Promise<{ readonly items: number }>;
  /** Releases sockets, timers and files. */
  close?(): Promise<void>;
}

export interface AdapterManifest<Config = unknown> {
  /** The adapter type, used as `type:` in `gateway.yaml`. */
  readonly type: string;
  readonly version: string;
  readonly description: string;
  readonly capabilities: AdapterCapabilities;
  /** JSON Schema of the instance's `config:` block. Unknown keys should be rejected. */
  readonly configSchema: JsonSchema;
  /** JSON pointers (into the config block) of fields that hold secrets; they are redacted in logs and output. */
  readonly secrets: readonly string[];
  /** A documented example `config:` block; a test runs every example through the config check. */
  readonly example: Config;
  /**
   * Whether an instance with this config can carry citizen status notices (a route's
   * `postbox.adapter`; it then receives each notice as a message, see docs/status.md): undefined
   * when it can, else the reason it cannot. Adapters without it carry no notices.
   */
  readonly statusNotices?: (config: Config) => string | undefined;
  create(context: AdapterContext, config: Config): AdapterInstance;
}

/** Erases the config type so manifests of different adapters can share a list. */
export function defineAdapter<Config>(manifest: AdapterManifest<Config>): AdapterManifest<unknown> {
  return manifest as AdapterManifest<unknown>;
}

/** A failure a later attempt may overcome (network, 5xx, 429). */
export function retryLater(
  detail: string,
  options: { retryAfterSeconds?: number; cause?: unknown; details?: unknown } = {},
): AmtError {
  // `details` (e.g. the peer's status code) travels into the message history with the error.
  return new AmtError('AMT_DELIVERY_RETRYABLE', detail, options);
}

/** A failure no retry will fix (the receiver rejected the content). */
export function rejectPermanently(detail: string, options: { cause?: unknown } = {}): AmtError {
  return new AmtError('AMT_DELIVERY_REJECTED', detail, options);
}

/**
 * Free text from a peer — a problem's `detail`, a SOAP fault's reason — for an error message: on
 * one line, at most `limit` characters, in double quotes as JSON writes them. Such text may name
 * an applicant or quote a field, so the gateway's logs mask every quoted part; the message's
 * history and dead letter keep it whole for the admin API.
 */
export function quotePeerText(text: string, limit = 200): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return JSON.stringify(flat.length > limit ? `${flat.slice(0, limit)}…` : flat);
}

/** Parses an HTTP `Retry-After` header (seconds or HTTP date) into seconds, if present and sane. */
export function parseRetryAfter(value: string | undefined | null, now = Date.now()): number | undefined {
  if (value === undefined || value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}
