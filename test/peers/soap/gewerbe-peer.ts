/**
 * A Fachverfahren-like SOAP service for tests: the trade-registration import described by
 * `adapters/soap/fixtures/gewerbeanmeldung.wsdl`, served by a real `soap` server on 127.0.0.1.
 * It checks WS-Security UsernameTokens (PasswordText and PasswordDigest, with nonce replay and
 * freshness checks), can require a TLS client certificate, and can be told to misbehave: raise
 * faults, never answer, answer garbage or an HTTP error without a fault.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { listen, type IServices, type Server as SoapServer } from 'soap';

export const GEWERBE_WSDL = fileURLToPath(
  new URL('../../../adapters/soap/fixtures/gewerbeanmeldung.wsdl', import.meta.url),
);
export const GEWERBE_NS = 'http://fachverfahren.example/gewerbe/import/1.0';

const PASSWORD_DIGEST =
  'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest';

/** A SOAP 1.1 fault the service raises, as the soap package expects it. */
export interface PeerFault {
  readonly faultcode: string;
  readonly faultstring: string;
  readonly detail?: { readonly $xml: string };
  readonly statusCode?: number;
}

export type PeerBehaviour =
  | { readonly kind: 'ok' }
  | { readonly kind: 'fault'; readonly fault: PeerFault }
  | { readonly kind: 'hang' }
  | {
      readonly kind: 'garbage';
      readonly status: number;
      readonly body: string;
      readonly contentType?: string;
    };

export interface ReceivedCall {
  readonly args: Record<string, unknown>;
  /** SOAP headers as the soap package parsed them (prefixes stripped). */
  readonly headers: Record<string, unknown>;
  readonly username: string | undefined;
  readonly passwordType: 'PasswordText' | 'PasswordDigest' | undefined;
}

export interface GewerbePeer {
  readonly url: string;
  readonly calls: ReceivedCall[];
  behaviour: PeerBehaviour;
  close(): Promise<void>;
}

export interface GewerbePeerOptions {
  /** username → password; when set, every call must carry a valid UsernameToken. */
  readonly users?: Readonly<Record<string, string>>;
  /** Serve https and require a client certificate signed by `ca`. */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
}

/** Parsed WS-Security values come as text or as `{ attributes, $value }`. */
function valueOf(node: unknown): string | undefined {
  if (typeof node === 'string') return node;
  if (node !== null && typeof node === 'object' && '$value' in node)
    return String((node as { $value: unknown }).$value);
  return undefined;
}

function typeOf(node: unknown): string | undefined {
  if (node === null || typeof node !== 'object') return undefined;
  const attributes = (node as { attributes?: Record<string, string> }).attributes;
  return attributes?.Type;
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

interface TokenCheck {
  readonly ok: boolean;
  readonly username?: string;
  readonly passwordType?: 'PasswordText' | 'PasswordDigest';
}

function checkUsernameToken(
  security: unknown,
  users: Readonly<Record<string, string>>,
  nonces: Set<string>,
): TokenCheck {
  const token = (security as { UsernameToken?: Record<string, unknown> } | undefined)?.UsernameToken;
  if (!token) return { ok: false };
  const username = valueOf(token.Username);
  const password = valueOf(token.Password);
  const expected = username === undefined ? undefined : users[username];
  if (username === undefined || password === undefined || expected === undefined) return { ok: false };
  if (typeOf(token.Password) !== PASSWORD_DIGEST) {
    return { ok: sameText(password, expected), username, passwordType: 'PasswordText' };
  }
  const nonce = valueOf(token.Nonce);
  const created = valueOf(token.Created);
  if (nonce === undefined || created === undefined) return { ok: false };
  const age = Math.abs(Date.now() - Date.parse(created));
  if (!(age <= 5 * 60_000) || nonces.has(nonce)) return { ok: false };
  nonces.add(nonce);
  const digest = createHash('sha1')
    .update(
      Buffer.concat([
        Buffer.from(nonce, 'base64'),
        Buffer.from(created, 'utf8'),
        Buffer.from(expected, 'utf8'),
      ]),
    )
    .digest('base64');
  return { ok: sameText(password, digest), username, passwordType: 'PasswordDigest' };
}

export async function startGewerbePeer(options: GewerbePeerOptions = {}): Promise<GewerbePeer> {
  const server: http.Server = options.tls
    ? https.createServer({
        cert: readFileSync(options.tls.cert),
        key: readFileSync(options.tls.key),
        ca: readFileSync(options.tls.ca),
        requestCert: true,
        rejectUnauthorized: true,
      })
    : http.createServer();
  const calls: ReceivedCall[] = [];
  const nonces = new Set<string>();
  let sequence = 0;
  const authenticated = new WeakMap<object, TokenCheck>();

  const services: IServices = {
    GewerbeImportService: {
      GewerbeImportPort: {
        importGewerbeanmeldung: (
          args: Record<string, unknown>,
          _callback,
          headers: Record<string, unknown>,
          req: object,
        ) => {
          const token = authenticated.get(req);
          calls.push({
            args,
            headers: headers ?? {},
            username: token?.username,
            passwordType: token?.passwordType,
          });
          if (peer.behaviour.kind === 'fault') throw { Fault: { statusCode: 500, ...peer.behaviour.fault } };
          sequence += 1;
          return {
            vorgangsnummer: `GEW-2026-${String(sequence).padStart(5, '0')}`,
            eingangsdatum: new Date().toISOString(),
          };
        },
      },
    },
  };

  const soapServer = await new Promise<SoapServer>((resolve, reject) => {
    const created: SoapServer = listen(server, {
      path: '/gewerbe',
      services,
      xml: readFileSync(GEWERBE_WSDL, 'utf8'),
      callback: (err: unknown) => (err ? reject(err) : resolve(created)),
    });
  });
  if (options.users) {
    const users = options.users;
    soapServer.authenticate = (security: unknown, _callback, req) => {
      const check = checkUsernameToken(security, users, nonces);
      if (req) authenticated.set(req, check);
      return check.ok;
    };
  }

  // Misbehaviour is decided before the soap server sees the request.
  const soapListeners = server.listeners('request') as ((
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const behaviour = peer.behaviour;
    if (behaviour.kind === 'hang') {
      req.resume();
      return;
    }
    if (behaviour.kind === 'garbage') {
      req.resume();
      req.on('end', () => {
        res.writeHead(behaviour.status, { 'content-type': behaviour.contentType ?? 'text/html' });
        res.end(behaviour.body);
      });
      return;
    }
    for (const listener of soapListeners) listener.call(server, req, res);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const peer: GewerbePeer = {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}/gewerbe`,
    calls,
    behaviour: { kind: 'ok' },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return peer;
}
