/**
 * The `identity` section of the configuration: paths are resolved against the configuration file,
 * and the SP decryption key is read from its file at load. The key is a secret, so it never
 * appears in the configuration text, and its content is never part of a problem message.
 */
import { createPrivateKey } from 'node:crypto';
import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';
import { AmtError, type Problem } from '../errors.js';
import type { IdentityConfig } from './types.js';
import { parseDuration } from './units.js';

/** The section as the schema admits it (with `clockSkew` defaulted). */
export interface RawIdentityConfig {
  idps: { metadata: string }[];
  audience: string;
  recipient?: string;
  clockSkew?: number | string;
  spDecryptionKey?: string | string[];
}

const DEFAULT_CLOCK_SKEW = '2m';

/** Throws AMT_CONFIG_SECRET_MISSING when a key file cannot be read, AMT_CONFIG_INVALID for other problems. */
export function toIdentityConfig(raw: RawIdentityConfig, baseDir: string): IdentityConfig {
  const problems: Problem[] = [];
  let secretMissing = false;

  const idps = raw.idps.map((idp, i) => {
    const metadata = path.resolve(baseDir, idp.metadata);
    try {
      accessSync(metadata, constants.R_OK);
    } catch {
      problems.push({ path: `/identity/idps/${i}/metadata`, message: `file ${metadata} cannot be read` });
    }
    return { metadata };
  });

  const keyFiles =
    raw.spDecryptionKey === undefined
      ? []
      : typeof raw.spDecryptionKey === 'string'
        ? [raw.spDecryptionKey]
        : raw.spDecryptionKey;
  const spDecryptionKeys = keyFiles.map((file, i) => {
    const where =
      typeof raw.spDecryptionKey === 'string'
        ? '/identity/spDecryptionKey'
        : `/identity/spDecryptionKey/${i}`;
    // A `${file:…}` reference would put the key itself here; it must not end up in a message.
    if (file.includes('-----BEGIN')) {
      problems.push({ path: where, message: 'give the path of the PEM file, not the key itself' });
      return '';
    }
    const absolute = path.resolve(baseDir, file);
    let pem: string;
    try {
      pem = readFileSync(absolute, 'utf8');
    } catch {
      secretMissing = true;
      problems.push({ path: where, message: `secret file ${absolute} cannot be read` });
      return '';
    }
    try {
      createPrivateKey(pem);
    } catch {
      problems.push({ path: where, message: `${absolute} is not a PEM private key` });
    }
    return pem;
  });

  if (problems.length > 0) {
    throw new AmtError(
      secretMissing ? 'AMT_CONFIG_SECRET_MISSING' : 'AMT_CONFIG_INVALID',
      'the identity configuration refers to files that cannot be used',
      { problems },
    );
  }
  return {
    idps,
    audience: raw.audience,
    recipient: raw.recipient,
    clockSkewMs: parseDuration(raw.clockSkew ?? DEFAULT_CLOCK_SKEW),
    spDecryptionKeys,
  };
}
