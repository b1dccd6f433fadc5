/**
 * OAuth2 client-credentials tokens for the Submission API. FIT-Connect tokens live at most 30
 * minutes; one is cached and replaced a little before it runs out, so a long upload never starts
 * with a token about to expire. No scope is requested: the Zustelldienst derives the client's
 * rights from its registration.
 */
import { parseRetryAfter, retryLater } from '../../src/adapter-contract.js';

export interface TokenSourceOptions {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly timeoutMs: number;
  readonly now?: () => number;
}

interface CachedToken {
  readonly value: string;
  readonly refreshAt: number;
}

/** Refresh this long before expiry, or after 90 % of the lifetime for short-lived tokens. */
const REFRESH_MARGIN_MS = 60_000;
/** What RFC 6749 error codes look like (`invalid_client`, `unauthorized_client`, …). */
const OAUTH_ERROR_CODE = /^[a-z][a-z0-9_.-]{0,59}$/;

export class ClientCredentialsTokens {
  private cached: CachedToken | undefined;
  private inFlight: Promise<CachedToken> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: TokenSourceOptions) {
    this.now = options.now ?? Date.now;
  }

  /** A valid access token; fetches a new one when none is cached or the cached one is due. */
  async get(signal?: AbortSignal): Promise<string> {
    const cached = this.cached;
    if (cached && this.now() < cached.refreshAt) return cached.value;
    this.inFlight ??= this.fetchToken(signal).finally(() => {
      this.inFlight = undefined;
    });
    this.cached = await this.inFlight;
    return this.cached.value;
  }

  /** Forgets `token` after the API refused it (revoked or expired early). */
  invalidate(token: string): void {
    if (this.cached?.value === token) this.cached = undefined;
  }

  private async fetchToken(signal: AbortSignal | undefined): Promise<CachedToken> {
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.options.clientId,
      client_secret: this.options.clientSecret,
    });
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    let response: Response;
    try {
      response = await fetch(this.options.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (cause) {
      throw retryLater(`FIT-Connect token endpoint not reachable: ${(cause as Error).message}`, { cause });
    }
    const text = await response.text();
    if (!response.ok) {
      // A refused client is a configuration problem, not a fault of the message: keep it retrying
      // until the operator has fixed the credentials.
      const reason = oauthError(text);
      throw retryLater(
        `FIT-Connect token endpoint answered HTTP ${response.status}${reason ? ` (${reason})` : ''}`,
        {
          retryAfterSeconds: parseRetryAfter(response.headers.get('retry-after')),
        },
      );
    }
    let parsed: { access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch (cause) {
      throw retryLater('FIT-Connect token endpoint answered with something that is not JSON', { cause });
    }
    if (typeof parsed.access_token !== 'string' || parsed.access_token === '') {
      throw retryLater('FIT-Connect token endpoint answered without an access_token');
    }
    const lifetimeMs =
      (typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 300) * 1000;
    const margin = Math.min(REFRESH_MARGIN_MS, lifetimeMs / 10);
    return { value: parsed.access_token, refreshAt: this.now() + lifetimeMs - margin };
  }
}

/**
 * The OAuth error code of a refusal (`invalid_client`, …) when it looks like one: the field is
 * the peer's text, and it goes into the message and the log, where free text could name someone.
 */
function oauthError(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    return typeof parsed.error === 'string' && OAUTH_ERROR_CODE.test(parsed.error) ? parsed.error : undefined;
  } catch {
    return undefined;
  }
}
