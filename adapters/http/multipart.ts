/**
 * A multipart/form-data request body (RFC 7578) built as a stream: the message is part
 * `message`, each attachment a file part `attachment` read from its file while the request is
 * sent, so an attachment of any size costs only a buffer or two of memory.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Delivery } from '../../src/adapter-contract.js';

export interface MultipartBody {
  readonly contentType: string;
  readonly stream: Readable;
}

const MEDIA_TYPE = /^[\w.+-]+\/[\w.+-]+(\s*;\s*[\w.+-]+=("[^"\r\n]*"|[\w.+-]+))*$/;

export function multipartBody(delivery: Delivery): MultipartBody {
  const boundary = `amtsbote-${randomBytes(16).toString('hex')}`;
  async function* parts(): AsyncGenerator<Buffer> {
    yield head(boundary, 'form-data; name="message"', delivery.body.contentType, true);
    const content = delivery.body.content;
    yield typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    for (const attachment of delivery.attachments) {
      const disposition = `form-data; name="attachment"; filename="${quoteFilename(attachment.ref.filename)}"`;
      yield head(boundary, disposition, attachment.ref.mediaType, false);
      const source = attachment.open();
      try {
        for await (const chunk of source) yield chunk as Buffer;
      } finally {
        source.destroy();
      }
    }
    yield Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  }
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    stream: Readable.from(parts(), { objectMode: false }),
  };
}

function head(boundary: string, disposition: string, mediaType: string, first: boolean): Buffer {
  const type = MEDIA_TYPE.test(mediaType) ? mediaType : 'application/octet-stream';
  const text = `${first ? '' : '\r\n'}--${boundary}\r\nContent-Disposition: ${disposition}\r\nContent-Type: ${type}\r\n\r\n`;
  return Buffer.from(text, 'utf8');
}

/** As browsers do (HTML form submission): UTF-8 as is, `"` and line breaks percent-encoded. */
function quoteFilename(filename: string): string {
  return filename.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
