/**
 * What went wrong in an XTA call, and whether trying again can help. XTA servers report problems
 * as SOAP 1.2 faults whose Detail holds one of the exceptions of XTA-Webservice-Exceptions.xsd with
 * an `errorCode` from the XTA-WS Fehlernummer code list (9000–9101).
 */
import { parseRetryAfter, quotePeerText } from '../../src/adapter-contract.js';
import { XTA } from './metadata.js';
import { child, parseXml, textOf, type XmlElement } from '../../src/xml/element-tree.js';

export const SOAP12_ENVELOPE = 'http://www.w3.org/2003/05/soap-envelope';
const SOAP11_ENVELOPE = 'http://schemas.xmlsoap.org/soap/envelope/';

/**
 * Per exception: may a retry help? Only the technical problem of the XTA server is transient;
 * the others say the account, the parameters or the content are wrong.
 */
export const EXCEPTION_RETRYABLE: Readonly<Record<string, boolean>> = {
  XTAWSTechnicalProblemException: true,
  PermissionDeniedException: false,
  ParameterIsNotValidException: false,
  MessageSchemaViolationException: false,
  MessageVirusDetectionException: false,
  SyncAsyncException: false,
  InvalidMessageIDException: false,
  CancelDeniedException: false,
};

/** Fehlernummern of technical problems (internal error, directory service, delivery). */
const TECHNICAL_ERROR_CODES = new Set(['9030', '9031', '9032']);

export interface XtaExceptionInfo {
  /** Local name of the exception element, e.g. `PermissionDeniedException`. */
  readonly name: string;
  readonly code: string | undefined;
  readonly codeName: string | undefined;
}

export class XtaFailure extends Error {
  override readonly name = 'XtaFailure';
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly exception: XtaExceptionInfo | undefined = undefined,
    readonly retryAfterSeconds: number | undefined = undefined,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

export interface Envelope {
  readonly header: XmlElement | undefined;
  readonly body: XmlElement;
}

/** Parses a SOAP envelope (1.2, or 1.1 from a misconfigured peer); throws on anything else. */
export function readEnvelope(xml: string): Envelope {
  const root = parseXml(xml);
  if (root.local !== 'Envelope' || (root.uri !== SOAP12_ENVELOPE && root.uri !== SOAP11_ENVELOPE)) {
    throw new Error(`the answer's root element is {${root.uri}}${root.local}, not a SOAP Envelope`);
  }
  const body = child(root, root.uri, 'Body');
  if (!body) throw new Error('the SOAP Envelope has no Body');
  return { header: child(root, root.uri, 'Header'), body };
}

/** The failure a fault in `body` stands for, or undefined when there is none. */
export function failureFromFault(body: XmlElement, httpStatus: number | undefined): XtaFailure | undefined {
  const fault = body.children.find((c) => c.local === 'Fault');
  if (!fault) return undefined;
  const code = child(fault, undefined, 'Code');
  const codeValue =
    textOf(code ? child(code, undefined, 'Value') : undefined) ??
    textOf(child(fault, undefined, 'faultcode')) ??
    '';
  const reasonElement = child(fault, undefined, 'Reason');
  const reason =
    textOf(reasonElement ? child(reasonElement, undefined, 'Text') : undefined) ??
    textOf(child(fault, undefined, 'faultstring')) ??
    '';
  const detail = child(fault, undefined, 'Detail') ?? child(fault, undefined, 'detail');
  const exceptionElement = detail?.children.find((c) => c.uri === XTA && c.local in EXCEPTION_RETRYABLE);
  const status = httpStatus === undefined ? '' : ` (HTTP ${httpStatus})`;
  if (exceptionElement) {
    const errorCode =
      child(exceptionElement, XTA, 'errorCode') ?? child(exceptionElement, undefined, 'errorCode');
    const info: XtaExceptionInfo = {
      name: exceptionElement.local,
      code: textOf(errorCode ? child(errorCode, undefined, 'code') : undefined),
      codeName: textOf(errorCode ? child(errorCode, undefined, 'name') : undefined),
    };
    const retryable = EXCEPTION_RETRYABLE[info.name] === true || TECHNICAL_ERROR_CODES.has(info.code ?? '');
    const codeText =
      info.code === undefined ? '' : ` ${info.code}${info.codeName ? ` (${info.codeName})` : ''}`;
    return new XtaFailure(
      `XTA ${info.name}${codeText}: ${reason ? quotePeerText(reason) : 'no reason given'}${status}`,
      retryable,
      info,
    );
  }
  // A fault without an XTA exception: the SOAP code says whose fault it is.
  const local = codeValue.slice(codeValue.indexOf(':') + 1);
  const retryable = local === 'Receiver' || local === 'Server';
  return new XtaFailure(
    `SOAP fault ${codeValue || '(no code)'}: ${reason ? quotePeerText(reason) : 'no reason given'}${status}`,
    retryable,
  );
}

function sketch(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length === 0
    ? 'an empty body'
    : `${text.length} bytes starting with "${oneLine.slice(0, 40)}"`;
}

/** Classifies an answer that is not a successful SOAP envelope. */
export function failureFromAnswer(
  raw: string | undefined,
  httpStatus: number | undefined,
  headers: Record<string, unknown> | undefined,
): XtaFailure {
  if (raw !== undefined && raw.trim() !== '') {
    try {
      const failure = failureFromFault(readEnvelope(raw).body, httpStatus);
      if (failure) return failure;
    } catch {
      // no envelope: decided by the status below
    }
  }
  const what = raw === undefined ? 'no body' : sketch(raw);
  const retryAfter = headers?.['retry-after'];
  const retryAfterSeconds = parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : undefined);
  if (
    httpStatus !== undefined &&
    httpStatus >= 400 &&
    httpStatus < 500 &&
    httpStatus !== 408 &&
    httpStatus !== 429
  ) {
    return new XtaFailure(`HTTP ${httpStatus} without a SOAP fault (${what})`, false);
  }
  if (httpStatus !== undefined && httpStatus >= 400) {
    return new XtaFailure(
      `HTTP ${httpStatus} without a SOAP fault (${what})`,
      true,
      undefined,
      retryAfterSeconds,
    );
  }
  return new XtaFailure(
    `the answer is not a SOAP envelope${httpStatus ? ` (HTTP ${httpStatus})` : ''}: ${what}`,
    true,
  );
}

interface TransportError {
  readonly code?: string;
  readonly message?: string;
  readonly response?: {
    readonly status?: number;
    readonly headers?: Record<string, unknown>;
    readonly data?: unknown;
  };
  readonly body?: unknown;
}

function toText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}

/** Classifies an error the soap package's call failed with. */
export function failureFromCallError(err: unknown, timeoutMs: number, signal: AbortSignal): XtaFailure {
  const error = (err ?? {}) as TransportError;
  if (error.response && typeof error.response.status === 'number') {
    return failureFromAnswer(
      toText(error.body) ?? toText(error.response.data),
      error.response.status,
      error.response.headers,
    );
  }
  const code = typeof error.code === 'string' ? error.code : undefined;
  if (signal.aborted || code === 'ERR_CANCELED')
    return new XtaFailure('the XTA call was aborted', true, undefined, undefined, { cause: err });
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') {
    return new XtaFailure(
      `the XTA server did not answer within ${timeoutMs} ms`,
      true,
      undefined,
      undefined,
      { cause: err },
    );
  }
  // Network and TLS problems alike: the server or its certificates will be back or fixed.
  const message = err instanceof Error ? err.message : String(error.message ?? err);
  return new XtaFailure(
    `cannot reach the XTA server${code ? ` (${code})` : ''}: ${message}`,
    true,
    undefined,
    undefined,
    {
      cause: err,
    },
  );
}
