/**
 * Checks a destination's public encryption key before anything is encrypted for it: RSA of at
 * least 4096 bits, meant for RSA-OAEP-256 key wrapping, and — when a trust anchor is configured —
 * certified by an `x5c` chain that ends at that anchor. A key that fails is never used.
 */
import { X509Certificate, createPublicKey } from 'node:crypto';
import type { JWK } from 'jose';
import { JWE_ALG } from './jwe.js';

export const MIN_RSA_BITS = 4096;

/** The problems with `jwk` as a FIT-Connect encryption key; empty when it may be used. */
export function encryptionKeyProblems(
  jwk: JWK,
  options: { readonly trustAnchors: readonly X509Certificate[]; readonly now?: Date },
): string[] {
  const problems: string[] = [];
  if (jwk.kty !== 'RSA') problems.push(`kty is ${String(jwk.kty)}, not RSA`);
  if (jwk.alg !== JWE_ALG) problems.push(`alg is ${String(jwk.alg)}, not ${JWE_ALG}`);
  if (!Array.isArray(jwk.key_ops) || !jwk.key_ops.includes('wrapKey')) {
    problems.push('key_ops does not contain wrapKey');
  }
  const bits = rsaModulusBits(jwk.n);
  if (bits < MIN_RSA_BITS)
    problems.push(`the RSA key has ${bits} bits, at least ${MIN_RSA_BITS} are required`);
  if (typeof jwk.e !== 'string') problems.push('the RSA exponent is missing');
  if (problems.length === 0 && options.trustAnchors.length > 0) {
    problems.push(...chainProblems(jwk, options.trustAnchors, options.now ?? new Date()));
  }
  return problems;
}

function rsaModulusBits(n: unknown): number {
  if (typeof n !== 'string' || n === '') return 0;
  const bytes = Buffer.from(n, 'base64url');
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  if (i === bytes.length) return 0;
  return (bytes.length - i) * 8 - Math.clz32(bytes[i]!) + 24;
}

/**
 * The `x5c` chain: the first certificate holds exactly this key, each one is issued and signed by
 * the next, all are valid now, and the last is the anchor or is signed by it.
 */
function chainProblems(jwk: JWK, anchors: readonly X509Certificate[], now: Date): string[] {
  if (!Array.isArray(jwk.x5c) || jwk.x5c.length === 0) return ['the key has no x5c certificate chain'];
  let chain: X509Certificate[];
  try {
    chain = jwk.x5c.map((der) => new X509Certificate(Buffer.from(der, 'base64')));
  } catch {
    return ['the x5c chain holds a certificate that cannot be parsed'];
  }
  const leaf = chain[0]!;
  const leafKey = leaf.publicKey.export({ format: 'jwk' });
  const ownKey = createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' }).export({
    format: 'jwk',
  });
  if (leafKey.n !== ownKey.n || leafKey.e !== ownKey.e)
    return ['the first x5c certificate does not certify this key'];
  for (const [i, cert] of chain.entries()) {
    if (Date.parse(cert.validFrom) > now.getTime() || Date.parse(cert.validTo) < now.getTime()) {
      return [`x5c certificate ${i} (${cert.subject.replace(/\n/g, ', ')}) is not valid now`];
    }
    const issuer = chain[i + 1];
    if (issuer && !(cert.checkIssued(issuer) && cert.verify(issuer.publicKey))) {
      return [`x5c certificate ${i} is not signed by certificate ${i + 1}`];
    }
  }
  const top = chain[chain.length - 1]!;
  const anchored = anchors.some(
    (anchor) =>
      anchor.fingerprint256 === top.fingerprint256 ||
      (top.checkIssued(anchor) && top.verify(anchor.publicKey)),
  );
  return anchored ? [] : ['the x5c chain does not lead to the configured trust anchor'];
}
