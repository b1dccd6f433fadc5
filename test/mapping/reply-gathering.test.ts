/** The mapping worker's answers: the first of a turn at once, quick ones gathered, slow ones at once. */
import { expect } from 'chai';
import { ReplyGatherer, type GatheringClock } from '../../src/mapping/reply-gathering.js';

/** A clock the test moves, with the end of a turn run by hand. */
function testClock(): GatheringClock & { at: number; endTurn(): void } {
  let pending: (() => void)[] = [];
  return {
    at: 0,
    now() {
      return this.at;
    },
    afterTurn(callback) {
      pending.push(callback);
    },
    endTurn() {
      const callbacks = pending;
      pending = [];
      for (const callback of callbacks) callback();
    },
  };
}

function gatherer(): {
  add(item: string, atMs: number): void;
  posted: string[][];
  clock: ReturnType<typeof testClock>;
} {
  const clock = testClock();
  const posted: string[][] = [];
  const g = new ReplyGatherer<string>((items) => posted.push(items), 2, clock);
  return {
    posted,
    clock,
    add(item, atMs) {
      clock.at = atMs;
      g.add(item);
    },
  };
}

describe('mapping worker: gathering answers', () => {
  it('posts the first answer of a turn at once and gathers quick ones until the end of the turn', () => {
    const g = gatherer();
    g.add('a', 0);
    expect(g.posted).to.deep.equal([['a']]);
    g.add('b', 0.3);
    g.add('c', 0.6);
    g.add('d', 0.9);
    expect(g.posted).to.deep.equal([['a']]);
    g.clock.endTurn();
    expect(g.posted).to.deep.equal([['a'], ['b', 'c', 'd']]);
  });

  it('posts gathered answers once the first of them has waited the hold time', () => {
    const g = gatherer();
    g.add('a', 0);
    g.add('b', 0.5);
    g.add('c', 1.5);
    g.add('d', 2.5); // b has waited 2 ms
    g.add('e', 3);
    expect(g.posted).to.deep.equal([['a'], ['b', 'c', 'd']]);
    g.clock.endTurn();
    expect(g.posted).to.deep.equal([['a'], ['b', 'c', 'd'], ['e']]);
  });

  it('posts each answer of slow mappings at once, with whatever waits', () => {
    const g = gatherer();
    g.add('a', 0);
    g.add('b', 5);
    g.add('c', 10);
    expect(g.posted).to.deep.equal([['a'], ['b'], ['c']]);
    g.add('d', 10.5); // quick again: gathered
    g.add('e', 14); // slow: posted with d
    expect(g.posted).to.deep.equal([['a'], ['b'], ['c'], ['d', 'e']]);
    g.clock.endTurn();
    expect(g.posted).to.have.length(4);
  });

  it('posts the first answer of the next turn at once again, and nothing when nothing waits', () => {
    const g = gatherer();
    g.add('a', 0);
    g.clock.endTurn();
    expect(g.posted).to.deep.equal([['a']]);
    g.add('b', 0.1);
    expect(g.posted).to.deep.equal([['a'], ['b']]);
  });

  it('hands the transfer list over with the answers it belongs to', () => {
    const clock = testClock();
    const posted: { items: string[]; transfers: ArrayBuffer[] }[] = [];
    const g = new ReplyGatherer<string>((items, transfers) => posted.push({ items, transfers }), 2, clock);
    const one = new ArrayBuffer(1);
    const two = new ArrayBuffer(2);
    g.add('a', one);
    clock.at = 0.1;
    g.add('b');
    clock.at = 0.2;
    g.add('c', two);
    clock.endTurn();
    expect(posted).to.deep.equal([
      { items: ['a'], transfers: [one] },
      { items: ['b', 'c'], transfers: [two] },
    ]);
    expect(posted[1]!.transfers[0]).to.equal(two);
  });
});
