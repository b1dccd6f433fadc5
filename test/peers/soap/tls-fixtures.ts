/**
 * Test certificates made with the `openssl` CLI: a CA, a server certificate for 127.0.0.1, a client
 * certificate signed by the CA (its key encrypted with a passphrase), and a client certificate from
 * a different CA the servers must refuse. Everything lives in a temporary directory. Without
 * `openssl` the long-lived, test-only set in `tls-fallback/` is used (made by `npx tsx
 * test/peers/soap/tls-fixtures.ts`).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TlsFixtures {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  /** Encrypted with `clientKeyPassphrase`. */
  readonly clientKey: string;
  readonly clientKeyPassphrase: string;
  /** Signed by another CA: a server that trusts only `caCert` refuses it. */
  readonly rogueClientCert: string;
  readonly rogueClientKey: string;
  cleanup(): void;
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

function makeCa(dir: string, name: string, days: number): void {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      String(days),
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
}

function makeSigned(
  dir: string,
  name: string,
  ca: string,
  options: { extensions: string; days: number; passphrase?: string },
): void {
  const keyArgs = options.passphrase ? ['-aes256', '-pass', `pass:${options.passphrase}`] : [];
  openssl(
    ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', ...keyArgs, '-out', `${name}.key`],
    dir,
  );
  const passIn = options.passphrase ? ['-passin', `pass:${options.passphrase}`] : [];
  openssl(
    ['req', '-new', '-key', `${name}.key`, ...passIn, '-subj', `/CN=${name}`, '-out', `${name}.csr`],
    dir,
  );
  writeFileSync(path.join(dir, `${name}.ext`), options.extensions);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-days',
      String(options.days),
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
}

const PASSPHRASE = 'test-only-passphrase';
const FALLBACK_DIR = fileURLToPath(new URL('./tls-fallback/', import.meta.url));

function generate(dir: string, days: number): void {
  makeCa(dir, 'test-ca', days);
  makeCa(dir, 'rogue-ca', days);
  makeSigned(dir, 'server', 'test-ca', {
    extensions: 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
    days,
  });
  makeSigned(dir, 'client', 'test-ca', {
    extensions: 'extendedKeyUsage=clientAuth\n',
    days,
    passphrase: PASSPHRASE,
  });
  makeSigned(dir, 'rogue-client', 'rogue-ca', { extensions: 'extendedKeyUsage=clientAuth\n', days });
}

/** Creates the certificates (or uses the shipped ones); call `cleanup()` in an `after` hook. */
export function createTlsFixtures(): TlsFixtures {
  const generated = hasOpenssl();
  const dir = generated ? mkdtempSync(path.join(os.tmpdir(), 'amtsbote-tls-')) : FALLBACK_DIR;
  if (generated) generate(dir, 2);
  const file = (name: string): string => path.join(dir, name);
  return {
    dir,
    caCert: file('test-ca.crt'),
    serverCert: file('server.crt'),
    serverKey: file('server.key'),
    clientCert: file('client.crt'),
    clientKey: file('client.key'),
    clientKeyPassphrase: PASSPHRASE,
    rogueClientCert: file('rogue-client.crt'),
    rogueClientKey: file('rogue-client.key'),
    cleanup: () => {
      if (generated) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Regenerates the shipped fallback set: `npx tsx test/peers/soap/tls-fixtures.ts`. */
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const keep = [
    'test-ca.crt',
    'server.crt',
    'server.key',
    'client.crt',
    'client.key',
    'rogue-client.crt',
    'rogue-client.key',
  ];
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-tls-'));
  generate(scratch, 36500);
  mkdirSync(FALLBACK_DIR, { recursive: true });
  for (const name of keep) copyFileSync(path.join(scratch, name), path.join(FALLBACK_DIR, name));
  rmSync(scratch, { recursive: true, force: true });
}
