/**
 * Response files a Fachverfahren drops into the inbox: which delivery they answer, its status
 * and an optional text for the citizen. JSON always; XML when the instance configures the paths
 * to read, resolved by namespace URI whatever prefixes the sender chose.
 */
import { AmtError } from '../../src/errors.js';
import { findChild, readXml, textOf, type XmlElement } from '../../src/xml/index.js';

export interface XmlResponseConfig {
  /** Prefix → namespace URI, for the prefixes the paths use. */
  readonly namespaces?: Readonly<Record<string, string>>;
  /** Path from the root element, e.g. `/r:Rueckmeldung/r:Vorgang/r:DeliveryId`. */
  readonly deliveryId: string;
  readonly status: string;
  readonly text?: string;
}

/** Which delivery a response file is about. */
export type ResponseLocator =
  { readonly messageId: string } | { readonly deliveryId: string } | { readonly remoteReference: string };

export interface ResponseFile {
  readonly locator: ResponseLocator;
  readonly status: string;
  readonly text: string | undefined;
}

/** Largest response file read; a status file is small, anything larger is not one. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;
const MAX_VALUE_LENGTH = 500;
const MAX_TEXT_LENGTH = 2000;

interface CompiledPath {
  readonly steps: readonly { readonly ns: string; readonly local: string }[];
  readonly source: string;
}

/** Reads JSON and, when configured, XML response files. Construct once per instance. */
export class ResponseFileReader {
  private readonly xml:
    { deliveryId: CompiledPath; status: CompiledPath; text: CompiledPath | undefined } | undefined;

  constructor(xml: XmlResponseConfig | undefined) {
    if (xml) {
      const namespaces = xml.namespaces ?? {};
      this.xml = {
        deliveryId: compilePath(xml.deliveryId, namespaces, '/inbox/xml/deliveryId'),
        status: compilePath(xml.status, namespaces, '/inbox/xml/status'),
        text: xml.text === undefined ? undefined : compilePath(xml.text, namespaces, '/inbox/xml/text'),
      };
    }
  }

  /** Throws AmtError `AMT_VALIDATION_FAILED` (or `AMT_XML_*`) saying what is wrong with the file. */
  read(content: Buffer, name: string): ResponseFile {
    const text = content.toString('utf8').replace(/^\uFEFF/, '');
    const first = text.trimStart()[0];
    if (first === '{') return fromJson(text, name);
    if (first === '<') {
      if (!this.xml) throw invalid(name, 'is XML, but this instance has no inbox.xml paths configured');
      return this.fromXml(content, name, this.xml);
    }
    throw invalid(name, 'is neither a JSON object nor an XML document');
  }

  private fromXml(
    content: Buffer,
    name: string,
    paths: { deliveryId: CompiledPath; status: CompiledPath; text: CompiledPath | undefined },
  ): ResponseFile {
    const root = readXml(content, { source: name, limits: { maxBytes: MAX_RESPONSE_BYTES } });
    const value = (path: CompiledPath): string | undefined => {
      const element = resolve(root, path);
      return element === undefined ? undefined : textOf(element).trim();
    };
    const deliveryId = value(paths.deliveryId);
    const status = value(paths.status);
    if (!deliveryId) throw invalid(name, `has no value at ${paths.deliveryId.source}`);
    if (!status) throw invalid(name, `has no value at ${paths.status.source}`);
    return {
      locator: { deliveryId: bounded(deliveryId, name, 'deliveryId') },
      status: bounded(status, name, 'status'),
      text: optionalText(paths.text ? value(paths.text) : undefined),
    };
  }
}

function fromJson(text: string, name: string): ResponseFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalid(name, `is not valid JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalid(name, 'is not a JSON object');
  const record = parsed as Record<string, unknown>;
  const ids = (['messageId', 'deliveryId', 'remoteReference'] as const).filter(
    (key) => record[key] !== undefined,
  );
  if (ids.length !== 1) throw invalid(name, 'needs exactly one of deliveryId, remoteReference, messageId');
  const key = ids[0]!;
  const id = record[key];
  if (typeof id !== 'string' || id.trim() === '') throw invalid(name, `${key} must be a non-empty string`);
  if (typeof record.status !== 'string' || record.status.trim() === '')
    throw invalid(name, 'status must be a non-empty string');
  if (record.text !== undefined && typeof record.text !== 'string')
    throw invalid(name, 'text must be a string');
  const value = bounded(id.trim(), name, key);
  const locator: ResponseLocator =
    key === 'messageId'
      ? { messageId: value }
      : key === 'deliveryId'
        ? { deliveryId: value }
        : { remoteReference: value };
  return { locator, status: bounded(record.status.trim(), name, 'status'), text: optionalText(record.text) };
}

function compilePath(
  path: string,
  namespaces: Readonly<Record<string, string>>,
  where: string,
): CompiledPath {
  const steps = path.split('/').slice(1);
  if (
    !path.startsWith('/') ||
    steps.length === 0 ||
    steps.some((s) => !/^([A-Za-z_][\w.-]*:)?[A-Za-z_][\w.-]*$/.test(s))
  ) {
    throw configError(where, `${path} is not a path like /prefix:Root/prefix:Child`);
  }
  return {
    source: path,
    steps: steps.map((step) => {
      const colon = step.indexOf(':');
      if (colon < 0) return { ns: '', local: step };
      const prefix = step.slice(0, colon);
      const ns = namespaces[prefix];
      if (ns === undefined)
        throw configError(where, `the prefix ${prefix} is not declared in inbox.xml.namespaces`);
      return { ns, local: step.slice(colon + 1) };
    }),
  };
}

function resolve(root: XmlElement, path: CompiledPath): XmlElement | undefined {
  const [first, ...rest] = path.steps;
  if (!first || root.ns !== first.ns || root.local !== first.local) return undefined;
  let element: XmlElement | undefined = root;
  for (const step of rest) {
    element = element && findChild(element, step.ns, step.local);
  }
  return element;
}

function bounded(value: string, name: string, field: string): string {
  if (value.length > MAX_VALUE_LENGTH || /[\u0000-\u001f\u007f]/.test(value)) {
    throw invalid(name, `${field} has control characters or more than ${MAX_VALUE_LENGTH} characters`);
  }
  return value;
}

function optionalText(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  return text === '' ? undefined : text.slice(0, MAX_TEXT_LENGTH);
}

function invalid(name: string, message: string): AmtError {
  return new AmtError('AMT_VALIDATION_FAILED', `response file ${name} ${message}`, {
    problems: [{ path: name, message }],
  });
}

function configError(where: string, message: string): AmtError {
  return new AmtError('AMT_CONFIG_INVALID', `file-drop adapter: ${message}`, {
    problems: [{ path: where, message }],
  });
}
