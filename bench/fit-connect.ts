/**
 * FIT-Connect content encryption as the adapter does it (JWE compact, RSA-OAEP-256 + A256GCM,
 * 4096-bit key, SHA-512 for the metadata hash): throughput and memory for a 100 KB and a 10 MB
 * payload. Run: `npm run bench:fit-connect`.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import { decryptJwe, encryptJwe, importRsaOaepKey, sha512Hex } from '../adapters/fit-connect/jwe.js';

interface Case {
  readonly label: string;
  readonly bytes: number;
  readonly iterations: number;
}

const CASES: readonly Case[] = [
  { label: '100 KB', bytes: 100 * 1024, iterations: 300 },
  { label: '10 MB', bytes: 10 * 1024 * 1024, iterations: 12 },
];

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 0 ? (sorted[mid - 1]! + sorted[mid]!) / 2 : sorted[mid]!;
}

/** Samples RSS every few milliseconds and after each operation; reports the peak above `base`. */
class RssPeak {
  private peak: number;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly base: number) {
    this.peak = base;
    this.timer = setInterval(() => this.sample(), 5);
  }
  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
  }
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak - this.base;
  }
}

const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

async function main(): Promise<void> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 4096 });
  const kid = 'bench-key';
  const publicJwk = {
    ...(publicKey.export({ format: 'jwk' }) as JWK),
    kid,
    alg: 'RSA-OAEP-256',
    key_ops: ['wrapKey'],
  };
  const privateJwk = {
    ...(privateKey.export({ format: 'jwk' }) as JWK),
    kid,
    alg: 'RSA-OAEP-256',
    key_ops: ['unwrapKey'],
  };
  const encryptKey = await importRsaOaepKey(publicJwk);
  const decryptKey = await importRsaOaepKey(privateJwk);

  console.log(`FIT-Connect JWE (RSA-OAEP-256 4096 bit + A256GCM), Node ${process.version}`);
  console.log('payload  | op                | median ms | ops/s   | MB/s   | peak RSS growth');
  for (const c of CASES) {
    const payload = randomBytes(c.bytes);
    // Warm-up, so JIT and allocator settle before measuring.
    const warm = await encryptJwe(payload, encryptKey, kid, 'application/octet-stream');
    await decryptJwe(warm, decryptKey);
    global.gc?.();

    const rows: [string, number[], number][] = [];
    const run = async (op: string, fn: () => Promise<unknown>): Promise<void> => {
      global.gc?.();
      const peak = new RssPeak(process.memoryUsage.rss());
      const times: number[] = [];
      for (let i = 0; i < c.iterations; i++) {
        const start = process.hrtime.bigint();
        await fn();
        times.push(Number(process.hrtime.bigint() - start) / 1e6);
        peak.sample();
      }
      rows.push([op, times, peak.stop()]);
    };

    await run('sha512 + encrypt', async () => {
      sha512Hex(payload);
      await encryptJwe(payload, encryptKey, kid, 'application/octet-stream');
    });
    const jwe = await encryptJwe(payload, encryptKey, kid, 'application/octet-stream');
    await run('decrypt + sha512', async () => {
      const { plaintext } = await decryptJwe(jwe, decryptKey);
      sha512Hex(plaintext);
    });

    for (const [op, times, growth] of rows) {
      const ms = median(times);
      console.log(
        `${c.label.padEnd(8)} | ${op.padEnd(17)} | ${ms.toFixed(2).padStart(9)} | ${(1000 / ms).toFixed(1).padStart(7)} | ` +
          `${(c.bytes / 1024 / 1024 / (ms / 1000)).toFixed(1).padStart(6)} | ${mb(growth)} MB`,
      );
    }
    console.log(
      `${' '.repeat(8)} | JWE size ${mb(jwe.length)} MB for ${mb(c.bytes)} MB plaintext (base64url)`,
    );
  }
}

await main();
