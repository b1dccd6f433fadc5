/**
 * Delivery of one message as one HTTP request. The delivery id travels as `Idempotency-Key`,
 * so a retry after a lost answer cannot create a second case at the receiver.
 *
 * The request goes through Node's own http/https client on keep-alive agents: one exchange per
 * delivery needs nothing axios adds (no redirects, no proxy, no body transforms), and on the
 * delivery path axios cost about twice the CPU of the whole exchange.
 */
import { readFileSync } from 'node:fs';
import http, { Agent as HttpAgent, type IncomingHttpHeaders } from 'node:http';
import https, { Agent as HttpsAgent } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { Readable } from 'node:stream';
import type {
  AdapterContext,
  AdapterInstance,
  Delivery,
  DeliveryResult,
} from '../../src/adapter-contract.js';
import { AmtError } from '../../src/errors.js';
import { parseTimerDuration } from '../../src/config/units.js';
import type { HttpAdapterConfig, RemoteReferenceSource } from './manifest.js';
import { describeTarget, statusFailure, transportFailure } from './failures.js';
import { multipartBody } from './multipart.js';
import { OAuth2TokenSource } from './oauth2.js';

const USER_AGENT = 'amtsbote-http/1.0';
/** Enough for any id-bearing answer; a larger body is not read further. */
const MAX_RESPONSE_BYTES = 1024 * 1024;
const PLACEHOLDERS = ['deliveryId', 'messageId', 'service', 'ars'] as const;
/** Headers the adapter owns; a configured value would break idempotency or the body framing. */
const RESERVED_HEADERS = [
  'idempotency-key',
  'x-amtsbote-delivery-id',
  'x-amtsbote-message-id',
  'content-type',
  'content-length',
  'transfer-encoding',
  'host',
  'authorization',
];

export interface HttpDeliveryOptions {
  /** Clock for token expiry (tests). */
  readonly now?: () => number;
}

interface ServerAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Buffer;
}

/** Builds the adapter instance; configuration mistakes the schema cannot see fail here, at startup. */
export function createHttpDelivery(
  context: AdapterContext,
  config: HttpAdapterConfig,
  options: HttpDeliveryOptions = {},
): AdapterInstance {
  return new HttpDelivery(context, config, options);
}

class HttpDelivery implements AdapterInstance {
  private readonly method: 'POST' | 'PUT';
  private readonly timeoutMs: number;
  private readonly staticHeaders: Readonly<Record<string, string>>;
  private readonly remoteReference: RemoteReferenceSource;
  private readonly multipart: boolean;
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;
  private readonly staticAuthorization: string | undefined;
  private readonly tokens: OAuth2TokenSource | undefined;
  /** Credential strings to mask wherever a receiver's answer is quoted. */
  private readonly secrets: readonly string[];

  constructor(
    private readonly context: AdapterContext,
    private readonly config: HttpAdapterConfig,
    options: HttpDeliveryOptions,
  ) {
    checkPlaceholders(config.url);
    this.method = config.method ?? 'POST';
    this.timeoutMs = parseTimerDuration(config.timeout ?? '30s');
    this.staticHeaders = checkedHeaders(config.headers ?? {});
    this.remoteReference = config.remoteReference ?? { header: 'Location' };
    this.multipart = config.attachments === 'multipart';
    this.httpAgent = new HttpAgent({ keepAlive: true });
    this.httpsAgent = new HttpsAgent({ keepAlive: true, ...tlsOptions(config.tls) });
    if (config.tls?.rejectUnauthorized === false) {
      context.logger.warn('TLS certificate verification is turned off', { instance: context.instanceId });
    }
    const auth = config.auth ?? { type: 'none' };
    const secrets: string[] = [];
    if (auth.type === 'bearer') {
      this.staticAuthorization = `Bearer ${auth.token}`;
      secrets.push(auth.token);
    }
    if (auth.type === 'basic') {
      const credentials = Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64');
      this.staticAuthorization = `Basic ${credentials}`;
      secrets.push(auth.password, credentials);
    }
    if (auth.type === 'oauth2') {
      secrets.push(auth.clientSecret);
      this.tokens = new OAuth2TokenSource({
        tokenUrl: auth.tokenUrl,
        clientId: auth.clientId,
        clientSecret: auth.clientSecret,
        scope: auth.scope,
        clientAuthentication: auth.clientAuthentication ?? 'basic',
        timeoutMs: this.timeoutMs,
        httpAgent: this.httpAgent,
        httpsAgent: this.httpsAgent,
        userAgent: USER_AGENT,
        now: options.now ?? Date.now,
      });
    }
    this.secrets = secrets;
  }

  async deliver(delivery: Delivery, signal: AbortSignal): Promise<DeliveryResult> {
    const url = fillUrl(this.config.url, delivery);
    const target = describeTarget(url);
    let answer = await this.send(url, target, delivery, signal, await this.authorization(signal));
    // Only a cached token may have been revoked early; a fresh one refused means the credentials are wrong.
    if (answer.status === 401 && this.tokens && answer.usedToken?.fromCache) {
      this.tokens.invalidate(answer.usedToken.accessToken);
      answer = await this.send(url, target, delivery, signal, await this.authorization(signal));
    }
    const { status, headers, body } = answer;
    const meta = { instance: this.context.instanceId, deliveryId: delivery.deliveryId, target, status };
    if (status >= 200 && status < 300) {
      const remoteReference = readRemoteReference(this.remoteReference, headers, body);
      if (remoteReference === undefined) {
        this.context.logger.warn('the receiver accepted the message but sent no reference', meta);
      }
      this.context.logger.debug('delivered', meta);
      return { remoteReference, detail: { status } };
    }
    this.context.logger.debug('the receiver did not accept the message', meta);
    const presented = answer.usedToken ? [...this.secrets, answer.usedToken.accessToken] : this.secrets;
    throw statusFailure(target, status, headers, body, presented);
  }

  async close(): Promise<void> {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private async authorization(signal: AbortSignal): Promise<Authorization | undefined> {
    if (this.tokens) {
      const token = await this.tokens.token(signal);
      return { header: `Bearer ${token.accessToken}`, token };
    }
    return this.staticAuthorization === undefined ? undefined : { header: this.staticAuthorization };
  }

  private async send(
    url: string,
    target: string,
    delivery: Delivery,
    signal: AbortSignal,
    authorization: Authorization | undefined,
  ): Promise<ServerAnswer & { usedToken: Authorization['token'] }> {
    const multipart = this.multipart ? multipartBody(delivery) : undefined;
    const headers: Record<string, string | number> = {
      'User-Agent': USER_AGENT,
      ...this.staticHeaders,
      'Idempotency-Key': delivery.deliveryId,
      'X-Amtsbote-Delivery-Id': delivery.deliveryId,
      'X-Amtsbote-Message-Id': delivery.messageId,
      'Content-Type': multipart?.contentType ?? delivery.body.contentType,
    };
    if (authorization) headers.Authorization = authorization.header;
    // A multipart body is streamed (chunked); the message alone goes with its length.
    if (!multipart) headers['Content-Length'] = Buffer.byteLength(delivery.body.content);
    try {
      const answer = await exchange(
        url,
        { method: this.method, headers, signal },
        multipart?.stream ?? delivery.body.content,
        { http: this.httpAgent, https: this.httpsAgent },
        this.timeoutMs,
      );
      return { ...answer, usedToken: authorization?.token };
    } catch (err) {
      throw transportFailure(err, {
        target,
        aborted: signal.aborted,
        timedOut: err instanceof ExchangeTimeout,
        timeoutMs: this.timeoutMs,
      });
    } finally {
      // Releases the attachment file handles when the request ended before the body was sent.
      multipart?.stream.destroy();
    }
  }
}

interface Authorization {
  readonly header: string;
  readonly token?: { readonly accessToken: string; readonly fromCache: boolean };
}

function checkPlaceholders(url: string): void {
  for (const match of url.matchAll(/\{([^}]*)\}/g)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(match[1] ?? '')) {
      throw new AmtError('AMT_CONFIG_INVALID', `http adapter: unknown placeholder {${match[1]}} in url`, {
        problems: [
          { path: '/url', message: `unknown placeholder {${match[1]}}; known: ${PLACEHOLDERS.join(', ')}` },
        ],
      });
    }
  }
}

/** Replaces the placeholders of the url with URL-encoded values of the delivery. */
export function fillUrl(template: string, delivery: Delivery): string {
  const values: Record<(typeof PLACEHOLDERS)[number], string> = {
    deliveryId: delivery.deliveryId,
    messageId: delivery.messageId,
    service: delivery.service,
    ars: delivery.tenant.ars,
  };
  return template.replace(/\{(deliveryId|messageId|service|ars)\}/g, (_whole, name: keyof typeof values) =>
    encodeURIComponent(values[name]),
  );
}

function checkedHeaders(headers: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  for (const name of Object.keys(headers)) {
    if (RESERVED_HEADERS.includes(name.toLowerCase())) {
      throw new AmtError('AMT_CONFIG_INVALID', `http adapter: header ${name} is set by the adapter`, {
        problems: [
          { path: `/headers/${name}`, message: 'this header is set by the adapter and cannot be configured' },
        ],
      });
    }
  }
  return { ...headers };
}

function tlsOptions(tls: HttpAdapterConfig['tls']): Record<string, unknown> {
  if (!tls) return {};
  const options: Record<string, unknown> = { rejectUnauthorized: tls.rejectUnauthorized ?? true };
  // The city CA is trusted in addition to the public roots, so a public token endpoint keeps working.
  if (tls.ca !== undefined) options.ca = [...rootCertificates, readPem(tls.ca, '/tls/ca')];
  if (tls.cert !== undefined) options.cert = readPem(tls.cert, '/tls/cert');
  if (tls.key !== undefined) options.key = readPem(tls.key, '/tls/key');
  return options;
}

function readPem(file: string, pointer: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new AmtError('AMT_CONFIG_INVALID', `http adapter: cannot read ${file}`, {
      cause,
      problems: [
        {
          path: pointer,
          message: `cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
        },
      ],
    });
  }
}

/** The whole exchange took longer than the adapter's timeout. */
class ExchangeTimeout extends Error {
  readonly code = 'ETIMEDOUT';
}

/**
 * One request and its answer, the answer's body read up to MAX_RESPONSE_BYTES, all within
 * `timeoutMs`. Rejects with the transport's error (refused, reset, aborted, a malformed URL or
 * header) or an ExchangeTimeout for the caller to classify.
 */
function exchange(
  url: string,
  options: { method: string; headers: Record<string, string | number>; signal: AbortSignal },
  body: string | Buffer | Readable,
  agents: { http: HttpAgent; https: HttpsAgent },
  timeoutMs: number,
): Promise<ServerAnswer> {
  let timer: NodeJS.Timeout | undefined;
  const answer = new Promise<ServerAnswer>((resolve, reject) => {
    let request: http.ClientRequest;
    try {
      const target = new URL(url);
      const secure = target.protocol === 'https:';
      request = (secure ? https : http).request(target, {
        ...options,
        agent: secure ? agents.https : agents.http,
      });
    } catch (err) {
      reject(err);
      return;
    }
    request.once('error', reject);
    // One timer, not a timeout signal joined to the caller's: cheaper on every delivery.
    // Destroying the request fails the answer's body too, should it be read at that moment.
    timer = setTimeout(
      () => request.destroy(new ExchangeTimeout(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    request.once('response', (response) => {
      readCapped(response, MAX_RESPONSE_BYTES).then(
        (content) =>
          resolve({
            status: response.statusCode ?? 0,
            headers: plainHeaders(response.headers),
            body: content,
          }),
        reject,
      );
    });
    if (typeof body === 'string' || Buffer.isBuffer(body)) {
      request.end(body);
    } else {
      // An attachment that cannot be read ends the request instead of sending half a body.
      body.once('error', (err) => request.destroy(err));
      body.pipe(request);
    }
  });
  return answer.finally(() => clearTimeout(timer));
}

/**
 * The answer's body, up to `limit` bytes (the rest is not read). Plain stream events rather than
 * an async iterator: that costs a promise per chunk and its own end-of-stream watcher, on every
 * delivery. A body that ends early (the connection closed, the request destroyed) rejects.
 */
function readCapped(stream: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).subarray(0, limit));
    };
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= limit) {
        finish();
        stream.destroy();
      }
    });
    stream.once('end', () => finish());
    stream.once('error', (err) => finish(err));
    // 'close' follows every 'end' too; only a close before it is an error (built only then).
    stream.once('close', () => {
      if (!settled) finish(prematureClose());
    });
  });
}

function prematureClose(): Error {
  return Object.assign(new Error('the answer ended before its body was complete'), {
    code: 'ERR_STREAM_PREMATURE_CLOSE',
  });
}

function plainHeaders(headers: IncomingHttpHeaders): Record<string, string | undefined> {
  const plain: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers)) {
    plain[name.toLowerCase()] = Array.isArray(value)
      ? value.join(', ')
      : value === undefined
        ? undefined
        : String(value);
  }
  return plain;
}

function readRemoteReference(
  source: RemoteReferenceSource,
  headers: Readonly<Record<string, string | undefined>>,
  body: Buffer,
): string | undefined {
  if ('header' in source) {
    const value = headers[source.header.toLowerCase()]?.trim();
    return value === '' ? undefined : value;
  }
  let document: unknown;
  try {
    document = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const value = resolvePointer(document, source.jsonPointer);
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

/** RFC 6901. */
function resolvePointer(document: unknown, pointer: string): unknown {
  if (pointer === '') return document;
  let current = document;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, token)) return undefined;
    current = (current as Record<string, unknown>)[token];
  }
  return current;
}
