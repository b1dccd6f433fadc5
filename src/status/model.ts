/**
 * The citizen-facing status of an application and the German texts shown for it. A Fachverfahren
 * or a transport reports its own raw status; a status mapping turns that into one of these.
 * RECEIVED … COMPLETED are the states of the federal postbox; REJECTED is ours, for an
 * application the authority will not process (the postbox adapter decides how to send it).
 */
import { AmtError, type Problem } from '../errors.js';

export const CITIZEN_STATUSES = [
  'RECEIVED',
  'PROCESSING',
  'ACTION_REQUIRED',
  'COMPLETED',
  'REJECTED',
] as const;

export type CitizenStatus = (typeof CITIZEN_STATUSES)[number];

export function isCitizenStatus(value: unknown): value is CitizenStatus {
  return typeof value === 'string' && (CITIZEN_STATUSES as readonly string[]).includes(value);
}

/** Short German label of each status, the `{status}` placeholder (e.g. in a postbox subject). */
export const STATUS_LABELS: Readonly<Record<CitizenStatus, string>> = {
  RECEIVED: 'Eingegangen',
  PROCESSING: 'In Bearbeitung',
  ACTION_REQUIRED: 'Mitwirkung erforderlich',
  COMPLETED: 'Abgeschlossen',
  REJECTED: 'Abgelehnt',
};

/**
 * Built-in German texts. A part in square brackets is left out when a placeholder in it has no
 * value, so the texts read well without a service name or a case number.
 */
export const DEFAULT_TEXTS: Readonly<Record<CitizenStatus, string>> = {
  RECEIVED:
    'Ihr Antrag[ „{service}“][ (Vorgangsnummer {reference})] ist bei der zuständigen Stelle eingegangen.',
  PROCESSING:
    'Ihr Antrag[ „{service}“][ (Vorgangsnummer {reference})] wird bearbeitet.[ Aktenzeichen der Behörde: {remoteReference}.]',
  ACTION_REQUIRED:
    'Zu Ihrem Antrag[ „{service}“][ (Vorgangsnummer {reference})] benötigt die Behörde noch etwas von Ihnen.[ {text}] Bitte beachten Sie die Nachricht der Behörde.',
  COMPLETED:
    'Die Bearbeitung Ihres Antrags[ „{service}“][ (Vorgangsnummer {reference})] ist abgeschlossen.[ {text}]',
  REJECTED:
    'Ihr Antrag[ „{service}“][ (Vorgangsnummer {reference})] konnte nicht angenommen werden.[ {text}]',
};

export const DEFAULT_SUBJECT = 'Ihr Antrag[ „{service}“]: {status}';

export const TEMPLATE_PLACEHOLDERS = [
  'service',
  'reference',
  'remoteReference',
  'tenant',
  'text',
  'status',
] as const;

export type TemplatePlaceholder = (typeof TEMPLATE_PLACEHOLDERS)[number];

/** Values for a template; an absent or empty value drops the bracketed part around it. */
export type TemplateValues = Readonly<Partial<Record<TemplatePlaceholder, string | undefined>>>;

type Segment =
  | { readonly kind: 'literal'; readonly text: string }
  | { readonly kind: 'value'; readonly name: TemplatePlaceholder }
  | { readonly kind: 'optional'; readonly parts: readonly Segment[] };

/** A text template compiled once; `render` fills it. */
export interface TextTemplate {
  readonly source: string;
  render(values: TemplateValues): string;
}

/** Longest text a template produces; a citizen text is a notice, not a document. */
const MAX_TEXT_LENGTH = 4000;

/**
 * Compiles `Ihr Antrag {reference}[ (Aktenzeichen {remoteReference})]`. `where` names the place
 * for error messages. Unknown placeholders, unbalanced or nested brackets are errors; `{{`, `}}`,
 * `[[` and `]]` write the character itself.
 */
export function compileTemplate(source: string, where: string): TextTemplate {
  const problems: Problem[] = [];
  const top: Segment[] = [];
  let optional: Segment[] | undefined;
  let literal = '';
  const flush = (): void => {
    if (literal !== '') (optional ?? top).push({ kind: 'literal', text: literal });
    literal = '';
  };
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    const next = source[i + 1];
    if ((c === '{' || c === '}' || c === '[' || c === ']') && next === c) {
      literal += c;
      i++;
    } else if (c === '{') {
      const end = source.indexOf('}', i);
      const name = end < 0 ? '' : source.slice(i + 1, end);
      if (!(TEMPLATE_PLACEHOLDERS as readonly string[]).includes(name)) {
        problems.push({
          path: where,
          message: `unknown placeholder {${name}}; known: ${TEMPLATE_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`,
        });
        if (end < 0) break;
      }
      flush();
      (optional ?? top).push({ kind: 'value', name: name as TemplatePlaceholder });
      i = end;
    } else if (c === '[') {
      if (optional) problems.push({ path: where, message: 'optional parts [ … ] cannot be nested' });
      flush();
      optional = [];
    } else if (c === ']') {
      if (!optional) {
        problems.push({ path: where, message: 'a ] has no opening [' });
        continue;
      }
      flush();
      top.push({ kind: 'optional', parts: optional });
      optional = undefined;
    } else if (c === '}') {
      problems.push({ path: where, message: 'a } has no opening {' });
    } else {
      literal += c;
    }
  }
  if (optional) problems.push({ path: where, message: 'a [ is not closed' });
  flush();
  if (problems.length > 0) {
    throw new AmtError('AMT_MAPPING_COMPILE_FAILED', `${where}: the text template is not valid`, {
      problems,
    });
  }
  const segments = top;
  return {
    source,
    render(values) {
      const text = renderSegments(segments, values) ?? '';
      const tidy = text.replace(/[ \t]{2,}/g, ' ').trim();
      return tidy.length > MAX_TEXT_LENGTH ? `${tidy.slice(0, MAX_TEXT_LENGTH - 1)}…` : tidy;
    },
  };
}

/** Undefined when a value inside is missing (the caller drops an optional part then). */
function renderSegments(
  segments: readonly Segment[],
  values: TemplateValues,
  strict = false,
): string | undefined {
  let out = '';
  for (const segment of segments) {
    if (segment.kind === 'literal') out += segment.text;
    else if (segment.kind === 'value') {
      const value = clean(values[segment.name]);
      if (value === '' && strict) return undefined;
      out += value;
    } else {
      out += renderSegments(segment.parts, values, true) ?? '';
    }
  }
  return out;
}

/** Values come from peers: no control characters, no line breaks, bounded. */
function clean(value: string | undefined): string {
  if (value === undefined) return '';
  return value
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .trim()
    .slice(0, 1000);
}
