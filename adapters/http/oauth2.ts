/**
 * OAuth 2.0 client-credentials tokens for the `http` adapter: one token is shared by all
 * deliveries of an instance, fetched by one request even when many deliveries need it at once,
 * and renewed shortly before `expires_in` runs out. Credentials the token endpoint refuses are a
 * fault of the configuration, never of an application: the deliveries are retried (by the
 * route's retry policy) rather than rejected, so that they go out once the secret is fixed, and
 * the endpoint is not asked again for a while, so that a backlog does not hammer it.
 */
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import axios from 'axios';
import { retryLater } from '../../src/adapter-contract.js';
import { describeTarget, transportFailure } from './failures.js';

export interface OAuth2Settings {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scope: string | undefined;
  readonly clientAuthentication: 'basic' | 'body';
  readonly timeoutMs: number;
  readonly httpAgent: HttpAgent;
  readonly httpsAgent: HttpsAgent;
  readonly userAgent: string;
  readonly now: () => number;
}

export interface BearerToken {
  readonly accessToken: string;
  /** True when it came from the cache (a 401 may then mean it was revoked early). */
  readonly fromCache: boolean;
}

interface CachedToken {
  readonly accessToken: string;
  readonly renewAt: number;
}

/** Lifetime assumed when the server sends no `expires_in`; a 401 renews it earlier. */
const DEFAULT_LIFETIME_SECONDS = 300;
/** Renew this long before expiry (at most a tenth of the lifetime) so a token never expires in flight. */
const RENEW_MARGIN_SECONDS = 30;
const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;
/** What RFC 6749 error codes look like (`invalid_client`, `unauthorized_client`, …). */
const OAUTH_ERROR_CODE = /^[a-z][a-z0-9_.-]{0,59}$/;
/** How long refused credentials are not presented again; deliveries meanwhile fail at once. */
export const REFUSAL_PAUSE_MS = 30_000;

export class OAuth2TokenSource {
  private cached: CachedToken | undefined;
  private inflight: Promise<CachedToken> | undefined;
  private refused: { readonly reason: string; readonly until: number } | undefined;
  private readonly target: string;

  constructor(private readonly settings: OAuth2Settings) {
    this.target = describeTarget(settings.tokenUrl);
  }

  /** A valid access token: the cached one, or a fresh one from the token endpoint. */
  async token(signal: AbortSignal): Promise<BearerToken> {
    const cached = this.cached;
    if (cached && this.settings.now() < cached.renewAt)
      return { accessToken: cached.accessToken, fromCache: true };
    const refused = this.refused;
    if (refused && this.settings.now() < refused.until) {
      const seconds = Math.ceil((refused.until - this.settings.now()) / 1000);
      throw retryLater(`${refused.reason} (not asked again for ${seconds} s)`, {
        retryAfterSeconds: seconds,
      });
    }
    this.inflight ??= this.fetchToken().finally(() => {
      this.inflight = undefined;
    });
    const fresh = await abortable(this.inflight, signal);
    return { accessToken: fresh.accessToken, fromCache: false };
  }

  /** Forgets a token the receiver refused, unless a newer one has replaced it meanwhile. */
  invalidate(accessToken: string): void {
    if (this.cached?.accessToken === accessToken) this.cached = undefined;
  }

  private async fetchToken(): Promise<CachedToken> {
    const { clientId, clientSecret, scope, clientAuthentication } = this.settings;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (scope !== undefined) form.set('scope', scope);
    const headers: Record<string, string> = {
      'Content-Type': 'application/x-www-form-urlencoded',
      Accept: 'application/json',
      'User-Agent': this.settings.userAgent,
    };
    if (clientAuthentication === 'basic') {
      // RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined.
      const pair = `${formEncode(clientId)}:${formEncode(clientSecret)}`;
      headers.Authorization = `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
    } else {
      form.set('client_id', clientId);
      form.set('client_secret', clientSecret);
    }
    const timeout = AbortSignal.timeout(this.settings.timeoutMs);
    let status: number;
    let text: string;
    try {
      const response = await axios.request<string>({
        method: 'POST',
        url: this.settings.tokenUrl,
        data: form.toString(),
        headers,
        signal: timeout,
        responseType: 'text',
        transformResponse: [(data: unknown) => data],
        validateStatus: () => true,
        maxRedirects: 0,
        proxy: false,
        maxContentLength: MAX_TOKEN_RESPONSE_BYTES,
        httpAgent: this.settings.httpAgent,
        httpsAgent: this.settings.httpsAgent,
      });
      status = response.status;
      text = typeof response.data === 'string' ? response.data : '';
    } catch (err) {
      throw transportFailure(err, {
        target: `token endpoint ${this.target}`,
        aborted: false,
        timedOut: timeout.aborted,
        timeoutMs: this.settings.timeoutMs,
      });
    }
    const body = parseJsonObject(text);
    if (status >= 200 && status < 300) {
      const accessToken = body?.access_token;
      if (typeof accessToken !== 'string' || accessToken === '') {
        throw retryLater(`token endpoint ${this.target} answered ${status} without an access_token`);
      }
      const lifetime = expiresIn(body?.expires_in) ?? DEFAULT_LIFETIME_SECONDS;
      const margin = Math.min(RENEW_MARGIN_SECONDS, lifetime / 10);
      const token = { accessToken, renewAt: this.settings.now() + (lifetime - margin) * 1000 };
      this.cached = token;
      this.refused = undefined;
      return token;
    }
    // Only an OAuth error code is passed on: descriptions, and whatever else a peer puts in the
    // place of a code, are free text that could name someone.
    const code =
      typeof body?.error === 'string' && OAUTH_ERROR_CODE.test(body.error) ? ` (${body.error})` : '';
    const what = `token endpoint ${this.target} answered ${status}${code}`;
    if (status === 408 || status === 425 || status === 429 || status >= 500) throw retryLater(what);
    const reason = `${what}: the client credentials were not accepted — check auth.clientId, auth.clientSecret and auth.scope`;
    this.refused = { reason, until: this.settings.now() + REFUSAL_PAUSE_MS };
    throw retryLater(reason, { retryAfterSeconds: REFUSAL_PAUSE_MS / 1000 });
  }
}

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

function expiresIn(value: unknown): number | undefined {
  const seconds = typeof value === 'string' ? Number(value) : value;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Waits for a shared promise, but lets one caller stop waiting without cancelling it for the others. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(retryLater('the delivery was aborted while waiting for a token'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(retryLater('the delivery was aborted while waiting for a token'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}
