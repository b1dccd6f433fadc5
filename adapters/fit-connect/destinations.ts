/**
 * Public facts about destinations, fetched from the Submission API and cached for a while:
 * the destination itself, its checked encryption key, and signing keys that verify the events
 * its receiving system writes to the event log.
 */
import type { X509Certificate } from 'node:crypto';
import type { JWK } from 'jose';
import { rejectPermanently } from '../../src/adapter-contract.js';
import type { SubmissionApiClient } from './client.js';
import { importRsaOaepKey } from './jwe.js';
import { encryptionKeyProblems, MIN_RSA_BITS } from './key-checks.js';
import { importPs512Key, SET_ALG } from './events.js';

export interface DestinationService {
  readonly identifier: string;
  readonly submissionSchemas?: readonly { readonly schemaUri: string; readonly mimeType?: string }[];
}

export interface Destination {
  readonly destinationId: string;
  readonly status?: string;
  readonly services?: readonly DestinationService[];
  readonly encryptionKid: string;
  readonly metadataVersions?: readonly string[];
}

export interface EncryptionTarget {
  readonly destination: Destination;
  readonly kid: string;
  readonly key: Awaited<ReturnType<typeof importRsaOaepKey>>;
}

interface Cached<T> {
  readonly value: Promise<T>;
  readonly expiresAt: number;
}

export class DestinationDirectory {
  private readonly targets = new Map<string, Cached<EncryptionTarget>>();
  private readonly signingKeys = new Map<string, Cached<Awaited<ReturnType<typeof importPs512Key>>>>();

  constructor(
    private readonly client: SubmissionApiClient,
    private readonly options: {
      readonly ttlMs: number;
      readonly trustAnchors: readonly X509Certificate[];
      readonly now?: () => number;
    },
  ) {}

  /** The destination and its encryption key, checked; throws `rejectPermanently` for an unusable key. */
  encryptionTarget(destinationId: string, signal?: AbortSignal): Promise<EncryptionTarget> {
    return this.cached(this.targets, destinationId, () => this.fetchTarget(destinationId, signal));
  }

  /** Ids of the destinations whose encryption target is cached (also expired or still loading). */
  cachedDestinationIds(): string[] {
    return [...this.targets.keys()];
  }

  /**
   * Fetches the destination and its key again, bypassing the cache, with the same checks as
   * `encryptionTarget`. Success replaces the cache entry; a failure removes it, so the next
   * delivery fetches and checks the key itself instead of using the stale one.
   */
  async refreshTarget(destinationId: string, signal?: AbortSignal): Promise<EncryptionTarget> {
    const value = this.fetchTarget(destinationId, signal);
    try {
      const target = await value;
      this.targets.set(destinationId, { value, expiresAt: this.now() + this.options.ttlMs });
      return target;
    } catch (err) {
      this.targets.delete(destinationId);
      throw err;
    }
  }

  /** A destination's signing key, for verifying the SETs its receiver posts. */
  signingKey(destinationId: string, kid: string): Promise<Awaited<ReturnType<typeof importPs512Key>>> {
    return this.cached(this.signingKeys, `${destinationId}|${kid}`, async () => {
      const jwk = await this.client.json<JWK>('GET', `/destinations/${enc(destinationId)}/keys/${enc(kid)}`, {
        step: 'fetch destination signing key',
      });
      const problems = signingKeyProblems(jwk);
      if (problems.length > 0) throw new Error(`signing key ${kid} is not usable: ${problems.join('; ')}`);
      return importPs512Key(jwk);
    });
  }

  private async fetchTarget(
    destinationId: string,
    signal: AbortSignal | undefined,
  ): Promise<EncryptionTarget> {
    const destination = await this.client.json<Destination>('GET', `/destinations/${enc(destinationId)}`, {
      step: 'fetch destination',
      signal,
    });
    if (destination.status !== undefined && destination.status !== 'active') {
      throw rejectPermanently(
        `FIT-Connect destination ${destinationId} is ${destination.status}, not active`,
      );
    }
    if (typeof destination.encryptionKid !== 'string' || destination.encryptionKid === '') {
      throw rejectPermanently(`FIT-Connect destination ${destinationId} names no encryption key`);
    }
    const kid = destination.encryptionKid;
    const jwk = await this.client.json<JWK>('GET', `/destinations/${enc(destinationId)}/keys/${enc(kid)}`, {
      step: 'fetch destination encryption key',
      signal,
    });
    if (jwk.kid !== undefined && jwk.kid !== kid) {
      throw rejectPermanently(
        `FIT-Connect destination ${destinationId}: key ${kid} was answered with key ${jwk.kid}`,
      );
    }
    const problems = encryptionKeyProblems(jwk, {
      trustAnchors: this.options.trustAnchors,
      now: new Date(this.now()),
    });
    if (problems.length > 0) {
      throw rejectPermanently(
        `FIT-Connect destination ${destinationId}: encryption key ${kid} is not usable: ${problems.join('; ')}`,
      );
    }
    return { destination, kid, key: await importRsaOaepKey(jwk) };
  }

  /** Caches successes for the TTL; a failure is forgotten at once so the next call asks again. */
  private cached<T>(map: Map<string, Cached<T>>, key: string, load: () => Promise<T>): Promise<T> {
    const hit = map.get(key);
    if (hit && hit.expiresAt > this.now()) return hit.value;
    const value = load();
    map.set(key, { value, expiresAt: this.now() + this.options.ttlMs });
    value.catch(() => {
      if (map.get(key)?.value === value) map.delete(key);
    });
    return value;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}

export function signingKeyProblems(jwk: JWK): string[] {
  const problems: string[] = [];
  if (jwk.kty !== 'RSA') problems.push('not an RSA key');
  if (jwk.alg !== SET_ALG) problems.push(`alg is ${String(jwk.alg)}, not ${SET_ALG}`);
  if (Array.isArray(jwk.key_ops) && !jwk.key_ops.includes('verify'))
    problems.push('key_ops does not contain verify');
  const bytes = typeof jwk.n === 'string' ? Buffer.from(jwk.n, 'base64url').length : 0;
  if (bytes * 8 < MIN_RSA_BITS) problems.push(`shorter than ${MIN_RSA_BITS} bits`);
  return problems;
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}
