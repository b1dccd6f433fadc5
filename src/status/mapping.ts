/**
 * Status mapping files: a route names one (`statusMapping:`) to turn the raw statuses its
 * Fachverfahren reports into citizen statuses with German texts. Compiled once at startup; a
 * mistake fails the start with every problem and its line.
 *
 * ```yaml
 * service: Gewerbeanmeldung      # the {service} name in texts (optional)
 * defaults: true                 # also map the FIT-Connect delivery states (default true)
 * texts:                         # replaces built-in texts per citizen status (optional)
 *   COMPLETED: 'Ihre Gewerbeanmeldung ist erledigt.[ {text}]'
 * statuses:                      # raw status (as written, `0100` stays `0100`) → citizen status
 *   EINGANG: RECEIVED
 *   '0100': PROCESSING
 *   NACHFORDERUNG:
 *     status: ACTION_REQUIRED
 *     text: 'Für Ihre Gewerbeanmeldung fehlen Unterlagen.[ {text}]'
 * ```
 */
import { readFileSync } from 'node:fs';
import { AmtError, type Problem } from '../errors.js';
import { parseYamlSource } from '../mapping/yaml-source.js';
import {
  CITIZEN_STATUSES,
  DEFAULT_TEXTS,
  STATUS_LABELS,
  compileTemplate,
  isCitizenStatus,
  type CitizenStatus,
  type TemplateValues,
  type TextTemplate,
} from './model.js';

/** What a status maps to: the citizen status and its rendered German text. */
export interface CitizenStatusText {
  readonly status: CitizenStatus;
  readonly text: string;
}

/** Values a text may use besides `{service}` (from the mapping) and `{status}` (the label). */
export type StatusTextValues = Omit<TemplateValues, 'service' | 'status'>;

export interface StatusMapping {
  /** The file it was compiled from; undefined for the built-in mapping. */
  readonly file: string | undefined;
  /** The `{service}` name in texts, when the file gives one. */
  readonly serviceName: string | undefined;
  /** The citizen status and text for a raw status; undefined when the mapping does not know it. */
  map(remoteStatus: string, values: StatusTextValues): CitizenStatusText | undefined;
  /** Renders the mapping's text for a citizen status (no raw status involved). */
  textFor(status: CitizenStatus, values: StatusTextValues): string;
}

/**
 * FIT-Connect statuses are delivery states: `forwarded` and `accepted` only say the authority
 * has the application; `rejected` says it will not process it.
 */
export const FIT_CONNECT_DEFAULTS: Readonly<Record<string, CitizenStatus>> = {
  forwarded: 'RECEIVED',
  accepted: 'RECEIVED',
  rejected: 'REJECTED',
};

const TOP_LEVEL_KEYS = ['service', 'defaults', 'texts', 'statuses'];
const MAX_STATUS_LENGTH = 200;

interface Entry {
  readonly status: CitizenStatus;
  readonly text: TextTemplate | undefined;
}

/** The mapping of a route without `statusMapping`: the FIT-Connect delivery states only. */
export const DEFAULT_STATUS_MAPPING: StatusMapping = buildMapping(
  undefined,
  undefined,
  defaultEntries(),
  defaultTexts(),
);

/** Reads and compiles a status mapping file. */
export function loadStatusMapping(file: string): StatusMapping {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new AmtError(
      'AMT_MAPPING_COMPILE_FAILED',
      `cannot read the status mapping ${file}: ${(cause as Error).message}`,
      {
        cause,
        problems: [{ path: file, message: 'cannot be read' }],
      },
    );
  }
  return compileStatusMapping(text, file);
}

/** Compiles the text of a status mapping file; `file` is used in error messages. */
export function compileStatusMapping(text: string, file: string): StatusMapping {
  // failsafe: every scalar stays the string it was written as (`0100`, `true`).
  const source = parseYamlSource(text, file, 'failsafe');
  const problems: Problem[] = [];
  const root = source.value;
  if (!isObject(root)) {
    throw new AmtError(
      'AMT_MAPPING_COMPILE_FAILED',
      `${file}: a status mapping is a YAML mapping with \`statuses:\``,
      {
        problems: [{ path: `${file}:1`, message: 'expected a mapping with the key statuses' }],
      },
    );
  }
  const at = (node: unknown, key?: string): string => `${file}:${source.lineOf(node, key)}`;
  for (const key of Object.keys(root)) {
    if (!TOP_LEVEL_KEYS.includes(key)) {
      problems.push({
        path: at(root, key),
        message: `unknown key ${key}; known: ${TOP_LEVEL_KEYS.join(', ')}`,
      });
    }
  }

  const serviceName = optionalString(root, 'service', at, problems);
  const defaultsText = optionalString(root, 'defaults', at, problems) ?? 'true';
  if (defaultsText !== 'true' && defaultsText !== 'false') {
    problems.push({ path: at(root, 'defaults'), message: 'must be true or false' });
  }

  const texts = defaultTexts();
  if (root.texts !== undefined) {
    if (!isObject(root.texts))
      problems.push({ path: at(root, 'texts'), message: 'must map citizen statuses to texts' });
    else {
      for (const [status, template] of Object.entries(root.texts)) {
        if (!isCitizenStatus(status)) {
          problems.push({
            path: at(root.texts, status),
            message: `${status} is not a citizen status (${CITIZEN_STATUSES.join(', ')})`,
          });
        } else if (typeof template !== 'string') {
          problems.push({ path: at(root.texts, status), message: 'must be a text' });
        } else {
          texts[status] = compileCollecting(template, at(root.texts, status), problems) ?? texts[status];
        }
      }
    }
  }

  const entries = defaultsText === 'false' ? new Map<string, Entry>() : defaultEntries();
  if (!isObject(root.statuses)) {
    problems.push({
      path: at(root, 'statuses'),
      message: 'statuses is required: a mapping from raw status to citizen status',
    });
  } else {
    for (const [raw, target] of Object.entries(root.statuses)) {
      const where = at(root.statuses, raw);
      const remote = raw.trim();
      if (remote === '' || remote.length > MAX_STATUS_LENGTH) {
        problems.push({ path: where, message: `a raw status has 1 to ${MAX_STATUS_LENGTH} characters` });
        continue;
      }
      const entry = compileEntry(target, where, problems);
      if (entry) entries.set(remote, entry);
    }
  }

  if (problems.length > 0) {
    throw new AmtError('AMT_MAPPING_COMPILE_FAILED', `${file}: the status mapping is not valid`, {
      problems,
    });
  }
  return buildMapping(file, serviceName, entries, texts);
}

function compileEntry(target: unknown, where: string, problems: Problem[]): Entry | undefined {
  if (typeof target === 'string') {
    if (isCitizenStatus(target)) return { status: target, text: undefined };
    problems.push({
      path: where,
      message: `${target} is not a citizen status (${CITIZEN_STATUSES.join(', ')})`,
    });
    return undefined;
  }
  if (!isObject(target)) {
    problems.push({ path: where, message: 'must be a citizen status or {status, text}' });
    return undefined;
  }
  const unknown = Object.keys(target).filter((k) => k !== 'status' && k !== 'text');
  if (unknown.length > 0)
    problems.push({ path: where, message: `unknown key ${unknown.join(', ')}; known: status, text` });
  if (!isCitizenStatus(target.status)) {
    problems.push({ path: where, message: `status must be one of ${CITIZEN_STATUSES.join(', ')}` });
    return undefined;
  }
  if (target.text !== undefined && typeof target.text !== 'string') {
    problems.push({ path: where, message: 'text must be a text' });
    return undefined;
  }
  const text = target.text === undefined ? undefined : compileCollecting(target.text, where, problems);
  return { status: target.status, text };
}

function buildMapping(
  file: string | undefined,
  serviceName: string | undefined,
  entries: ReadonlyMap<string, Entry>,
  texts: Readonly<Record<CitizenStatus, TextTemplate>>,
): StatusMapping {
  const render = (template: TextTemplate, status: CitizenStatus, values: StatusTextValues): string =>
    template.render({ ...values, service: serviceName, status: STATUS_LABELS[status] });
  return {
    file,
    serviceName,
    map(remoteStatus, values) {
      const entry = entries.get(remoteStatus.trim());
      if (!entry) return undefined;
      return { status: entry.status, text: render(entry.text ?? texts[entry.status], entry.status, values) };
    },
    textFor(status, values) {
      return render(texts[status], status, values);
    },
  };
}

function defaultEntries(): Map<string, Entry> {
  return new Map(
    Object.entries(FIT_CONNECT_DEFAULTS).map(([remote, status]) => [remote, { status, text: undefined }]),
  );
}

function defaultTexts(): Record<CitizenStatus, TextTemplate> {
  return Object.fromEntries(
    CITIZEN_STATUSES.map((status) => [
      status,
      compileTemplate(DEFAULT_TEXTS[status], `built-in text ${status}`),
    ]),
  ) as Record<CitizenStatus, TextTemplate>;
}

function compileCollecting(template: string, where: string, problems: Problem[]): TextTemplate | undefined {
  try {
    return compileTemplate(template, where);
  } catch (err) {
    if (err instanceof AmtError) problems.push(...err.problems);
    else throw err;
    return undefined;
  }
}

function optionalString(
  node: Record<string, unknown>,
  key: string,
  at: (node: unknown, key?: string) => string,
  problems: Problem[],
): string | undefined {
  const value = node[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    problems.push({ path: at(node, key), message: 'must be a text' });
    return undefined;
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
