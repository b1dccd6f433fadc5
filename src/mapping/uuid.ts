/** Name-based (version 5) UUIDs: stable identifiers derived from message data. */
import { hash } from 'node:crypto';

/** Namespace of the UUIDs the gateway derives, fixed forever. */
const UUID_NAMESPACE = Buffer.from('6f2c1a8e4b3d4e7f9a0b5c6d7e8f9a0b', 'hex');

/** The same name always gives the same UUID, so a re-delivery carries the same identifiers. */
export function nameBasedUuid(name: string): string {
  // one-shot hash: several UUIDs per message, and createHash() objects cost more than the SHA-1
  const digest = hash('sha1', Buffer.concat([UUID_NAMESPACE, Buffer.from(name, 'utf8')]), 'buffer');
  digest[6] = (digest[6]! & 0x0f) | 0x50;
  digest[8] = (digest[8]! & 0x3f) | 0x80;
  const hex = digest.toString('hex', 0, 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
