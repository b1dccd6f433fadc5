/** The nesting bound applied before JSON.parse sees a request body. */
import { expect } from 'chai';
import { MAX_JSON_DEPTH, nestingExceeds, parseJsonText } from '../../src/http/body.js';
import { isAmtError } from '../../src/errors.js';

const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

describe('http: JSON nesting bound', () => {
  it(`takes ${MAX_JSON_DEPTH} levels and refuses one more, objects and arrays alike`, () => {
    expect(nestingExceeds(nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH)).to.equal(false);
    expect(nestingExceeds(nested(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)).to.equal(true);
    const objects = '{"a":'.repeat(MAX_JSON_DEPTH + 1) + '1' + '}'.repeat(MAX_JSON_DEPTH + 1);
    expect(nestingExceeds(objects, MAX_JSON_DEPTH)).to.equal(true);
    const err = (() => {
      try {
        parseJsonText(objects);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isAmtError(err) && err.code).to.equal('AMT_BODY_MALFORMED');
  });

  it('counts depth, not brackets: many shallow ones pass, brackets in strings do not count', () => {
    const wide = JSON.stringify({ list: Array.from({ length: 500 }, (_, i) => ({ i, tags: [i] })) });
    expect(nestingExceeds(wide, MAX_JSON_DEPTH)).to.equal(false);
    const quoted = JSON.stringify({ note: '['.repeat(1000) + '{'.repeat(1000) });
    expect(nestingExceeds(quoted, MAX_JSON_DEPTH)).to.equal(false);
    const escaped = JSON.stringify({ note: '\\"' + '['.repeat(100) });
    expect(nestingExceeds(escaped, MAX_JSON_DEPTH)).to.equal(false);
    expect(nestingExceeds('{"a": 1}', MAX_JSON_DEPTH)).to.equal(false);
  });
});
