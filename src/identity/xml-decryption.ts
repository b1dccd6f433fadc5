/**
 * XML Encryption 1.1, the part SAML uses: an `EncryptedData` (AES-CBC or AES-GCM) whose key is
 * an `EncryptedKey` wrapped for our RSA key (RSA-OAEP or RSA PKCS#1 v1.5).
 *
 * Every decryption failure that depends on the key or the ciphertext gives the same message, so
 * an attacker learns nothing from which step failed (padding-oracle attacks on XML Encryption).
 * PKCS#1 v1.5 key transport is unpadded by hand with implicit rejection: a malformed block yields
 * a deterministic substitute key and the data decryption then fails like any other wrong key.
 * Node refuses PKCS#1 v1.5 private decryption since the Marvin attack fix, which is why the
 * unpadding happens here.
 */
import { constants, createDecipheriv, createHash, createHmac, privateDecrypt } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { NS, childNamed, childrenNamed, textOf } from './xml-tree.js';
import type { XmlElement } from './xml-tree.js';

export class DecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecryptionError';
  }
}

export const CANNOT_DECRYPT = 'the encrypted element cannot be decrypted with the configured key';

interface DataAlgorithm {
  readonly cipher:
    'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc' | 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';
  readonly keyLength: number;
  readonly gcm: boolean;
}

const DATA_ALGORITHMS: Readonly<Record<string, DataAlgorithm>> = {
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc': { cipher: 'aes-128-cbc', keyLength: 16, gcm: false },
  'http://www.w3.org/2001/04/xmlenc#aes192-cbc': { cipher: 'aes-192-cbc', keyLength: 24, gcm: false },
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc': { cipher: 'aes-256-cbc', keyLength: 32, gcm: false },
  'http://www.w3.org/2009/xmlenc11#aes128-gcm': { cipher: 'aes-128-gcm', keyLength: 16, gcm: true },
  'http://www.w3.org/2009/xmlenc11#aes192-gcm': { cipher: 'aes-192-gcm', keyLength: 24, gcm: true },
  'http://www.w3.org/2009/xmlenc11#aes256-gcm': { cipher: 'aes-256-gcm', keyLength: 32, gcm: true },
};

const RSA_OAEP_MGF1P = 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p';
const RSA_OAEP = 'http://www.w3.org/2009/xmlenc11#rsa-oaep';
const RSA_1_5 = 'http://www.w3.org/2001/04/xmlenc#rsa-1_5';

const DIGESTS: Readonly<Record<string, string>> = {
  'http://www.w3.org/2000/09/xmldsig#sha1': 'sha1',
  'http://www.w3.org/2001/04/xmlenc#sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#sha384': 'sha384',
  'http://www.w3.org/2001/04/xmlenc#sha512': 'sha512',
};
const MGFS: Readonly<Record<string, string>> = {
  'http://www.w3.org/2009/xmlenc11#mgf1sha1': 'sha1',
  'http://www.w3.org/2009/xmlenc11#mgf1sha256': 'sha256',
  'http://www.w3.org/2009/xmlenc11#mgf1sha384': 'sha384',
  'http://www.w3.org/2009/xmlenc11#mgf1sha512': 'sha512',
};

/**
 * Decrypts the `xenc:EncryptedData` inside `container` (e.g. `saml:EncryptedAssertion`) and
 * returns the plaintext XML. The wrapped key is looked for in the EncryptedData's KeyInfo and
 * as `xenc:EncryptedKey` children of the container; each is tried with each private key.
 */
export function decryptElement(container: XmlElement, privateKeys: readonly KeyObject[]): string {
  const encryptedData = childNamed(container, NS.xenc, 'EncryptedData');
  if (!encryptedData) throw new DecryptionError('no EncryptedData');
  const type = encryptedData.attrs.get('Type');
  if (type !== undefined && type !== 'http://www.w3.org/2001/04/xmlenc#Element') {
    throw new DecryptionError(`EncryptedData of type ${type} is not supported`);
  }
  const dataAlgorithmUri = childNamed(encryptedData, NS.xenc, 'EncryptionMethod')?.attrs.get('Algorithm');
  const dataAlgorithm = dataAlgorithmUri === undefined ? undefined : DATA_ALGORITHMS[dataAlgorithmUri];
  if (!dataAlgorithm)
    throw new DecryptionError(`data encryption ${dataAlgorithmUri ?? '(none)'} is not supported`);
  const cipherData = cipherValue(encryptedData);

  const keyInfo = childNamed(encryptedData, NS.ds, 'KeyInfo');
  const encryptedKeys = [
    ...(keyInfo ? childrenNamed(keyInfo, NS.xenc, 'EncryptedKey') : []),
    ...childrenNamed(container, NS.xenc, 'EncryptedKey'),
  ];
  if (encryptedKeys.length === 0) throw new DecryptionError('no EncryptedKey');
  if (privateKeys.length === 0) throw new DecryptionError('no decryption key is configured');

  for (const encryptedKey of encryptedKeys) {
    for (const privateKey of privateKeys) {
      const contentKey = unwrapKey(encryptedKey, privateKey, dataAlgorithm.keyLength);
      if (!contentKey) continue;
      const plaintext = decryptData(dataAlgorithm, contentKey, cipherData);
      if (plaintext !== undefined) return plaintext;
    }
  }
  throw new DecryptionError(CANNOT_DECRYPT);
}

function cipherValue(element: XmlElement): Buffer {
  const cipherDataElement = childNamed(element, NS.xenc, 'CipherData');
  const value = cipherDataElement ? textOf(childNamed(cipherDataElement, NS.xenc, 'CipherValue')) : undefined;
  if (!value)
    throw new DecryptionError(`${element.local} has no CipherValue (CipherReference is not supported)`);
  const compact = value.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) throw new DecryptionError('CipherValue is not base64');
  return Buffer.from(compact, 'base64');
}

/** The content key, or undefined when this key cannot be unwrapped with this private key. */
function unwrapKey(encryptedKey: XmlElement, privateKey: KeyObject, keyLength: number): Buffer | undefined {
  const method = childNamed(encryptedKey, NS.xenc, 'EncryptionMethod');
  const algorithm = method?.attrs.get('Algorithm');
  const wrapped = cipherValue(encryptedKey);
  if (algorithm === RSA_1_5) return unwrapPkcs1v15(wrapped, privateKey, keyLength);
  if (algorithm !== RSA_OAEP_MGF1P && algorithm !== RSA_OAEP) {
    throw new DecryptionError(`key transport ${algorithm ?? '(none)'} is not supported`);
  }
  // method is defined here: algorithm came from it.
  const oaep = method as XmlElement;
  const digestUri = childNamed(oaep, NS.ds, 'DigestMethod')?.attrs.get('Algorithm');
  const digest = digestUri === undefined ? 'sha1' : DIGESTS[digestUri];
  const mgfUri =
    algorithm === RSA_OAEP ? childNamed(oaep, NS.xenc11, 'MGF')?.attrs.get('Algorithm') : undefined;
  const mgf = mgfUri === undefined ? 'sha1' : MGFS[mgfUri];
  if (!digest || !mgf) throw new DecryptionError('the OAEP digest or mask function is not supported');
  // Node's OAEP uses one hash for both; a mixed pair would need OAEP decoding by hand.
  if (digest !== mgf)
    throw new DecryptionError(`OAEP with digest ${digest} and MGF1-${mgf} is not supported`);
  const params = textOf(childNamed(oaep, NS.xenc, 'OAEPparams'));
  try {
    const key = privateDecrypt(
      {
        key: privateKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: digest,
        ...(params ? { oaepLabel: Buffer.from(params, 'base64') } : {}),
      },
      wrapped,
    );
    return key.length === keyLength ? key : undefined;
  } catch {
    return undefined;
  }
}

const rejectionSecrets = new WeakMap<KeyObject, Buffer>();

function unwrapPkcs1v15(wrapped: Buffer, privateKey: KeyObject, keyLength: number): Buffer | undefined {
  let block: Buffer;
  try {
    block = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, wrapped);
  } catch {
    return undefined; // wrong length for this key: public information, nothing to hide
  }
  const k = block.length;
  const separator = k - keyLength - 1;
  if (separator < 10) return undefined;
  // Branch-free checks over the whole block: 00 02, at least eight non-zero padding bytes, 00.
  let bad = block[0]! | (block[1]! ^ 2) | block[separator]!;
  for (let i = 2; i < separator; i++) bad |= ((block[i]! - 1) >> 8) & 1; // 1 when the byte is zero
  const mask = ((bad | -bad) >> 31) & 0xff; // 0xff when bad, 0 when good
  const substitute = implicitRejectionKey(privateKey, wrapped, keyLength);
  const key = Buffer.alloc(keyLength);
  for (let i = 0; i < keyLength; i++) {
    key[i] = (block[separator + 1 + i]! & ~mask) | (substitute[i]! & mask);
  }
  return key;
}

function implicitRejectionKey(privateKey: KeyObject, wrapped: Buffer, keyLength: number): Buffer {
  let secret = rejectionSecrets.get(privateKey);
  if (!secret) {
    secret = createHash('sha256')
      .update('amtsbote xmlenc implicit rejection')
      .update(privateKey.export({ type: 'pkcs8', format: 'der' }))
      .digest();
    rejectionSecrets.set(privateKey, secret);
  }
  return createHmac('sha256', secret).update(wrapped).digest().subarray(0, keyLength);
}

function decryptData(algorithm: DataAlgorithm, key: Buffer, data: Buffer): string | undefined {
  try {
    let plain: Buffer;
    if (algorithm.gcm) {
      if (data.length < 12 + 16) return undefined;
      const decipher = createDecipheriv(algorithm.cipher as 'aes-256-gcm', key, data.subarray(0, 12));
      decipher.setAuthTag(data.subarray(data.length - 16));
      plain = Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]);
    } else {
      const body = data.subarray(16);
      if (body.length === 0 || body.length % 16 !== 0) return undefined;
      const decipher = createDecipheriv(algorithm.cipher, key, data.subarray(0, 16));
      decipher.setAutoPadding(false);
      const padded = Buffer.concat([decipher.update(body), decipher.final()]);
      // XML Encryption padding: only the last byte (the count) is defined, the rest is arbitrary.
      const pad = padded[padded.length - 1]!;
      if (pad < 1 || pad > 16) return undefined;
      plain = padded.subarray(0, padded.length - pad);
    }
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    return undefined;
  }
}
