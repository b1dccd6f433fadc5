/**
 * A plain HTTP peer that takes MTOM requests (multipart/related with an XOP root part) and parses
 * them itself: the soap package's server refuses incoming MTOM. It records the root XML and every
 * MIME part by Content-ID, resolves xop:Include references, and answers like the Gewerbe service.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MimePart {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export interface MtomRequest {
  readonly contentType: string;
  readonly rootXml: string;
  /** Parts other than the root, by Content-ID without angle brackets. */
  readonly parts: ReadonlyMap<string, MimePart>;
  /** Content-IDs referenced by xop:Include elements in the root, in document order. */
  readonly includes: readonly string[];
}

export interface MtomPeer {
  readonly url: string;
  readonly requests: MtomRequest[];
  close(): Promise<void>;
}

function parameter(contentType: string, name: string): string | undefined {
  const match = new RegExp(`(?:^|;)\\s*${name}="?([^";]+)"?`, 'i').exec(contentType);
  return match?.[1];
}

/** Splits a multipart body at its boundary; the preamble and epilogue are dropped. */
export function parseMultipart(body: Buffer, boundary: string): MimePart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: MimePart[] = [];
  let start = body.indexOf(delimiter);
  while (start >= 0) {
    const afterDelimiter = start + delimiter.length;
    if (body.subarray(afterDelimiter, afterDelimiter + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, afterDelimiter);
    if (next < 0) break;
    // The part runs from after the delimiter line's CRLF to before the CRLF preceding the next delimiter.
    const raw = body.subarray(afterDelimiter + 2, next - 2);
    const headerEnd = raw.indexOf('\r\n\r\n');
    const headers: Record<string, string> = {};
    for (const line of raw.subarray(0, headerEnd).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: raw.subarray(headerEnd + 4) });
    start = next;
  }
  return parts;
}

const stripBrackets = (id: string): string => id.replace(/^<|>$/g, '');

export async function startMtomPeer(): Promise<MtomPeer> {
  const requests: MtomRequest[] = [];
  let sequence = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const contentType = req.headers['content-type'] ?? '';
      const boundary = parameter(contentType, 'boundary');
      const start = parameter(contentType, 'start');
      if (!/^multipart\/related/i.test(contentType) || !boundary) {
        res.writeHead(415, { 'content-type': 'text/plain' });
        res.end('MTOM expected');
        return;
      }
      const all = parseMultipart(Buffer.concat(chunks), boundary);
      const root =
        all.find(
          (p) => start !== undefined && stripBrackets(p.headers['content-id'] ?? '') === stripBrackets(start),
        ) ?? all[0];
      const parts = new Map<string, MimePart>();
      for (const part of all) {
        if (part !== root) parts.set(stripBrackets(part.headers['content-id'] ?? ''), part);
      }
      const rootXml = root?.body.toString('utf8') ?? '';
      const includes = [...rootXml.matchAll(/<(?:\w+:)?Include\b[^>]*\bhref="cid:([^"]+)"/g)].map((m) =>
        decodeURIComponent(m[1]!),
      );
      requests.push({ contentType, rootXml, parts, includes });
      sequence += 1;
      res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' });
      res.end(
        '<?xml version="1.0" encoding="utf-8"?>' +
          '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>' +
          '<gew:importGewerbeanmeldungResponse xmlns:gew="http://fachverfahren.example/gewerbe/import/1.0">' +
          `<gew:vorgangsnummer>MTOM-${sequence}</gew:vorgangsnummer>` +
          `<gew:eingangsdatum>${new Date().toISOString()}</gew:eingangsdatum>` +
          '</gew:importGewerbeanmeldungResponse></soap:Body></soap:Envelope>',
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/gewerbe`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
