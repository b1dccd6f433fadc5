/**
 * Refreshes an IdP metadata file from the IdP's (or the federation's) metadata URL. The fetched
 * document is trusted only when its signature verifies against a configured certificate, it has
 * not expired and it describes the same IdP as the file; only then is the file replaced, atomically
 * (temp file + rename), so a gateway reading it never sees half a file. Anything else leaves the
 * file as it was.
 */
import { randomUUID } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import axios from 'axios';
import { syncDirectory } from '../durable-fs.js';
import { AmtError, isAmtError } from '../errors.js';
import { parseIdpMetadata } from './idp-metadata.js';

export interface RefreshIdpMetadataOptions {
  /** Where the IdP publishes its signed metadata. */
  readonly url: string;
  /** PEM certificate(s) the metadata must be signed with. */
  readonly verifyWith: readonly string[];
  /** The metadata file the gateway reads (`identity.idps[].metadata`). */
  readonly targetFile: string;
  /** For the whole request, redirects included; default 30 s. */
  readonly timeoutMs?: number;
  /** Largest accepted document; default 1 MiB. */
  readonly maxBytes?: number;
  /** ms since epoch, for `validUntil`; default now. */
  readonly now?: number;
}

export interface RefreshResult {
  /** False when the file already held exactly this document. */
  readonly changed: boolean;
  readonly entityId: string;
  readonly validUntil: number | undefined;
  readonly signingCertificates: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_BYTES = 1024 * 1024;

/**
 * Fetches, verifies and installs IdP metadata. Throws AMT_SAML_METADATA_SIGNATURE_INVALID for a
 * document that is not signed by `verifyWith`, AMT_SAML_METADATA_INVALID otherwise (retryable
 * when the URL could not be read).
 */
export async function refreshIdpMetadata(options: RefreshIdpMetadataOptions): Promise<RefreshResult> {
  const bytes = await fetchMetadata(options);
  let xml: string;
  try {
    xml = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new AmtError('AMT_SAML_METADATA_INVALID', `IdP metadata from ${options.url} is not UTF-8`);
  }
  const metadata = parseIdpMetadata(xml, { verifyWith: options.verifyWith, now: options.now ?? Date.now() });

  const current = await readFile(options.targetFile).catch(() => undefined);
  if (current !== undefined) {
    const describes = entityIdOf(current);
    // A wrong URL (another IdP of the same federation signer) must not swap the IdP behind a file.
    if (describes !== undefined && describes !== metadata.entityId) {
      throw new AmtError(
        'AMT_SAML_METADATA_INVALID',
        `IdP metadata from ${options.url} describes ${metadata.entityId}, but ${options.targetFile} describes ${describes}`,
      );
    }
  }
  const result = {
    entityId: metadata.entityId,
    validUntil: metadata.validUntil,
    signingCertificates: metadata.signingCertificates.length,
  };
  if (current !== undefined && current.equals(bytes)) return { changed: false, ...result };
  await replaceAtomically(options.targetFile, bytes);
  return { changed: true, ...result };
}

async function fetchMetadata(options: RefreshIdpMetadataOptions): Promise<Buffer> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  try {
    const response = await axios.get<ArrayBuffer>(options.url, {
      responseType: 'arraybuffer',
      // axios' own timeout only bounds the wait for the response to start; the signal bounds it all.
      timeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      maxContentLength: maxBytes,
      maxRedirects: 3,
      headers: { Accept: 'application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8' },
      validateStatus: (status) => status === 200,
    });
    return Buffer.from(response.data);
  } catch (err) {
    if (isAmtError(err)) throw err;
    throw new AmtError(
      'AMT_SAML_METADATA_INVALID',
      `IdP metadata cannot be fetched from ${options.url}: ${why(err)}`,
      {
        cause: err,
        retryable: true,
      },
    );
  }
}

function why(err: unknown): string {
  if (axios.isAxiosError(err)) {
    if (err.response) return `HTTP ${err.response.status}`;
    if (err.message.includes('maxContentLength')) return 'the document is too large';
    if (err.code === 'ERR_CANCELED' || err.code === 'ECONNABORTED') return 'timed out';
    return err.code ?? err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The entityID of the metadata currently in the file, when it can be read at all. */
function entityIdOf(bytes: Buffer): string | undefined {
  try {
    return parseIdpMetadata(bytes.toString('utf8')).entityId;
  } catch {
    return undefined;
  }
}

/** Temp file in the same directory, flushed, renamed over the target; the rename is flushed too. */
async function replaceAtomically(file: string, content: Buffer): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${randomUUID()}.tmp`);
  const mode = await stat(file).then(
    (info) => info.mode & 0o777,
    () => 0o644,
  );
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw new AmtError('AMT_SAML_METADATA_INVALID', `IdP metadata file ${file} cannot be written`, {
      cause: err,
      retryable: true,
    });
  }
  await syncDirectory(dir);
}
