/**
 * Request bodies, read by hand rather than by a body parser: the limit is enforced while reading,
 * invalid UTF-8 is an error instead of silently becoming U+FFFD, and nesting is bounded before
 * JSON.parse sees the text.
 */
import type { IncomingMessage } from 'node:http';
import { AmtError } from '../errors.js';
import { parseJsonText } from '../json-text.js';
import { decodeStrictUtf8 } from '../utf8.js';

export type BodyKind = 'json' | 'multipart';

/** Checks Content-Type (and Content-Encoding) against what the endpoint takes; 415 otherwise. */
export function bodyKind(req: IncomingMessage, accepted: readonly BodyKind[]): BodyKind {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw new AmtError('AMT_UNSUPPORTED_MEDIA_TYPE', `Content-Encoding ${encoding} is not supported`);
  }
  const header = req.headers['content-type'] ?? '';
  const [mediaType = '', ...params] = header.split(';').map((part) => part.trim());
  const type = mediaType.toLowerCase();
  if (type === 'application/json' && accepted.includes('json')) {
    const charset = params
      .find((p) => p.toLowerCase().startsWith('charset='))
      ?.slice(8)
      .replace(/"/g, '')
      .toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      throw new AmtError('AMT_UNSUPPORTED_MEDIA_TYPE', `charset ${charset} is not supported; send UTF-8`);
    }
    return 'json';
  }
  if (type === 'multipart/form-data' && accepted.includes('multipart')) return 'multipart';
  const expected = accepted
    .map((k) => (k === 'json' ? 'application/json' : 'multipart/form-data'))
    .join(' or ');
  throw new AmtError('AMT_UNSUPPORTED_MEDIA_TYPE', `send ${expected}${header ? `, not ${mediaType}` : ''}`);
}

function tooLarge(limitBytes: number): AmtError {
  return new AmtError('AMT_BODY_TOO_LARGE', `the request body exceeds ${limitBytes} bytes`);
}

/**
 * Reads the whole body up to `limitBytes`. Past the limit the rest is drained, not kept, so the
 * client still receives the 413 on a healthy connection.
 */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) {
    req.resume();
    return Promise.reject(tooLarge(limitBytes));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: AmtError | undefined): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (err) {
        req.resume();
        reject(err);
      } else {
        resolve(Buffer.concat(chunks, size));
      }
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limitBytes) finish(tooLarge(limitBytes));
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(undefined);
    const onError = (cause: Error): void =>
      finish(new AmtError('AMT_BODY_MALFORMED', 'the request body could not be read', { cause }));
    const onClose = (): void =>
      finish(new AmtError('AMT_BODY_MALFORMED', 'the request ended before its body was complete'));
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

export function decodeUtf8(bytes: Uint8Array, what = 'the request body'): string {
  const text = decodeStrictUtf8(bytes);
  if (text === undefined) throw new AmtError('AMT_BODY_MALFORMED', `${what} is not valid UTF-8`);
  return text;
}

export async function readJsonBody(req: IncomingMessage, limitBytes: number): Promise<unknown> {
  return parseJsonText(decodeUtf8(await readBody(req, limitBytes)));
}
