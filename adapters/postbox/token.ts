/**
 * OAuth 2.0 client-credentials tokens for the postbox API: one token per instance, fetched by
 * one request however many notices need it, renewed shortly before it expires.
 */
import { rejectPermanently, retryLater } from '../../src/adapter-contract.js';

export interface TokenSettings {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scope: string | undefined;
  readonly timeoutMs: number;
  readonly now: () => number;
}

const DEFAULT_LIFETIME_SECONDS = 300;
const RENEW_MARGIN_SECONDS = 30;

export class ClientCredentials {
  private cached: { token: string; renewAt: number } | undefined;
  private inflight: Promise<string> | undefined;

  constructor(private readonly settings: TokenSettings) {}

  /** A valid access token, cached or fresh. */
  async token(): Promise<string> {
    if (this.cached && this.settings.now() < this.cached.renewAt) return this.cached.token;
    this.inflight ??= this.fetchToken().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Forgets a token the API refused, unless a newer one replaced it meanwhile. */
  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  private async fetchToken(): Promise<string> {
    const { tokenUrl, clientId, clientSecret, scope } = this.settings;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (scope !== undefined) form.set('scope', scope);
    // RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined.
    const pair = `${encode(clientId)}:${encode(clientSecret)}`;
    const where = `token endpoint ${new URL(tokenUrl).origin}`;
    let response: Response;
    try {
      response = await fetch(tokenUrl, {
        method: 'POST',
        body: form.toString(),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.settings.timeoutMs),
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          Accept: 'application/json',
          Authorization: `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`,
        },
      });
    } catch (cause) {
      throw retryLater(`the ${where} cannot be reached`, { cause });
    }
    const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (response.ok && typeof body?.access_token === 'string' && body.access_token !== '') {
      const expiresIn = Number(body.expires_in);
      const lifetime = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : DEFAULT_LIFETIME_SECONDS;
      const margin = Math.min(RENEW_MARGIN_SECONDS, lifetime / 10);
      this.cached = { token: body.access_token, renewAt: this.settings.now() + (lifetime - margin) * 1000 };
      return body.access_token;
    }
    const what = `the ${where} answered ${response.status}`;
    if (response.ok || response.status === 429 || response.status >= 500) throw retryLater(what);
    throw rejectPermanently(`${what}: the client credentials were not accepted`);
  }
}

function encode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}
