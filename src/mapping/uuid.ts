/** Name-based (version 5) UUIDs: stable identifiers derived from message data. */
import { createHash } from 'node:crypto';

/** Namespace of the UUIDs the gateway derives, fixed forever. */
const UUID_NAMESPACE = Buffer.from('6f2c1a8e4b3d4e7f9a0b5c6d7e8f9a0b', 'hex');

/** The same name always gives the same UUID, so a re-delivery carries the same identifiers. */
export function nameBasedUuid(name: string): string {
  const hash = createHash('sha1').update(UUID_NAMESPACE).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
