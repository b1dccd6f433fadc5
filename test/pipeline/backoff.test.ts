import { expect } from 'chai';
import { backoffDelay } from '../../src/pipeline/backoff.js';

const policy = { maxAttempts: 10, initialDelayMs: 1000, maxDelayMs: 60_000, multiplier: 2, jitter: 0.2 };

describe('backoff', () => {
  it('grows exponentially and stops at the cap', () => {
    const noJitter = () => 0;
    expect([1, 2, 3, 4].map((a) => backoffDelay(policy, a, undefined, noJitter))).to.deep.equal([
      1000, 2000, 4000, 8000,
    ]);
    expect(backoffDelay(policy, 20, undefined, noJitter)).to.equal(60_000);
  });

  it('shortens by at most the jitter fraction', () => {
    expect(backoffDelay(policy, 3, undefined, () => 1)).to.equal(3200);
    expect(backoffDelay(policy, 3, undefined, () => 0.5)).to.equal(3600);
  });

  it('honours a longer Retry-After, even above the cap, within a day', () => {
    expect(backoffDelay(policy, 1, 30, () => 0)).to.equal(30_000);
    expect(backoffDelay(policy, 1, 7200, () => 0)).to.equal(7_200_000);
    expect(backoffDelay(policy, 1, 10 * 86_400, () => 0)).to.equal(86_400_000);
    expect(backoffDelay(policy, 5, 1, () => 0)).to.equal(16_000);
  });
});
