import { expect } from 'chai';
import { CompactEncrypt, compactDecrypt, importJWK, type JWK } from 'jose';
import {
  decryptionJwk,
  encryptionJwk,
  fitConnectTestKeys,
  type FitConnectTestKeys,
} from '../../test/peers/fit-connect/keys.js';
import {
  authenticationTag,
  decryptJwe,
  encryptJwe,
  importRsaOaepKey,
  JweError,
  nameBasedUuid,
  type RsaOaepKey,
} from './jwe.js';

/** jose as the independent implementation; it needs key_ops dropped for WebCrypto. */
const joseKey = (jwk: JWK) => {
  const { key_ops: _ops, ...bare } = jwk;
  return importJWK(bare, 'RSA-OAEP-256');
};

describe('FIT-Connect JWE (RSA-OAEP-256 + A256GCM)', function () {
  let keys: FitConnectTestKeys;
  let publicKey: RsaOaepKey;
  let privateKey: RsaOaepKey;
  const plaintext = Buffer.from(JSON.stringify({ name: 'Jürgen Müller', straße: 'Prinzipalmarkt 10' }));

  before(async function () {
    this.timeout(180_000);
    keys = await fitConnectTestKeys();
    publicKey = await importRsaOaepKey(encryptionJwk(keys.destinationEncryption));
    privateKey = await importRsaOaepKey(decryptionJwk(keys.destinationEncryption));
  });

  it('produces JWE that jose decrypts, with alg, enc, kid and cty in the protected header', async () => {
    const jwe = await encryptJwe(plaintext, publicKey, 'kid-1', 'application/json');
    const { plaintext: opened, protectedHeader } = await compactDecrypt(
      jwe,
      await joseKey(decryptionJwk(keys.destinationEncryption)),
    );
    expect(Buffer.from(opened).equals(plaintext)).to.equal(true);
    expect(protectedHeader).to.deep.equal({
      alg: 'RSA-OAEP-256',
      enc: 'A256GCM',
      kid: 'kid-1',
      cty: 'application/json',
    });
  });

  it('decrypts what jose encrypted, including an empty plaintext', async () => {
    const key = await joseKey(encryptionJwk(keys.destinationEncryption));
    for (const content of [plaintext, Buffer.alloc(0)]) {
      const jwe = await new CompactEncrypt(content)
        .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: 'k', cty: 'text/plain' })
        .encrypt(key);
      const opened = await decryptJwe(jwe, privateKey);
      expect(Buffer.from(opened.plaintext).equals(content)).to.equal(true);
      expect(opened).to.include({ kid: 'k', cty: 'text/plain' });
    }
  });

  it('refuses an altered ciphertext, tag, header or wrapped key, and a foreign key', async () => {
    const jwe = await encryptJwe(plaintext, publicKey, 'kid-1', 'application/json');
    const parts = jwe.split('.');
    const flip = (s: string) =>
      s[5] === 'A' ? `${s.slice(0, 5)}B${s.slice(6)}` : `${s.slice(0, 5)}A${s.slice(6)}`;
    const otherHeader = Buffer.from(
      JSON.stringify({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: 'kid-1', cty: 'text/html' }),
    ).toString('base64url');
    const variants = [
      [parts[0], parts[1], parts[2], flip(parts[3]!), parts[4]],
      [parts[0], parts[1], parts[2], parts[3], flip(parts[4]!)],
      [otherHeader, parts[1], parts[2], parts[3], parts[4]],
      [parts[0], flip(parts[1]!), parts[2], parts[3], parts[4]],
    ].map((p) => p.join('.'));
    for (const altered of variants) {
      let failure: unknown;
      try {
        await decryptJwe(altered, privateKey);
      } catch (err) {
        failure = err;
      }
      expect(failure).to.be.instanceOf(JweError);
    }
    const foreign = await importRsaOaepKey(decryptionJwk(keys.destinationSigning));
    let failure: unknown;
    try {
      await decryptJwe(jwe, foreign);
    } catch (err) {
      failure = err;
    }
    expect(failure).to.be.instanceOf(JweError);
  });

  it('refuses other algorithms and compressed content', async () => {
    const { key_ops: _ops, ...bare } = encryptionJwk(keys.destinationEncryption);
    const refusal = async (jwe: string): Promise<string> => {
      try {
        await decryptJwe(jwe, privateKey);
      } catch (err) {
        expect(err).to.be.instanceOf(JweError);
        return (err as Error).message;
      }
      throw new Error('decrypted although it should not');
    };
    for (const header of [
      { alg: 'RSA-OAEP', enc: 'A256GCM' },
      { alg: 'RSA-OAEP-256', enc: 'A128GCM' },
    ]) {
      const jwe = await new CompactEncrypt(plaintext)
        .setProtectedHeader(header)
        .encrypt(await importJWK(bare, header.alg));
      expect(await refusal(jwe)).to.contain('alg/enc');
    }
    const jwe = await encryptJwe(plaintext, publicKey, 'kid-1', 'application/json');
    const zipped = Buffer.from(JSON.stringify({ alg: 'RSA-OAEP-256', enc: 'A256GCM', zip: 'DEF' })).toString(
      'base64url',
    );
    expect(await refusal([zipped, ...jwe.split('.').slice(1)].join('.'))).to.contain('zip');
  });

  it('exposes the authentication tag and derives stable version-5 UUIDs', async () => {
    const jwe = await encryptJwe(plaintext, publicKey, 'kid-1', 'application/json');
    expect(authenticationTag(jwe)).to.equal(jwe.split('.')[4]);
    expect(Buffer.from(authenticationTag(jwe), 'base64url')).to.have.length(16);
    const ns = '6ba7b810-9dad-11d1-80b4-00c04fd430c8'; // RFC 9562 DNS namespace
    // RFC 9562 appendix A.4: UUIDv5 of "www.example.com" in the DNS namespace.
    expect(nameBasedUuid(ns, 'www.example.com')).to.equal('2ed6657d-e927-568b-95e1-2665a8aea6a2');
    expect(nameBasedUuid(ns, 'x')).to.equal(nameBasedUuid(ns, 'x'));
    expect(nameBasedUuid(ns, 'x')).to.not.equal(nameBasedUuid(ns, 'y'));
  });
});
