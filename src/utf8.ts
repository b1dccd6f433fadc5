/**
 * Strict UTF-8 decoding, as `new TextDecoder('utf-8', { fatal: true })` decodes (a leading byte
 * order mark is dropped, any invalid sequence fails), but faster for the text the gateway reads:
 * the bytes are validated with `buffer.isUtf8` and decoded by the fastest way their content
 * allows. V8's own UTF-8 decoder takes about three nanoseconds a byte once one character is not
 * ASCII — 15 µs for a 5 KB application with an umlaut; ICU's transcoding to UTF-16 and a copy
 * into the string take a third of that. Transcoding holds the UTF-16 copy beside the string for a
 * moment, so text above TRANSCODE_MAX_BYTES (a large inbound XML document) goes to V8's decoder.
 */
import { isAscii, isUtf8, transcode } from 'node:buffer';

/** Largest input decoded through ICU; larger text would briefly need twice its size again. */
export const TRANSCODE_MAX_BYTES = 1024 * 1024;

/** Whether this Node has ICU's converters (`buffer.transcode` throws without them). */
const canTranscode = ((): boolean => {
  try {
    return transcode(Buffer.from('ä'), 'utf8', 'utf16le').toString('utf16le') === 'ä';
  } catch {
    return false;
  }
})();

/** The text of `bytes`, or undefined when they are not valid UTF-8. */
export function decodeStrictUtf8(bytes: Uint8Array): string | undefined {
  let buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!isUtf8(buffer)) return undefined;
  if (buffer.length >= 3 && buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf) {
    buffer = buffer.subarray(3);
  }
  if (isAscii(buffer)) return buffer.toString('latin1');
  if (!canTranscode || buffer.length > TRANSCODE_MAX_BYTES) return buffer.toString('utf8');
  return transcode(buffer, 'utf8', 'utf16le').toString('utf16le');
}

/**
 * A surrogate without its pair: not a character, and without a UTF-8 form (each encoder puts
 * something else in its place). `String.prototype.isWellFormed` tells the same from Node 20 on,
 * but is not in the ES2022 library this code is typed against.
 */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The line (from 1) of the first byte sequence that is not UTF-8, or undefined when there is
 * none — to point at it in a file. Lines are cut at LF bytes, which never occur inside a
 * multi-byte sequence.
 */
export function firstNonUtf8Line(bytes: Uint8Array): number | undefined {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(buffer)) return undefined;
  let line = 1;
  let start = 0;
  for (;;) {
    const end = buffer.indexOf(0x0a, start);
    if (!isUtf8(buffer.subarray(start, end === -1 ? buffer.length : end))) return line;
    if (end === -1) return undefined;
    line += 1;
    start = end + 1;
  }
}
