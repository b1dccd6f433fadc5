/**
 * Key material for the FIT-Connect emulator and tests: real 4096-bit RSA keys (generated once per
 * process — that takes seconds), JWKs shaped like those the FIT-Connect portal issues, and X.509
 * chains made with the openssl command line so `x5c` can be checked against a trust anchor.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPair, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { JWK } from 'jose';

const generate = promisify(generateKeyPair);

export interface RsaKeyPair {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Public JWK without FIT-Connect attributes (kty, n, e). */
  readonly publicJwk: JWK;
  /** Private JWK including `kid`. */
  readonly privateJwk: JWK & { kid: string };
}

export async function rsaKeyPair(bits: number): Promise<RsaKeyPair> {
  const { privateKey, publicKey } = await generate('rsa', { modulusLength: bits, publicExponent: 0x10001 });
  const kid = randomUUID();
  const publicJwk = publicKey.export({ format: 'jwk' }) as JWK;
  const privateJwk = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid };
  return { kid, privateKey, publicKey, publicJwk, privateJwk };
}

/** A public encryption JWK as a destination publishes it. */
export function encryptionJwk(pair: RsaKeyPair, x5c?: readonly string[]): JWK {
  return {
    ...pair.publicJwk,
    kid: pair.kid,
    alg: 'RSA-OAEP-256',
    key_ops: ['wrapKey'],
    ...(x5c ? { x5c: [...x5c] } : {}),
  };
}

/** A public signing JWK as a destination or the Zustelldienst publishes it. */
export function signingJwk(pair: RsaKeyPair): JWK {
  return { ...pair.publicJwk, kid: pair.kid, alg: 'PS512', key_ops: ['verify'] };
}

/** The decryption key a receiving system holds (private, RSA-OAEP-256, `unwrapKey`). */
export function decryptionJwk(pair: RsaKeyPair): JWK & { kid: string } {
  return { ...pair.privateJwk, alg: 'RSA-OAEP-256', key_ops: ['unwrapKey'] };
}

export function privateSigningJwk(pair: RsaKeyPair): JWK & { kid: string } {
  return { ...pair.privateJwk, alg: 'PS512', key_ops: ['sign'] };
}

export interface CertificateAuthority {
  readonly pem: string;
  /** Certifies the public half of `subject` (openssl needs the private key for the request). */
  readonly issue: (subject: RsaKeyPair, commonName: string) => string[];
}

/**
 * A throw-away CA whose `issue` returns an `x5c` array (base64 DER, leaf first, CA last) for a
 * key. Needs the `openssl` command line tool.
 */
export function certificateAuthority(name: string, caKey: KeyObject): CertificateAuthority {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-fit-ca-'));
  try {
    const caKeyFile = path.join(dir, 'ca.key');
    writeFileSync(caKeyFile, caKey.export({ format: 'pem', type: 'pkcs8' }));
    const caCertFile = path.join(dir, 'ca.pem');
    openssl([
      'req',
      '-x509',
      '-new',
      '-key',
      caKeyFile,
      '-subj',
      `/CN=${name}`,
      '-days',
      '3',
      '-out',
      caCertFile,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const pem = readFileSync(caCertFile, 'utf8');
    const caKeyPem = caKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    return {
      pem,
      issue(subject, commonName) {
        const work = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-fit-leaf-'));
        try {
          const keyFile = path.join(work, 'leaf.key');
          const csrFile = path.join(work, 'leaf.csr');
          const certFile = path.join(work, 'leaf.pem');
          const caKeyCopy = path.join(work, 'ca.key');
          const caCertCopy = path.join(work, 'ca.pem');
          writeFileSync(keyFile, subject.privateKey.export({ format: 'pem', type: 'pkcs8' }));
          writeFileSync(caKeyCopy, caKeyPem);
          writeFileSync(caCertCopy, pem);
          openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${commonName}`, '-out', csrFile]);
          openssl([
            'x509',
            '-req',
            '-in',
            csrFile,
            '-CA',
            caCertCopy,
            '-CAkey',
            caKeyCopy,
            '-set_serial',
            String(Date.now()),
            '-days',
            '2',
            '-out',
            certFile,
          ]);
          return [derBase64(readFileSync(certFile, 'utf8')), derBase64(pem)];
        } finally {
          rmSync(work, { recursive: true, force: true });
        }
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function derBase64(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

export interface FitConnectTestKeys {
  /** The Zustelldienst's own SET signing key. */
  readonly service: RsaKeyPair;
  /** The key that signs routing data (destinationSignature). */
  readonly routing: RsaKeyPair;
  /** A destination's encryption key and signing key. */
  readonly destinationEncryption: RsaKeyPair;
  readonly destinationSigning: RsaKeyPair;
  /** Too short for FIT-Connect (also used for forgeries: a key nobody registered). */
  readonly short: RsaKeyPair;
  /** CA that certifies destinationEncryption, and one nobody trusts. */
  readonly trustedCa: CertificateAuthority;
  readonly untrustedCa: CertificateAuthority;
}

let shared: Promise<FitConnectTestKeys> | undefined;

/** All test keys, generated once per process (4096-bit generation takes about two seconds each). */
export function fitConnectTestKeys(): Promise<FitConnectTestKeys> {
  shared ??= (async () => {
    const [service, routing, destinationEncryption, destinationSigning, short, caKey, rogueKey] =
      await Promise.all([
        rsaKeyPair(4096),
        rsaKeyPair(4096),
        rsaKeyPair(4096),
        rsaKeyPair(4096),
        rsaKeyPair(2048),
        rsaKeyPair(2048),
        rsaKeyPair(2048),
      ]);
    return {
      service,
      routing,
      destinationEncryption,
      destinationSigning,
      short,
      trustedCa: certificateAuthority('amtsbote Test Root CA', caKey.privateKey),
      untrustedCa: certificateAuthority('Unknown Root CA', rogueKey.privateKey),
    };
  })();
  return shared;
}
