/**
 * The content encryption FIT-Connect prescribes: JWE compact serialisation, key wrapping with
 * RSA-OAEP-256, content encryption with A256GCM, the destination's key id in `kid`, the media
 * type of the plaintext in `cty`. Plus the SHA-512 hashes the metadata carries.
 */
import { createHash } from 'node:crypto';
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader, importJWK, type JWK } from 'jose';

export const JWE_ALG = 'RSA-OAEP-256';
export const JWE_ENC = 'A256GCM';

type RsaKey = Awaited<ReturnType<typeof importJWK>>;

/**
 * Imports an RSA JWK for JWE. FIT-Connect keys carry `key_ops: ["wrapKey"]` (or `unwrapKey`),
 * which WebCrypto refuses for the encrypt/decrypt usages jose asks for: the key's purpose has
 * been checked before, so `key_ops` and `use` are dropped here.
 */
export async function importRsaOaepKey(jwk: JWK): Promise<RsaKey> {
  const { key_ops: _ops, use: _use, ...bare } = jwk;
  return importJWK({ ...bare, alg: JWE_ALG }, JWE_ALG);
}

export async function encryptJwe(
  plaintext: Uint8Array,
  key: RsaKey,
  kid: string,
  cty: string,
): Promise<string> {
  return new CompactEncrypt(plaintext)
    .setProtectedHeader({ alg: JWE_ALG, enc: JWE_ENC, kid, cty })
    .encrypt(key);
}

export interface DecryptedJwe {
  readonly plaintext: Uint8Array;
  readonly kid: string | undefined;
  readonly cty: string | undefined;
}

/** Decrypts a JWE compact string; throws when it is malformed, uses other algorithms or was altered. */
export async function decryptJwe(jwe: string, key: RsaKey): Promise<DecryptedJwe> {
  const { plaintext, protectedHeader } = await compactDecrypt(jwe, key, {
    keyManagementAlgorithms: [JWE_ALG],
    contentEncryptionAlgorithms: [JWE_ENC],
  });
  return {
    plaintext,
    kid: protectedHeader.kid,
    cty: typeof protectedHeader.cty === 'string' ? protectedHeader.cty : undefined,
  };
}

/** The `kid` of a JWE's protected header, or undefined when it cannot be read. */
export function jweKid(jwe: string): string | undefined {
  try {
    return decodeProtectedHeader(jwe).kid;
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
    /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(value)
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
  const hash = createHash('sha1').update(uuidBytes(namespace)).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}
