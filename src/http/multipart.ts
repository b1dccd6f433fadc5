/**
 * `multipart/form-data` submissions: a part `application` (JSON) and file parts `attachment`
 * streamed to the content-addressed attachment store, never held whole in memory. A failure
 * stops the parsing at once; the rest of the upload is drained unread. Files written before the
 * failure stay on disk unreferenced, which is harmless: they are content-addressed, and a later
 * upload of the same content reuses them.
 */
import { PassThrough, type Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import type { AttachmentStore, StoredFile } from '../attachments.js';
import { AmtError, isAmtError } from '../errors.js';
import { jsonPointer, parseJsonText } from '../json-text.js';
import { decodeUtf8 } from './body.js';

export interface MultipartOptions<T> {
  readonly attachments: AttachmentStore;
  readonly fileLimitBytes: number;
  readonly maxFiles: number;
  readonly applicationLimitBytes: number;
  /**
   * Checks the parsed application part and returns what the caller needs of it; throwing
   * rejects the request. Runs as soon as the part arrives, so an `application` part sent first
   * is checked before any file is read.
   */
  readonly inspect: (application: unknown) => T;
}

export interface UploadedFile {
  readonly stored: StoredFile;
  /** As the client named it, or `attachment-<n>` when it sent none. */
  readonly filename: string;
  readonly mediaType: string;
}

export interface MultipartSubmission<T> {
  readonly application: T;
  readonly files: readonly UploadedFile[];
  /** Texts of the `purpose` parts in order; the n-th belongs to the n-th file. */
  readonly purposes: readonly string[];
}

const APPLICATION_PART = 'application';
const FILE_PART = 'attachment';
const PURPOSE_PART = 'purpose';

export function readMultipart<T>(
  req: IncomingMessage,
  options: MultipartOptions<T>,
): Promise<MultipartSubmission<T>> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      limits: {
        // One byte over the limit reaches the store's meter, which reports the file as too large.
        fileSize: options.fileLimitBytes + 1,
        files: options.maxFiles + 1,
        fields: options.maxFiles + 1,
        parts: 2 * options.maxFiles + 2,
        fieldSize: options.applicationLimitBytes,
        headerPairs: 20,
      },
    });
  } catch (cause) {
    return Promise.reject(
      new AmtError('AMT_BODY_MALFORMED', 'the multipart body has no valid boundary', { cause }),
    );
  }

  return new Promise((resolve, reject) => {
    let failure: AmtError | undefined;
    let application: { value: T } | undefined;
    let applicationSeen = false;
    const files: (UploadedFile | undefined)[] = [];
    const purposes: string[] = [];
    const pending = new Set<Promise<void>>();
    const relays = new Set<PassThrough>();

    const settle = (): void => {
      void Promise.allSettled([...pending]).then(() => {
        if (failure) return reject(failure);
        if (!application) {
          return reject(
            new AmtError('AMT_VALIDATION_FAILED', 'the multipart body has no application part', {
              problems: [{ path: `/${APPLICATION_PART}`, message: 'is required' }],
            }),
          );
        }
        resolve({ application: application.value, files: files.filter((f) => f !== undefined), purposes });
      });
    };

    /** Work the answer must wait for: busboy's 'finish' only means the parts were read. */
    const track = (work: Promise<void>): void => {
      const tracked = work.finally(() => pending.delete(tracked));
      pending.add(tracked);
    };

    const fail = (err: unknown): void => {
      if (failure) return;
      failure = isAmtError(err)
        ? err
        : new AmtError('AMT_BODY_MALFORMED', 'the multipart body is malformed', { cause: err });
      for (const relay of relays) relay.destroy(failure);
      req.unpipe(parser);
      req.resume();
      parser.destroy();
      settle();
    };

    const acceptApplication = (text: string): void => {
      if (applicationSeen) throw partProblem(APPLICATION_PART, 'appears more than once');
      applicationSeen = true;
      application = { value: options.inspect(parseJsonText(text, 'the application part')) };
    };

    parser.on('field', (name, value, info) => {
      if (failure) return;
      try {
        if (info.nameTruncated || info.valueTruncated) {
          throw new AmtError('AMT_BODY_TOO_LARGE', `a part exceeds ${options.applicationLimitBytes} bytes`);
        }
        if (name === APPLICATION_PART) {
          // busboy decodes text parts leniently; a replacement character is the trace of bytes that were not UTF-8.
          if (value.includes('\uFFFD'))
            throw new AmtError('AMT_BODY_MALFORMED', 'the application part is not valid UTF-8');
          acceptApplication(value);
        } else if (name === PURPOSE_PART) {
          purposes.push(value);
        } else {
          throw partProblem(name, 'is not a known part');
        }
      } catch (err) {
        fail(err);
      }
    });

    parser.on('file', (name, stream, info) => {
      // busboy destroys the part's stream with an error when the body ends inside it.
      stream.on('error', fail);
      if (failure) {
        stream.resume();
        return;
      }
      if (name === APPLICATION_PART) {
        track(
          readApplicationFile(stream, options.applicationLimitBytes).then((bytes) => {
            if (failure) return;
            try {
              acceptApplication(decodeUtf8(bytes, 'the application part'));
            } catch (err) {
              fail(err);
            }
          }, fail),
        );
        return;
      }
      if (name !== FILE_PART) {
        stream.resume();
        fail(partProblem(name, 'is not a known part'));
        return;
      }
      const index = files.length;
      if (index >= options.maxFiles) {
        stream.resume();
        fail(new AmtError('AMT_BODY_TOO_LARGE', `more than ${options.maxFiles} attachments`));
        return;
      }
      files.push(undefined);
      // The store's pipeline destroys its source on failure; busboy must never see its own stream
      // destroyed (it would wait for it forever), so the store reads a relay instead.
      const relay = new PassThrough();
      relays.add(relay);
      stream.pipe(relay);
      const saving = options.attachments.save(relay, options.fileLimitBytes).then(
        (stored) => {
          files[index] = {
            stored,
            filename:
              info.filename === undefined || info.filename === '' ? `attachment-${index + 1}` : info.filename,
            mediaType: info.mimeType,
          };
        },
        (err: unknown) => {
          stream.unpipe(relay);
          stream.resume();
          fail(err);
        },
      );
      track(saving.finally(() => relays.delete(relay)));
    });

    parser.on('filesLimit', () =>
      fail(new AmtError('AMT_BODY_TOO_LARGE', `more than ${options.maxFiles} attachments`)),
    );
    parser.on('fieldsLimit', () => fail(new AmtError('AMT_BODY_TOO_LARGE', 'too many text parts')));
    parser.on('partsLimit', () => fail(new AmtError('AMT_BODY_TOO_LARGE', 'too many parts')));
    parser.on('error', (err: unknown) => fail(err));
    parser.on('finish', () => {
      if (!failure) settle();
    });
    req.on('close', () => {
      if (!req.complete)
        fail(new AmtError('AMT_BODY_MALFORMED', 'the request ended before its body was complete'));
    });
    req.pipe(parser);
  });
}

function partProblem(name: string, message: string): AmtError {
  return new AmtError('AMT_VALIDATION_FAILED', `the multipart part "${name}" ${message}`, {
    problems: [{ path: jsonPointer([name]), message }],
  });
}

function readApplicationFile(stream: Readable, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        stream.removeAllListeners('data');
        stream.resume();
        reject(new AmtError('AMT_BODY_TOO_LARGE', `the application part exceeds ${limitBytes} bytes`));
      } else {
        chunks.push(chunk);
      }
    });
    stream.on('end', () => resolve(Buffer.concat(chunks, size)));
    stream.on('error', reject);
  });
}
