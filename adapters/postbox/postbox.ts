/**
 * Delivery of one status notice to the postbox API: one JSON POST, idempotent by the delivery id.
 * The core builds the notice (recipient, German subject and text) when a citizen status changes;
 * this adapter only addresses and sends it.
 */
import {
  parseRetryAfter,
  rejectPermanently,
  retryLater,
  type AdapterContext,
  type AdapterInstance,
  type Delivery,
  type DeliveryResult,
} from '../../src/adapter-contract.js';
import { parseTimerDuration } from '../../src/config/units.js';
import { AmtError } from '../../src/errors.js';
import { deliveredPostboxMessage, type PostboxMessage } from '../../src/status/notify.js';
import type { PostboxConfig } from './manifest.js';
import { ClientCredentials } from './token.js';

const USER_AGENT = 'amtsbote-postbox/1.0';
const RESERVED_HEADERS = ['authorization', 'content-type', 'content-length', 'idempotency-key', 'host'];

/**
 * The JSON body the postbox API receives: the postbox message the core defines (REJECTED is sent
 * as COMPLETED unless `statusValues` says otherwise).
 */
export type PostboxRequestBody = PostboxMessage;

export function createPostbox(
  context: AdapterContext,
  config: PostboxConfig,
  options: { now?: () => number } = {},
): AdapterInstance {
  const now = options.now ?? Date.now;
  const timeoutMs = parseTimerDuration(config.timeout ?? '30s');
  const headers = checkedHeaders(config.headers ?? {});
  const auth = config.auth ?? { type: 'none' };
  const tokens =
    auth.type === 'oauth2'
      ? new ClientCredentials({
          tokenUrl: auth.tokenUrl,
          clientId: auth.clientId,
          clientSecret: auth.clientSecret,
          scope: auth.scope,
          timeoutMs,
          now,
        })
      : undefined;
  const target = new URL(config.url).origin + new URL(config.url).pathname;

  const send = async (body: string, delivery: Delivery, signal: AbortSignal, token: string | undefined) => {
    const authorization = auth.type === 'bearer' ? `Bearer ${auth.token}` : token && `Bearer ${token}`;
    try {
      return await fetch(config.url, {
        method: 'POST',
        body,
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        headers: {
          ...headers,
          'Content-Type': 'application/json',
          'User-Agent': USER_AGENT,
          'Idempotency-Key': delivery.deliveryId,
          ...(authorization ? { Authorization: authorization } : {}),
        },
      });
    } catch (cause) {
      throw retryLater(`the postbox API ${target} cannot be reached`, { cause });
    }
  };

  return {
    async deliver(delivery: Delivery, signal: AbortSignal): Promise<DeliveryResult> {
      const request: PostboxRequestBody = deliveredPostboxMessage(delivery.body.content, config).message;
      const body = JSON.stringify(request);
      const token = tokens ? await tokens.token() : undefined;
      let response = await send(body, delivery, signal, token);
      if (response.status === 401 && tokens && token) {
        // A token revoked before its time: one fresh token, one more try.
        await response.arrayBuffer().catch(() => undefined);
        tokens.invalidate(token);
        response = await send(body, delivery, signal, await tokens.token());
      }
      const answer = await response.text().catch(() => '');
      const status = response.status;
      if (status >= 200 && status < 300) {
        context.logger.debug('status notice delivered to the postbox', {
          deliveryId: delivery.deliveryId,
          status,
        });
        return {
          remoteReference: remoteReference(answer, response.headers.get('location')),
          detail: { status },
        };
      }
      const what = `the postbox API ${target} answered ${status}`;
      if (status === 408 || status === 425 || status === 429 || status >= 500) {
        const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'), now());
        throw retryLater(what, {
          details: { status },
          ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
        });
      }
      throw rejectPermanently(`${what}; redirects are not followed, client errors not retried`);
    },
  };
}

function remoteReference(answer: string, location: string | null): string | undefined {
  try {
    const parsed = JSON.parse(answer) as { id?: unknown } | null;
    if (typeof parsed?.id === 'string' && parsed.id !== '') return parsed.id.slice(0, 200);
  } catch {
    // Not JSON: the Location header may still name the notice.
  }
  return location ?? undefined;
}

function checkedHeaders(headers: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  for (const name of Object.keys(headers)) {
    if (RESERVED_HEADERS.includes(name.toLowerCase())) {
      throw new AmtError('AMT_CONFIG_INVALID', `postbox adapter: the header ${name} is set by the adapter`, {
        problems: [{ path: `/headers/${name}`, message: 'is set by the adapter' }],
      });
    }
  }
  return headers;
}
