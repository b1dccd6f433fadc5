/**
 * Message and delivery ids: UUID version 7 (RFC 9562) — 48 bits of Unix milliseconds, then
 * random bits. They are UUIDs like any other to a receiver, but ids made one after another sort
 * one after another, so the store's indexes on them grow at their right edge instead of
 * touching a random page per new message (fewer pages written per commit, in SQLite's WAL and
 * in PostgreSQL's B-trees alike). Within one millisecond a counter in the random part keeps
 * them ascending in this process.
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 16 * 256;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;
let lastMs = -1;
let sequence = 0;

export function newId(now: number = Date.now()): string {
  if (poolOffset + 16 > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  let ms = Math.max(now, lastMs);
  if (ms === lastMs) {
    sequence += 1;
    // 12 bits of counter; should they run out, borrow the next millisecond.
    if (sequence > 0xfff) {
      ms += 1;
      sequence = 0;
    }
  } else {
    sequence = bytes[6]! & 0x07; // start low and random so the counter has room
  }
  lastMs = ms;
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
