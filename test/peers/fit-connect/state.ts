/**
 * What the emulated Zustelldienst knows: API clients and their tokens, destinations with their
 * public keys, submissions and their encrypted parts, case event logs, routes, callbacks sent,
 * and queued faults. Tests read it to check what arrived and change it to provoke failures.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { JWK } from 'jose';

export type SubmissionStatus = 'incomplete' | 'submitted' | 'forwarded' | 'accepted' | 'rejected';

export interface EmulatedDestination {
  readonly destinationId: string;
  status: 'active' | 'inactive';
  readonly services: { identifier: string; submissionSchemas: { schemaUri: string; mimeType: string }[] }[];
  encryptionKid: string;
  /** Public keys by kid, exactly as `GET …/keys/{kid}` answers. */
  readonly keys: Map<string, JWK>;
  /** Kids of the keys that may sign this destination's events. */
  readonly signingKids: Set<string>;
  callback: { url: string; secret: string } | undefined;
}

export interface EmulatedSubmission {
  readonly submissionId: string;
  readonly caseId: string;
  readonly destinationId: string;
  readonly clientId: string;
  readonly serviceType: { identifier: string; name: string };
  readonly announcedAttachments: string[];
  readonly attachments: Map<string, string>;
  encryptedMetadata: string | undefined;
  encryptedData: string | undefined;
  status: SubmissionStatus;
}

export interface EmulatedRoute {
  readonly ars: string;
  readonly leikaKey: string;
  readonly destinationId: string;
  readonly destinationSignature: string;
}

export interface Fault {
  readonly status: number;
  readonly retryAfter: string | undefined;
  /** Only requests whose path starts with this are hit; all API requests otherwise. */
  readonly pathPrefix: string | undefined;
  remaining: number;
}

export interface SentCallback {
  readonly destinationId: string;
  readonly body: string;
  readonly status: number | undefined;
  readonly error: string | undefined;
}

export class EmulatorState {
  readonly clients = new Map<string, string>();
  readonly tokens = new Map<string, { clientId: string; expiresAt: number }>();
  tokenRequests = 0;
  /** Scopes sent to the token endpoint (FIT-Connect clients must not send any). */
  readonly requestedScopes: string[] = [];
  readonly destinations = new Map<string, EmulatedDestination>();
  readonly submissions = new Map<string, EmulatedSubmission>();
  readonly caseEvents = new Map<string, string[]>();
  readonly routes: EmulatedRoute[] = [];
  readonly faults: Fault[] = [];
  readonly callbacks: SentCallback[] = [];
  /** Every request: method, path (without query) and the answer's status. */
  readonly requests: { method: string; path: string; status: number }[] = [];
  /** Events posted by receivers that the emulator refused, with the reason. */
  readonly refusedEvents: { caseId: string; reason: string }[] = [];

  constructor(readonly tokenLifetimeSeconds: number) {}

  addClient(
    clientId: string = randomUUID(),
    clientSecret: string = randomBytes(24).toString('hex'),
  ): {
    clientId: string;
    clientSecret: string;
  } {
    this.clients.set(clientId, clientSecret);
    return { clientId, clientSecret };
  }

  issueToken(clientId: string, now = Date.now()): { token: string; expiresIn: number } {
    const token = randomBytes(32).toString('base64url');
    this.tokens.set(token, { clientId, expiresAt: now + this.tokenLifetimeSeconds * 1000 });
    return { token, expiresIn: this.tokenLifetimeSeconds };
  }

  /** Every token issued so far stops working now, as if it had expired early. */
  expireTokens(): void {
    for (const entry of this.tokens.values()) entry.expiresAt = 0;
  }

  addDestination(input: {
    encryptionKey: JWK;
    signingKeys?: readonly JWK[];
    services: readonly string[];
    schemaUri?: string;
    mimeType?: string;
    callback?: { url: string; secret: string };
    destinationId?: string;
  }): EmulatedDestination {
    const destinationId = input.destinationId ?? randomUUID();
    const keys = new Map<string, JWK>();
    keys.set(input.encryptionKey.kid!, input.encryptionKey);
    for (const k of input.signingKeys ?? []) keys.set(k.kid!, k);
    const destination: EmulatedDestination = {
      destinationId,
      status: 'active',
      services: input.services.map((key) => ({
        identifier: `urn:de:fim:leika:leistung:${key}`,
        submissionSchemas: [
          {
            schemaUri: input.schemaUri ?? `https://schema.example.org/fachdaten/${key}.schema.json`,
            mimeType: input.mimeType ?? 'application/json',
          },
        ],
      })),
      encryptionKid: input.encryptionKey.kid!,
      keys,
      signingKids: new Set((input.signingKeys ?? []).map((k) => k.kid!)),
      callback: input.callback,
    };
    this.destinations.set(destinationId, destination);
    return destination;
  }

  /** The next `count` API requests (optionally below `pathPrefix`) fail with `status`. */
  failNext(count: number, status: number, options: { retryAfter?: string; pathPrefix?: string } = {}): void {
    this.faults.push({
      status,
      retryAfter: options.retryAfter,
      pathPrefix: options.pathPrefix,
      remaining: count,
    });
  }

  takeFault(path: string): Fault | undefined {
    const fault = this.faults.find(
      (f) => f.remaining > 0 && (f.pathPrefix === undefined || path.startsWith(f.pathPrefix)),
    );
    if (fault) fault.remaining--;
    return fault;
  }

  appendEvent(caseId: string, set: string): void {
    const log = this.caseEvents.get(caseId) ?? [];
    log.push(set);
    this.caseEvents.set(caseId, log);
  }

  /** Flips one character in the ciphertext part of a stored JWE, as an attacker on the way would. */
  tamper(submissionId: string, part: 'metadata' | 'data' | { attachmentId: string }): void {
    const s = this.submissions.get(submissionId);
    if (!s) throw new Error(`no submission ${submissionId}`);
    const flip = (jwe: string): string => {
      const parts = jwe.split('.');
      const c = parts[3]!;
      const i = Math.floor(c.length / 2);
      parts[3] = c.slice(0, i) + (c[i] === 'A' ? 'B' : 'A') + c.slice(i + 1);
      return parts.join('.');
    };
    if (part === 'metadata') s.encryptedMetadata = flip(s.encryptedMetadata!);
    else if (part === 'data') s.encryptedData = flip(s.encryptedData!);
    else s.attachments.set(part.attachmentId, flip(s.attachments.get(part.attachmentId)!));
  }
}
