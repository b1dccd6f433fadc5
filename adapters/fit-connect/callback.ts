/**
 * Callbacks from the Zustelldienst ("new submissions for your destination", "new event in a
 * case"). They only say that something is waiting — the content is always fetched through the
 * API — but an unauthenticated one must still be refused: header `callback-authentication` is
 * the hex HMAC-SHA512 of `callback-timestamp + "." + raw body` under the destination's callback
 * secret; older than five minutes, from the future, or seen before is refused as well.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AdapterLogger } from '../../src/adapter-contract.js';
import { ERROR_CATALOG } from '../../src/errors.js';

export const CALLBACK_MAX_AGE_SECONDS = 300;
/** Tolerated clock difference for timestamps slightly in the future. */
export const CALLBACK_FUTURE_SKEW_SECONDS = 30;
export const CALLBACK_AUTH_HEADER = 'callback-authentication';
export const CALLBACK_TIMESTAMP_HEADER = 'callback-timestamp';

export interface CallbackCheckInput {
  readonly secret: string;
  readonly timestampHeader: string | undefined;
  readonly authHeader: string | undefined;
  /** The body exactly as received — a re-serialised JSON body no longer matches the HMAC. */
  readonly rawBody: Buffer | string;
  /** Epoch milliseconds; defaults to now. */
  readonly now?: number;
  /** Replay protection (`AdapterContext.rememberOnce`); without it a replay is not detected. */
  readonly rememberOnce?: (key: string, expiresAt: number) => Promise<boolean>;
}

export type CallbackCheck = { readonly valid: true } | { readonly valid: false; readonly reason: string };

/** The HMAC the Zustelldienst sends for a body and timestamp (hex). */
export function callbackSignature(secret: string, timestamp: string, rawBody: Buffer | string): string {
  return createHmac('sha512', secret)
    .update(`${timestamp}.`)
    .update(typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody)
    .digest('hex');
}

export async function verifyCallback(input: CallbackCheckInput): Promise<CallbackCheck> {
  const { timestampHeader, authHeader } = input;
  if (!timestampHeader || !/^\d{1,15}$/.test(timestampHeader.trim())) {
    return { valid: false, reason: 'callback-timestamp is missing or not a number of seconds' };
  }
  if (!authHeader || !/^[0-9a-fA-F]+$/.test(authHeader.trim())) {
    return { valid: false, reason: 'callback-authentication is missing or not hex' };
  }
  const timestamp = Number(timestampHeader.trim());
  const nowSeconds = Math.floor((input.now ?? Date.now()) / 1000);
  if (timestamp < nowSeconds - CALLBACK_MAX_AGE_SECONDS)
    return { valid: false, reason: 'the callback is too old' };
  if (timestamp > nowSeconds + CALLBACK_FUTURE_SKEW_SECONDS) {
    return { valid: false, reason: 'the callback timestamp lies in the future' };
  }
  const expected = Buffer.from(callbackSignature(input.secret, timestampHeader.trim(), input.rawBody), 'hex');
  const presented = Buffer.from(authHeader.trim().toLowerCase(), 'hex');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    return { valid: false, reason: 'the callback-authentication does not match' };
  }
  if (input.rememberOnce) {
    const expiresAt = (timestamp + CALLBACK_MAX_AGE_SECONDS + CALLBACK_FUTURE_SKEW_SECONDS) * 1000;
    const first = await input.rememberOnce(`fit-connect-callback:${expected.toString('hex')}`, expiresAt);
    if (!first) return { valid: false, reason: 'the callback was received before (replay)' };
  }
  return { valid: true };
}

/** What a verified callback announces. */
export interface CallbackNotification {
  readonly type: string;
  readonly submissionIds: readonly string[];
}

import type { CallbackRequest, CallbackResponse } from '../../src/adapter-contract.js';

export type { CallbackRequest, CallbackResponse };

export interface CallbackHandlerOptions {
  readonly secret: string;
  readonly rememberOnce: (key: string, expiresAt: number) => Promise<boolean>;
  readonly logger: AdapterLogger;
  /** Called for a verified callback; not awaited, so the Zustelldienst gets its answer at once. */
  readonly onNotification: (notification: CallbackNotification) => Promise<unknown>;
  readonly now?: () => number;
}

/** A framework-free handler: raw body and headers in, status and body out. */
export function createCallbackHandler(
  options: CallbackHandlerOptions,
): (request: CallbackRequest) => Promise<CallbackResponse> {
  return async (request) => {
    const check = await verifyCallback({
      secret: options.secret,
      timestampHeader: header(request, CALLBACK_TIMESTAMP_HEADER),
      authHeader: header(request, CALLBACK_AUTH_HEADER),
      rawBody: request.rawBody,
      now: (options.now ?? Date.now)(),
      rememberOnce: options.rememberOnce,
    });
    if (!check.valid) {
      options.logger.warn('FIT-Connect callback refused', { reason: check.reason });
      return refusal(check.reason);
    }
    let notification: CallbackNotification;
    try {
      const parsed = JSON.parse(request.rawBody.toString()) as { type?: unknown; submissionIds?: unknown };
      notification = {
        type: typeof parsed.type === 'string' ? parsed.type : 'unknown',
        submissionIds: Array.isArray(parsed.submissionIds)
          ? parsed.submissionIds.filter((s): s is string => typeof s === 'string')
          : [],
      };
    } catch {
      return {
        status: 400,
        contentType: 'application/problem+json',
        body: {
          type: 'about:blank',
          title: ERROR_CATALOG.AMT_BODY_MALFORMED.title,
          status: 400,
          code: 'AMT_BODY_MALFORMED',
        },
      };
    }
    options.onNotification(notification).catch((err: unknown) => {
      options.logger.warn('FIT-Connect poll after a callback failed', { error: (err as Error).message });
    });
    return { status: 200, contentType: 'application/json', body: { received: true } };
  };
}

function refusal(reason: string): CallbackResponse {
  const spec = ERROR_CATALOG.AMT_FIT_CONNECT_CALLBACK_INVALID;
  return {
    status: spec.status,
    contentType: 'application/problem+json',
    body: {
      type: 'about:blank',
      title: spec.title,
      status: spec.status,
      detail: reason,
      code: 'AMT_FIT_CONNECT_CALLBACK_INVALID',
    },
  };
}

function header(request: CallbackRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : (value as string | undefined);
}
