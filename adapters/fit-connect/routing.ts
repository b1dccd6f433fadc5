/**
 * Finds the destination for (ARS, Leistungsschlüssel) through the FIT-Connect Routing API
 * (`GET /routes?leikaKey=&ars=`). When a JWKS for the routing data is configured, the route's
 * `destinationSignature` — the addressing data signed where it was maintained — must verify and
 * name the same destination and service. Answers are cached for a TTL.
 */
import { compactVerify, createRemoteJWKSet } from 'jose';
import { rejectPermanently, retryLater } from '../../src/adapter-contract.js';
import { leistungsschluesselUrn } from '../../src/domain.js';
import { classifyFailure } from './client.js';

interface RouteResult {
  readonly routes?: readonly { readonly destinationId?: unknown; readonly destinationSignature?: unknown }[];
}

export interface RoutingOptions {
  readonly routingApiUrl: string;
  readonly routingJwksUrl: string | undefined;
  /** Host of the configured Submission API; a signed route naming another host is refused. */
  readonly submissionHost: string;
  readonly ttlMs: number;
  readonly timeoutMs: number;
  readonly now?: () => number;
}

const AREA_URN_PREFIX = 'urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:rs:';

export class RoutingDirectory {
  private readonly cache = new Map<string, { destinationId: string; expiresAt: number }>();
  private readonly jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  constructor(private readonly options: RoutingOptions) {
    this.jwks = options.routingJwksUrl ? createRemoteJWKSet(new URL(options.routingJwksUrl)) : undefined;
  }

  async destinationFor(ars: string, leikaKey: string, signal?: AbortSignal): Promise<string> {
    const cacheKey = `${ars}|${leikaKey}`;
    const hit = this.cache.get(cacheKey);
    if (hit && hit.expiresAt > this.now()) return hit.destinationId;
    const destinationId = await this.lookup(ars, leikaKey, signal);
    this.cache.set(cacheKey, { destinationId, expiresAt: this.now() + this.options.ttlMs });
    return destinationId;
  }

  /** The (ARS, Leistungsschlüssel) pairs with a cached route (also expired ones). */
  cachedRoutes(): { readonly ars: string; readonly leikaKey: string }[] {
    return [...this.cache.keys()].map((key) => {
      const [ars, leikaKey] = key.split('|') as [string, string];
      return { ars, leikaKey };
    });
  }

  /**
   * Looks the route up again, bypassing the cache, with the same signature checks. Success
   * replaces the cache entry; a failure removes it so the next delivery asks again.
   */
  async refreshRoute(ars: string, leikaKey: string, signal?: AbortSignal): Promise<string> {
    const cacheKey = `${ars}|${leikaKey}`;
    try {
      const destinationId = await this.lookup(ars, leikaKey, signal);
      this.cache.set(cacheKey, { destinationId, expiresAt: this.now() + this.options.ttlMs });
      return destinationId;
    } catch (err) {
      this.cache.delete(cacheKey);
      throw err;
    }
  }

  private async lookup(ars: string, leikaKey: string, signal: AbortSignal | undefined): Promise<string> {
    const url = new URL(`${this.options.routingApiUrl}/routes`);
    url.searchParams.set('leikaKey', leikaKey);
    url.searchParams.set('ars', ars);
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { accept: 'application/json' },
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (cause) {
      throw retryLater(`FIT-Connect routing: ${(cause as Error).message}`, { cause });
    }
    const text = await response.text();
    if (!response.ok) {
      throw classifyFailure('routing lookup', { status: response.status, headers: response.headers, text });
    }
    let result: RouteResult;
    try {
      result = JSON.parse(text) as RouteResult;
    } catch (cause) {
      throw retryLater('FIT-Connect routing: the answer is not JSON', { cause });
    }
    const route = result.routes?.[0];
    if (!route || typeof route.destinationId !== 'string') {
      throw rejectPermanently(
        `FIT-Connect routing knows no destination for ARS ${ars} and service ${leikaKey}`,
      );
    }
    if (this.jwks) await this.checkSignature(route.destinationId, route.destinationSignature, ars, leikaKey);
    return route.destinationId;
  }

  private async checkSignature(
    destinationId: string,
    signature: unknown,
    ars: string,
    leikaKey: string,
  ): Promise<void> {
    const refuse = (why: string): Error =>
      rejectPermanently(
        `FIT-Connect routing: the route to destination ${destinationId} is not trustworthy: ${why}`,
      );
    if (typeof signature !== 'string') throw refuse('it carries no destinationSignature');
    let claims: Record<string, unknown>;
    try {
      const verified = await compactVerify(signature, this.jwks!, { algorithms: ['PS512'] });
      claims = JSON.parse(new TextDecoder().decode(verified.payload)) as Record<string, unknown>;
    } catch (cause) {
      if ((cause as { code?: string }).code === 'ERR_JWKS_TIMEOUT') {
        throw retryLater('FIT-Connect routing: the JWKS for route signatures did not answer', { cause });
      }
      throw refuse('the destinationSignature does not verify');
    }
    if (claims.destinationId !== destinationId) throw refuse('the signature names another destination');
    const services = Array.isArray(claims.services) ? (claims.services as Record<string, unknown>[]) : [];
    const urn = leistungsschluesselUrn(leikaKey);
    const serving = services.filter((s) => Array.isArray(s.leistungIDs) && s.leistungIDs.includes(urn));
    if (serving.length === 0) throw refuse(`the signature does not cover service ${leikaKey}`);
    const areas = serving.flatMap((s) => (Array.isArray(s.gebietIDs) ? (s.gebietIDs as unknown[]) : []));
    const arsKeys = areas.filter((a): a is string => typeof a === 'string' && a.startsWith(AREA_URN_PREFIX));
    // An area is named by its ARS, padded with zeros: 059130000000 covers every ARS starting 05913.
    if (
      arsKeys.length > 0 &&
      !arsKeys.some((a) => ars.startsWith(a.slice(AREA_URN_PREFIX.length).replace(/0+$/, '')))
    ) {
      throw refuse(`the signature does not cover ARS ${ars}`);
    }
    if (typeof claims.submissionHost === 'string' && claims.submissionHost !== this.options.submissionHost) {
      throw refuse(
        `it is served by ${claims.submissionHost}, this instance talks to ${this.options.submissionHost}`,
      );
    }
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}
