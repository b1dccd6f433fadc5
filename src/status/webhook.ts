/**
 * Portal webhooks: the adapter instance that delivers a client's status notices to its URL.
 * Each request is signed so the portal can tell it came from this gateway and was not replayed:
 *
 *   X-Amtsbote-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *
 * The gateway creates one instance per client with a `webhook`; the pipeline delivers through it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  parseRetryAfter,
  rejectPermanently,
  retryLater,
  type AdapterInstance,
  type Delivery,
  type DeliveryResult,
} from '../adapter-contract.js';
import type { ClientConfig } from '../config/types.js';
import { webhookTarget } from './notify.js';

export const SIGNATURE_HEADER = 'X-Amtsbote-Signature';
/** How old a signature a receiver should still accept, by default. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

const USER_AGENT = 'amtsbote-webhook/1.0';

/** The header value for `body` signed at `unixSeconds`. */
export function signWebhook(body: string | Buffer, secret: string, unixSeconds: number): string {
  const t = Math.floor(unixSeconds);
  const mac = createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
  return `t=${t},v1=${mac}`;
}

/**
 * Checks a signature header the way a portal should: the HMAC over the raw body, compared in
 * constant time, and a timestamp no further than `toleranceSeconds` from now.
 */
export function verifyWebhookSignature(
  header: string | null | undefined,
  body: string | Buffer,
  secret: string,
  options: { now?: number; toleranceSeconds?: number } = {},
): boolean {
  if (!header) return false;
  const parts = new Map<string, string[]>();
  for (const item of header.split(',')) {
    const [key, value] = item.trim().split('=', 2);
    if (key === undefined || value === undefined) continue;
    parts.set(key, [...(parts.get(key) ?? []), value]);
  }
  const t = parts.get('t')?.[0];
  if (t === undefined || !/^\d{1,12}$/.test(t)) return false;
  const now = (options.now ?? Date.now()) / 1000;
  if (Math.abs(now - Number(t)) > (options.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS)) return false;
  const expected = Buffer.from(
    createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex'),
    'utf8',
  );
  // Several v1 values allow a receiver to accept signatures while a secret is being rotated.
  return (parts.get('v1') ?? []).some((candidate) => {
    const given = Buffer.from(candidate, 'utf8');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export interface WebhookNotifierOptions {
  readonly now?: () => number;
}

/** The adapter instances of every client with a webhook, by target id (`webhook:<client id>`). */
export function webhookNotifiers(
  clients: readonly ClientConfig[],
  options: WebhookNotifierOptions = {},
): Map<string, AdapterInstance> {
  const notifiers = new Map<string, AdapterInstance>();
  for (const client of clients) {
    if (client.webhook)
      notifiers.set(webhookTarget(client.id), createWebhookNotifier(client.webhook, options));
  }
  return notifiers;
}

export function createWebhookNotifier(
  webhook: { readonly url: string; readonly secret: string },
  options: WebhookNotifierOptions = {},
): AdapterInstance {
  const now = options.now ?? Date.now;
  const target = describe(webhook.url);
  return {
    async deliver(delivery: Delivery, signal: AbortSignal): Promise<DeliveryResult> {
      const body = Buffer.isBuffer(delivery.body.content)
        ? delivery.body.content
        : Buffer.from(delivery.body.content, 'utf8');
      let response: Response;
      try {
        response = await fetch(webhook.url, {
          method: 'POST',
          body,
          redirect: 'manual',
          signal,
          headers: {
            'Content-Type': 'application/json',
            'User-Agent': USER_AGENT,
            'Idempotency-Key': delivery.deliveryId,
            'X-Amtsbote-Delivery-Id': delivery.deliveryId,
            'X-Amtsbote-Event': 'application.status',
            [SIGNATURE_HEADER]: signWebhook(body, webhook.secret, now() / 1000),
          },
        });
      } catch (cause) {
        throw retryLater(`the webhook ${target} cannot be reached (${networkReason(cause)})`, { cause });
      }
      // Only the status matters; the body is read and dropped so the connection can be reused.
      await response.arrayBuffer().catch(() => undefined);
      const status = response.status;
      if (status >= 200 && status < 300) return { detail: { status } };
      const what = `the webhook ${target} answered ${status}`;
      if (status === 408 || status === 425 || status === 429 || status >= 500) {
        const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'), now());
        throw retryLater(what, {
          details: { status },
          ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
        });
      }
      throw rejectPermanently(`${what}; notices are not redirected or retried on a client error`);
    },
  };
}

/** The URL without query and credentials, for messages in the history. */
function describe(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return 'URL';
  }
}

function networkReason(cause: unknown): string {
  const inner = (cause as { cause?: { code?: unknown } } | null)?.cause?.code;
  if (typeof inner === 'string') return inner;
  return cause instanceof Error ? cause.name : 'error';
}
