/**
 * The checks every XML document passes before any parser sees it: size, UTF-8, declared
 * encoding and the absence of a DOCTYPE. A DOCTYPE is refused outright — no DTD means no entity
 * expansion (billion laughs) and no external entities (XXE), whichever parser comes next.
 */
import { AmtError } from '../errors.js';
import { decodeStrictUtf8 } from '../utf8.js';

export interface XmlLimits {
  /** Largest document accepted, in bytes of UTF-8. */
  readonly maxBytes: number;
  /** Deepest element nesting accepted (the root element is depth 1). */
  readonly maxDepth: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = Object.freeze({ maxBytes: 32 * 1024 * 1024, maxDepth: 128 });

const DOCTYPE_RE = /^<!DOCTYPE|^<!ENTITY/i;
const DECLARED_ENCODING_RE = /^<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/;
const UTF8_NAMES = new Set(['utf-8', 'utf8']);

/**
 * Checks the document and returns it as a string (BOM removed). Throws AmtError
 * `AMT_XML_TOO_LARGE`, `AMT_XML_ENCODING_INVALID` or `AMT_XML_DOCTYPE_FORBIDDEN`.
 */
export function decodeXml(
  input: string | Uint8Array,
  limits: XmlLimits = DEFAULT_XML_LIMITS,
  /** The UTF-8 size of a string input when the caller already knows it (saves a pass). */
  knownSize?: number,
): string {
  const size = typeof input === 'string' ? (knownSize ?? Buffer.byteLength(input, 'utf8')) : input.byteLength;
  if (size > limits.maxBytes) {
    throw new AmtError(
      'AMT_XML_TOO_LARGE',
      `The XML document has ${size} bytes; the limit is ${limits.maxBytes}`,
      {
        problems: [{ path: '/', message: `${size} bytes > ${limits.maxBytes}` }],
      },
    );
  }
  const text = typeof input === 'string' ? stripBom(input) : decodeUtf8(input);
  const declared = DECLARED_ENCODING_RE.exec(text)?.[1];
  if (declared !== undefined && !UTF8_NAMES.has(declared.toLowerCase())) {
    throw new AmtError(
      'AMT_XML_ENCODING_INVALID',
      `The XML declaration names encoding ${declared}; only UTF-8 is accepted`,
      {
        problems: [{ path: 'line 1', message: `encoding="${declared}" is not UTF-8` }],
      },
    );
  }
  const doctype = findDeclaration(text);
  if (doctype !== undefined) {
    const line = lineAt(text, doctype.index);
    throw new AmtError(
      'AMT_XML_DOCTYPE_FORBIDDEN',
      `The XML document declares ${doctype.keyword} at line ${line}`,
      {
        problems: [{ path: `line ${line}`, message: 'DOCTYPE and ENTITY declarations are not accepted' }],
      },
    );
  }
  return text;
}

/**
 * The first DOCTYPE or ENTITY declaration. The prolog — the only place a DTD can take effect —
 * is scanned exactly (a `<!--` inside a processing instruction does not hide what follows);
 * elsewhere any declaration outside a comment or CDATA section is refused as well.
 */
function findDeclaration(text: string): { index: number; keyword: string } | undefined {
  let i = 0;
  for (;;) {
    while (i < text.length && isXmlSpace(text.charCodeAt(i))) i++;
    if (text.startsWith('<?', i)) {
      const end = text.indexOf('?>', i + 2);
      if (end < 0) break;
      i = end + 2;
    } else if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end < 0) break;
      i = end + 3;
    } else if (DOCTYPE_RE.test(text.slice(i, i + 9))) {
      return {
        index: i,
        keyword: text
          .slice(i, i + 9)
          .toUpperCase()
          .startsWith('<!DOCTYPE')
          ? '<!DOCTYPE'
          : '<!ENTITY',
      };
    } else {
      break;
    }
  }
  // `<!` is rare in messages (comments, CDATA): one indexOf pass finds every candidate.
  for (let at = text.indexOf('<!'); at !== -1; at = text.indexOf('<!', at + 2)) {
    const keyword = text.slice(at, at + 9).toUpperCase();
    const hit =
      keyword === '<!DOCTYPE' ? '<!DOCTYPE' : keyword.startsWith('<!ENTITY') ? '<!ENTITY' : undefined;
    if (hit === undefined) continue;
    if (!isQuoted(text, at, '<!--', '-->') && !isQuoted(text, at, '<![CDATA[', ']]>'))
      return { index: at, keyword: hit };
  }
  return undefined;
}

function isXmlSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

function isQuoted(text: string, index: number, open: string, close: string): boolean {
  const start = text.lastIndexOf(open, index);
  if (start < 0) return false;
  const end = text.indexOf(close, start + open.length);
  return end < 0 || end > index;
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function decodeUtf8(bytes: Uint8Array): string {
  if (
    bytes.length >= 2 &&
    ((bytes[0] === 0xfe && bytes[1] === 0xff) || (bytes[0] === 0xff && bytes[1] === 0xfe))
  ) {
    throw new AmtError('AMT_XML_ENCODING_INVALID', 'The XML document is UTF-16; only UTF-8 is accepted', {
      problems: [{ path: 'line 1', message: 'UTF-16 byte order mark' }],
    });
  }
  const text = decodeStrictUtf8(bytes);
  if (text !== undefined) return text;
  const offset = firstInvalidUtf8(bytes);
  const line = countLines(bytes, offset);
  throw new AmtError('AMT_XML_ENCODING_INVALID', `Invalid UTF-8 at byte ${offset} (line ${line})`, {
    problems: [{ path: `line ${line}`, message: `invalid UTF-8 byte sequence at byte offset ${offset}` }],
  });
}

/** Byte offset of the first ill-formed UTF-8 sequence (only called once decoding failed). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    let need: number;
    let min: number;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return i;
    }
    if (i + need >= bytes.length) return i;
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k]!;
      if ((c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return bytes.length;
}

function countLines(bytes: Uint8Array, end: number): number {
  let line = 1;
  for (let i = 0; i < end; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

export function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}
