/**
 * Reading SOAP envelopes and faults from the raw answer, and classifying faults by the configured
 * patterns. The raw answer is read namespace-aware here rather than trusting the soap package's
 * prefix-stripping parse: the decision retry-or-reject must not depend on a receiver's prefixes.
 */
import { quotePeerText } from '../../src/adapter-contract.js';
import { child, parseXml, resolveQName, textOf, type XmlElement } from '../../src/xml/element-tree.js';

export const SOAP11_ENVELOPE = 'http://schemas.xmlsoap.org/soap/envelope/';
export const SOAP12_ENVELOPE = 'http://www.w3.org/2003/05/soap-envelope';

export interface SoapEnvelope {
  readonly version: '1.1' | '1.2';
  readonly header: XmlElement | undefined;
  readonly body: XmlElement;
}

export interface SoapFault {
  /** The fault code as written, e.g. `SOAP-ENV:Server` or `env:Receiver`. */
  readonly code: string;
  /** `soap:<local>` when the code is in a SOAP envelope namespace (or its prefix is undeclared). */
  readonly soapCode: string | undefined;
  /** SOAP 1.2 subcodes (or the soap package's `Subcode` in 1.1 envelopes), as written. */
  readonly subcodes: readonly string[];
  readonly reason: string;
  /** Local names of the elements inside `detail` / `Detail`, e.g. `PermissionDeniedException`. */
  readonly detailElements: readonly string[];
  /** The first detail element, for callers that understand it. */
  readonly detail: XmlElement | undefined;
}

export class NotAnEnvelopeError extends Error {
  override readonly name = 'NotAnEnvelopeError';
}

/** Parses a SOAP envelope; throws `XmlSyntaxError` or `NotAnEnvelopeError`. */
export function readEnvelope(xml: string): SoapEnvelope {
  const root = parseXml(xml);
  const version = root.uri === SOAP11_ENVELOPE ? '1.1' : root.uri === SOAP12_ENVELOPE ? '1.2' : undefined;
  if (root.local !== 'Envelope' || version === undefined) {
    throw new NotAnEnvelopeError(`the root element is {${root.uri}}${root.local}, not a SOAP Envelope`);
  }
  const body = child(root, root.uri, 'Body');
  if (!body) throw new NotAnEnvelopeError('the SOAP Envelope has no Body');
  return { version, header: child(root, root.uri, 'Header'), body };
}

const SOAP_CODE_ALIASES: Readonly<Record<string, string>> = {
  Server: 'Receiver',
  Receiver: 'Server',
  Client: 'Sender',
  Sender: 'Client',
};

function soapCodeOf(valueElement: XmlElement, code: string): string | undefined {
  const name = resolveQName(valueElement, code);
  const inEnvelopeNamespace = name.uri === SOAP11_ENVELOPE || name.uri === SOAP12_ENVELOPE;
  // Some servers (the soap package among them) write `SOAP-ENV:Server` without declaring the prefix.
  const undeclared = name.uri === undefined && name.prefix !== '';
  return inEnvelopeNamespace || undeclared ? `soap:${name.local}` : undefined;
}

/** The fault in a body, in either SOAP version's shape, whatever the envelope version says. */
export function findFault(body: XmlElement): SoapFault | undefined {
  const fault = body.children.find((c) => c.local === 'Fault');
  if (!fault) return undefined;
  const codeElement11 = child(fault, undefined, 'faultcode');
  const codeElement12 = child(fault, undefined, 'Code');
  let code = '';
  let soapCode: string | undefined;
  const subcodes: string[] = [];
  if (codeElement11) {
    code = textOf(codeElement11) ?? '';
    soapCode = soapCodeOf(codeElement11, code);
  } else if (codeElement12) {
    const value = child(codeElement12, undefined, 'Value');
    code = textOf(value) ?? '';
    if (value) soapCode = soapCodeOf(value, code);
    for (let sub = child(codeElement12, undefined, 'Subcode'); sub; sub = child(sub, undefined, 'Subcode')) {
      const subValue = textOf(child(sub, undefined, 'Value'));
      if (subValue) subcodes.push(subValue);
    }
  }
  const reasonElement = child(fault, undefined, 'Reason');
  const reason =
    textOf(child(fault, undefined, 'faultstring')) ??
    (reasonElement ? textOf(child(reasonElement, undefined, 'Text')) : undefined) ??
    '';
  const detailElement = child(fault, undefined, 'detail') ?? child(fault, undefined, 'Detail');
  const detailChildren = detailElement?.children ?? [];
  return {
    code,
    soapCode,
    subcodes,
    reason,
    detailElements: detailChildren.map((c) => c.local),
    detail: detailChildren[0],
  };
}

/** Every string a fault pattern may match. */
export function faultCandidates(fault: SoapFault): string[] {
  const candidates = new Set<string>();
  const addCode = (code: string): void => {
    if (code === '') return;
    candidates.add(code);
    const colon = code.indexOf(':');
    if (colon >= 0) candidates.add(code.slice(colon + 1));
  };
  addCode(fault.code);
  if (fault.soapCode) {
    candidates.add(fault.soapCode);
    const alias = SOAP_CODE_ALIASES[fault.soapCode.slice('soap:'.length)];
    if (alias) candidates.add(`soap:${alias}`);
  }
  for (const sub of fault.subcodes) addCode(sub);
  if (fault.reason !== '') candidates.add(fault.reason);
  for (const name of fault.detailElements) candidates.add(name);
  return [...candidates];
}

/** `*` matches any run of characters, `?` one character; the whole value must match. */
export function globMatch(pattern: string, value: string): boolean {
  const source = pattern
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, 's').test(value);
}

export interface FaultClassification {
  readonly outcome: 'retry' | 'permanent';
  /** The pattern that decided, or undefined when the default applied. */
  readonly pattern: string | undefined;
}

export function classifyFault(
  fault: SoapFault,
  rules: {
    readonly retry: readonly string[];
    readonly permanent: readonly string[];
    readonly default: 'retry' | 'permanent';
  },
): FaultClassification {
  const candidates = faultCandidates(fault);
  const hit = (patterns: readonly string[]): string | undefined =>
    patterns.find((pattern) => candidates.some((candidate) => globMatch(pattern, candidate)));
  const permanent = hit(rules.permanent);
  if (permanent !== undefined) return { outcome: 'permanent', pattern: permanent };
  const retry = hit(rules.retry);
  if (retry !== undefined) return { outcome: 'retry', pattern: retry };
  return { outcome: rules.default, pattern: undefined };
}

/** One line for the message history: code, subcodes, reason, detail element. */
export function describeFault(fault: SoapFault): string {
  const codes = [fault.code, ...fault.subcodes].filter((c) => c !== '').join(' / ');
  const detail = fault.detailElements.length > 0 ? ` [${fault.detailElements.join(', ')}]` : '';
  // The reason is free text that may quote the application: quoted, so logs mask it.
  return `SOAP fault ${codes || '(no code)'}: ${fault.reason ? quotePeerText(fault.reason) : '(no reason)'}${detail}`;
}
