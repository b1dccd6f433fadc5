/**
 * The content encryption FIT-Connect prescribes: JWE compact serialisation (RFC 7516), key
 * wrapping with RSA-OAEP-256, content encryption with A256GCM, the destination's key id in `kid`,
 * the media type of the plaintext in `cty`. Plus the SHA-512 hashes the metadata carries.
 *
 * Only this one algorithm pair exists here, built from WebCrypto (RSA and AES run on the thread
 * pool) and Node's native base64url. jose's own base64 falls back to `btoa` on Node < 25, which
 * blocks the event loop for most of a second per 10 MB attachment; jose stays the independent
 * implementation the tests decrypt and encrypt with.
 */
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import type { JWK } from 'jose';

export const JWE_ALG = 'RSA-OAEP-256';
export const JWE_ENC = 'A256GCM';

export type RsaOaepKey = webcrypto.CryptoKey;

const subtle = webcrypto.subtle;
const RSA_OAEP_256_KEY = { name: 'RSA-OAEP', hash: 'SHA-256' } as const;
const RSA_OAEP = { name: 'RSA-OAEP' } as const;
const CEK_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Imports an RSA JWK for RSA-OAEP-256: the public half to encrypt, the private half (`d`) to
 * decrypt. FIT-Connect keys carry `key_ops: ["wrapKey"]` (or `unwrapKey`), which WebCrypto refuses
 * for the encrypt/decrypt usages: the key's purpose has been checked before, so `key_ops`, `use`
 * and `alg` are dropped here.
 */
export async function importRsaOaepKey(jwk: JWK): Promise<RsaOaepKey> {
  const { key_ops: _ops, use: _use, alg: _alg, x5c: _x5c, kid: _kid, ...bare } = jwk;
  const isPrivate = typeof jwk.d === 'string';
  return subtle.importKey('jwk', bare as webcrypto.JsonWebKey, RSA_OAEP_256_KEY, false, [
    isPrivate ? 'decrypt' : 'encrypt',
  ]);
}

export async function encryptJwe(
  plaintext: Uint8Array,
  key: RsaOaepKey,
  kid: string,
  cty: string,
): Promise<string> {
  const header = b64u(Buffer.from(JSON.stringify({ alg: JWE_ALG, enc: JWE_ENC, kid, cty }), 'utf8'));
  const cek = randomBytes(CEK_BYTES);
  const iv = randomBytes(IV_BYTES);
  const wrappedKey = await subtle.encrypt(RSA_OAEP, key, cek);
  const aesKey = await subtle.importKey('raw', cek, 'AES-GCM', false, ['encrypt']);
  const sealed = Buffer.from(
    await subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: Buffer.from(header, 'ascii'), tagLength: TAG_BYTES * 8 },
      aesKey,
      plaintext,
    ),
  );
  const ciphertext = sealed.subarray(0, sealed.length - TAG_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  return `${header}.${b64u(Buffer.from(wrappedKey))}.${b64u(iv)}.${b64u(ciphertext)}.${b64u(tag)}`;
}

export class JweError extends Error {
  override readonly name = 'JweError';
}

export interface DecryptedJwe {
  readonly plaintext: Uint8Array;
  readonly kid: string | undefined;
  readonly cty: string | undefined;
}

/** Decrypts a JWE compact string; throws `JweError` when it is malformed, uses other algorithms or was altered. */
export async function decryptJwe(jwe: string, key: RsaOaepKey): Promise<DecryptedJwe> {
  if (!isCompactJwe(jwe)) throw new JweError('not a JWE in compact serialisation');
  const [headerPart, keyPart, ivPart, ciphertextPart, tagPart] = jwe.split('.') as [
    string,
    string,
    string,
    string,
    string,
  ];
  const header = protectedHeader(headerPart);
  if (header.alg !== JWE_ALG || header.enc !== JWE_ENC) {
    throw new JweError(`alg/enc are ${String(header.alg)}/${String(header.enc)}, not ${JWE_ALG}/${JWE_ENC}`);
  }
  if (header.zip !== undefined || header.crit !== undefined)
    throw new JweError('zip and crit are not supported');
  const iv = Buffer.from(ivPart, 'base64url');
  const tag = Buffer.from(tagPart, 'base64url');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES)
    throw new JweError('IV or authentication tag has the wrong length');
  let cek: Buffer;
  try {
    cek = Buffer.from(await subtle.decrypt(RSA_OAEP, key, Buffer.from(keyPart, 'base64url')));
  } catch {
    // Carry on with a random key so a wrong key and an altered ciphertext fail alike (RFC 7516 §11.5).
    cek = randomBytes(CEK_BYTES);
  }
  if (cek.length !== CEK_BYTES) cek = randomBytes(CEK_BYTES);
  const aesKey = await subtle.importKey('raw', cek, 'AES-GCM', false, ['decrypt']);
  let plaintext: ArrayBuffer;
  try {
    plaintext = await subtle.decrypt(
      { name: 'AES-GCM', iv, additionalData: Buffer.from(headerPart, 'ascii'), tagLength: TAG_BYTES * 8 },
      aesKey,
      Buffer.concat([Buffer.from(ciphertextPart, 'base64url'), tag]),
    );
  } catch {
    throw new JweError('the JWE cannot be decrypted with this key or was altered');
  }
  return {
    plaintext: new Uint8Array(plaintext),
    kid: typeof header.kid === 'string' ? header.kid : undefined,
    cty: typeof header.cty === 'string' ? header.cty : undefined,
  };
}

function protectedHeader(part: string): Record<string, unknown> {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new JweError('the protected header is not a JSON object');
}

/** The `kid` of a JWE's protected header, or undefined when it cannot be read. */
export function jweKid(jwe: string): string | undefined {
  try {
    const kid = protectedHeader(jwe.slice(0, jwe.indexOf('.'))).kid;
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}

/** The authentication tag (last part of the compact serialisation) a receiver quotes in its SETs. */
export function authenticationTag(jwe: string): string {
  return jwe.slice(jwe.lastIndexOf('.') + 1);
}

export function isCompactJwe(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$/.test(value)
  );
}

export function sha512Hex(data: Uint8Array | string): string {
  return createHash('sha512').update(data).digest('hex');
}

/**
 * A name-based UUID (RFC 9562 version 5, SHA-1): the same delivery and index always give the same
 * attachment id, so the receiver can recognise a retried upload.
 */
export function nameBasedUuid(namespace: string, name: string): string {
  const hash = createHash('sha1')
    .update(Buffer.from(namespace.replace(/-/g, ''), 'hex'))
    .update(name, 'utf8')
    .digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function b64u(bytes: Buffer): string {
  return bytes.toString('base64url');
}
