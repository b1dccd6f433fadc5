/**
 * Reading an XML body from a stream with the size limit enforced while it arrives: a document
 * over the limit is refused after `maxBytes + 1` bytes, never buffered whole.
 */
import { AmtError } from '../errors.js';
import { DEFAULT_XML_LIMITS } from './guard.js';

export async function collectXml(
  stream: AsyncIterable<Uint8Array | string>,
  maxBytes: number = DEFAULT_XML_LIMITS.maxBytes,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const bytes =
      typeof chunk === 'string'
        ? Buffer.from(chunk, 'utf8')
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    size += bytes.byteLength;
    if (size > maxBytes) {
      if ('destroy' in stream && typeof stream.destroy === 'function') (stream.destroy as () => void)();
      throw new AmtError('AMT_XML_TOO_LARGE', `The XML document exceeds the limit of ${maxBytes} bytes`, {
        problems: [{ path: '/', message: `more than ${maxBytes} bytes` }],
      });
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, size);
}
