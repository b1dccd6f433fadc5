/**
 * JSON text as the gateway takes it from outside (a request body, a multipart part, an EfA
 * service's Fachdaten): nesting bounded before JSON.parse sees it, and nothing accepted that the
 * gateway could only alter or pass on broken — text no XML message can carry, integers that
 * parsing rounds. Problems are named by JSON pointer.
 */
import { AmtError, type Problem } from './errors.js';
import { LONE_SURROGATE } from './utf8.js';

export const MAX_JSON_DEPTH = 64;

/** Parses JSON text after bounding its nesting; the parser's message is not echoed, it quotes the input. */
export function parseJsonText(text: string, what = 'the request body'): unknown {
  if (nestingExceeds(text, MAX_JSON_DEPTH)) {
    throw new AmtError('AMT_BODY_MALFORMED', `${what} nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new AmtError('AMT_BODY_MALFORMED', `${what} is not valid JSON`);
  }
  // A parsed integer beyond the safe range may have been rounded: the text tells (a walk over the
  // parsed value costs a fraction of a microsecond; the text is read only when it finds one).
  if (hasUnsafeInteger(value)) {
    const problems = inexactIntegers(text, value);
    if (problems.length > 0) {
      throw new AmtError('AMT_VALIDATION_FAILED', `${what} holds integers that would lose digits`, {
        problems,
      });
    }
  }
  // JSON text holds control characters and surrogates only as \u escapes (raw ones are not JSON,
  // and the text is valid UTF-8), so a body without an escape or a noncharacter is not walked.
  if (text.includes('\\u') || text.includes('\uFFFE') || text.includes('\uFFFF')) {
    const problems = uncarriableText(value);
    if (problems.length > 0) {
      throw new AmtError('AMT_VALIDATION_FAILED', `${what} carries characters that cannot be passed on`, {
        problems,
      });
    }
  }
  return value;
}

function hasUnsafeInteger(value: unknown): boolean {
  if (typeof value === 'number') return Number.isInteger(value) && !Number.isSafeInteger(value);
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return value.some(hasUnsafeInteger);
  for (const key in value) if (hasUnsafeInteger((value as Record<string, unknown>)[key])) return true;
  return false;
}

/**
 * Where integers stand that a JavaScript number cannot be relied on to hold exactly (beyond
 * ±(2^53 − 1), like a 20-digit Kassenzeichen sent as a number): JSON.parse rounds them, and the
 * gateway would pass on a number that is not the one the portal sent. Found in the text (number
 * tokens outside strings, without fraction or exponent), then named by their paths in the
 * parsed value.
 */
export function inexactIntegers(text: string, value: unknown): Problem[] {
  const rounded = new Set<number>();
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      continue;
    }
    if (c !== 0x2d && (c < 0x30 || c > 0x39)) continue;
    let end = i + 1;
    while (end < text.length && /[0-9.eE+-]/.test(text[end]!)) end++;
    const token = text.slice(i, end);
    i = end - 1;
    if (/^-?[0-9]{16,}$/.test(token) && !Number.isSafeInteger(Number(token))) rounded.add(Number(token));
  }
  if (rounded.size === 0) return [];
  const problems: Problem[] = [];
  walk(value, (v, at, memberName) => {
    if (!memberName && typeof v === 'number' && rounded.has(v)) {
      problems.push({
        path: at(),
        message:
          'is an integer beyond ±(2^53 − 1), which a JSON number cannot be relied on to carry exactly; send it as a string',
      });
    }
  });
  return problems;
}

/** C0 control characters other than tab, line feed and carriage return, and U+FFFE/U+FFFF. */
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

/**
 * Where strings (values and member names) hold characters no XML 1.0 document, and so no XÖV
 * message, can carry — C0 control characters other than tab, line feed and carriage return,
 * U+FFFE and U+FFFF — or a lone surrogate, which is not a character at all and has no UTF-8
 * form. Refused at intake: accepted, such an application could only end as a dead letter.
 */
export function uncarriableText(value: unknown): Problem[] {
  const problems: Problem[] = [];
  walk(value, (v, at, memberName) => {
    if (typeof v !== 'string') return;
    const problem = textProblem(v);
    if (problem) problems.push({ path: at(), message: memberName ? `member name ${problem}` : problem });
  });
  return problems;
}

/**
 * Calls `visit` for every value and member name of parsed JSON, depth first. `at()` spells the
 * JSON pointer of the current one (`/` for the whole) — only when asked: most need none.
 */
function walk(value: unknown, visit: (v: unknown, at: () => string, memberName: boolean) => void): void {
  const segments: string[] = [];
  const at = (): string => jsonPointer(segments) || '/';
  const step = (v: unknown): void => {
    visit(v, at, false);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        segments.push(String(i));
        step(v[i]);
        segments.pop();
      }
    } else if (typeof v === 'object' && v !== null) {
      for (const key of Object.keys(v)) {
        segments.push(key);
        visit(key, at, true);
        step((v as Record<string, unknown>)[key]);
        segments.pop();
      }
    }
  };
  step(value);
}

/** A JSON pointer (RFC 6901) of member names and array indexes; `''` for the whole document. */
export function jsonPointer(segments: readonly (string | number)[]): string {
  return segments.map((segment) => `/${String(segment).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/** Anything suspect: the characters refused, and surrogates, paired or not. */
const SUSPECT = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/;

function textProblem(text: string): string | undefined {
  if (!SUSPECT.test(text)) return undefined;
  const lone = LONE_SURROGATE.exec(text);
  if (lone) return `holds a lone surrogate ${codePoint(lone[0])}, which is not a character`;
  const bad = NOT_XML_CHAR.exec(text);
  if (bad) return `holds ${codePoint(bad[0])}, a character XML and most Fachverfahren cannot carry`;
  return undefined;
}

function codePoint(char: string): string {
  return `U+${char.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Whether brackets outside string literals nest deeper than `maxDepth` (one linear pass). Text
 * with no more opening brackets than `maxDepth` cannot, which counting with indexOf tells
 * without walking every character of a typical application.
 */
export function nestingExceeds(text: string, maxDepth: number): boolean {
  if (openingBrackets(text, maxDepth + 1) <= maxDepth) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/** Opening brackets (`{` and `[`, in strings too) in `text`, counted up to `stopAt`. */
function openingBrackets(text: string, stopAt: number): number {
  let count = 0;
  for (const bracket of ['{', '[']) {
    for (let i = text.indexOf(bracket); i !== -1 && count < stopAt; i = text.indexOf(bracket, i + 1)) count++;
  }
  return count;
}
