import { expect } from 'chai';
import { newId } from '../src/ids.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('message ids (UUID version 7)', () => {
  it('are RFC 9562 version 7 UUIDs carrying the Unix milliseconds in their first 48 bits', () => {
    // Later than any id made before in this process: ids never go back in time.
    const now = Date.parse('2030-05-02T05:00:00.123Z');
    const id = newId(now);
    expect(id).to.match(V7);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).to.equal(now);
  });

  it('sort in the order they were made, within one millisecond and when the clock steps back', () => {
    const now = Date.parse('2031-01-01T00:00:00Z');
    const ids = [
      ...Array.from({ length: 5000 }, () => newId(now)),
      newId(now - 60_000), // the clock was set back
      ...Array.from({ length: 10 }, (_, i) => newId(now + 1 + i)),
    ];
    expect(new Set(ids).size).to.equal(ids.length);
    for (const id of ids) expect(id).to.match(V7);
    expect([...ids].sort()).to.deep.equal(ids);
  });

  it('differ in their random part between calls', () => {
    const tails = new Set(Array.from({ length: 1000 }, () => newId().slice(19)));
    expect(tails.size).to.equal(1000);
  });
});
