/**
 * What JSON text from outside is checked for: the nesting bound before JSON.parse, then text XML
 * cannot carry and integers parsing rounds.
 */
import { expect } from 'chai';
import {
  inexactIntegers,
  MAX_JSON_DEPTH,
  nestingExceeds,
  parseJsonText,
  uncarriableText,
} from '../src/json-text.js';
import { isAmtError } from '../src/errors.js';

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

describe('http: characters that cannot be passed on', () => {
  const refused = (text: string): unknown => {
    try {
      parseJsonText(text);
    } catch (err) {
      return isAmtError(err) ? { code: err.code, problems: err.problems } : err;
    }
    return undefined;
  };

  it('names each string with a C0 control character, U+FFFE/U+FFFF or a lone surrogate by its path', () => {
    const text = JSON.stringify({
      a: 'ok',
      b: ['fine', 'nul\u0000here'],
      c: { 'x/y': 'unit\u001fseparator', 'tab\tand\nnewline\r': 'ok' },
      d: 'lone \ud800 high',
      e: 'lone \udc00 low',
      f: 'non\ufffecharacter',
      'key\u0007bell': 1,
    });
    expect(refused(text)).to.deep.equal({
      code: 'AMT_VALIDATION_FAILED',
      problems: [
        { path: '/b/1', message: 'holds U+0000, a character XML and most Fachverfahren cannot carry' },
        { path: '/c/x~1y', message: 'holds U+001F, a character XML and most Fachverfahren cannot carry' },
        { path: '/d', message: 'holds a lone surrogate U+D800, which is not a character' },
        { path: '/e', message: 'holds a lone surrogate U+DC00, which is not a character' },
        { path: '/f', message: 'holds U+FFFE, a character XML and most Fachverfahren cannot carry' },
        {
          path: '/key\u0007bell',
          message: 'member name holds U+0007, a character XML and most Fachverfahren cannot carry',
        },
      ],
    });
  });

  it('passes escapes of characters that can be carried: tab, newlines, umlauts, surrogate pairs', () => {
    const text = String.raw`{"a":"\\u0000 is text here","b":"\t\n\r","c":"M\u00fcnster","d":"\ud83d\ude97","e":"\u007f\u0085"}`;
    expect(refused(text)).to.equal(undefined);
    expect(parseJsonText(text)).to.deep.equal({
      a: String.raw`\u0000 is text here`,
      b: '\t\n\r',
      c: 'Münster',
      d: '🚗',
      e: '\u007f\u0085',
    });
  });

  it('finds nothing in a value without strings, and names the root of a bare string', () => {
    expect(uncarriableText({ n: 1, b: true, z: null, list: [1, 2] })).to.deep.equal([]);
    expect(uncarriableText('\u0001')).to.deep.equal([
      { path: '/', message: 'holds U+0001, a character XML and most Fachverfahren cannot carry' },
    ]);
  });
});

describe('http: integers a JSON number cannot carry exactly', () => {
  it('names each integer beyond ±(2^53 − 1), which parsing may round, and nothing else', () => {
    const text =
      '{"kassenzeichen": 12345678901234567891, "list": [1, -98765432109876543210, 9007199254740993],' +
      ' "exact": 9007199254740991, "float": 1.2345678901234567e25, "quoted": "12345678901234567891",' +
      ' "big": 100000000000000000000}';
    const value = JSON.parse(text) as unknown;
    const message =
      'is an integer beyond ±(2^53 − 1), which a JSON number cannot be relied on to carry exactly; send it as a string';
    expect(inexactIntegers(text, value)).to.deep.equal(
      ['/kassenzeichen', '/list/1', '/list/2', '/big'].map((path) => ({ path, message })),
    );
    let error: unknown;
    try {
      parseJsonText(text);
    } catch (err) {
      error = err;
    }
    expect(isAmtError(error) && error.code).to.equal('AMT_VALIDATION_FAILED');
    expect(isAmtError(error) && error.problems.map((p) => p.path)).to.deep.equal([
      '/kassenzeichen',
      '/list/1',
      '/list/2',
      '/big',
    ]);
  });

  it('lets exact integers, floats and digits in strings through', () => {
    const text =
      '{"a": 9007199254740991, "b": -9007199254740991, "c": 0.1234567890123456789, "d": "\\"12345678901234567891"}';
    expect(parseJsonText(text)).to.deep.equal(JSON.parse(text));
  });
});
