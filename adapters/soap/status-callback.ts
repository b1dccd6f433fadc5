/**
 * The SOAP status service a Fachverfahren calls (`statusCallback`): it reads the envelope with the
 * gateway's guarded XML reader, checks the UsernameToken, finds the application by the
 * Fachverfahren's reference or the delivery id, reports the status to the core and answers with
 * the WSDL's response element — or a SOAP fault. Free text and references never reach the log.
 */
import { createClientAsync } from 'soap';
import type { AdapterContext, CallbackRequest, CallbackResponse } from '../../src/adapter-contract.js';
import { AmtError, ERROR_CATALOG, isAmtError, type ErrorCode } from '../../src/errors.js';
import { childElements, readXml, textOf, type XmlElement } from '../../src/xml/index.js';
import { DEFAULT_STATUS_ELEMENTS, type StatusCallbackConfig } from './config.js';
import { escapeXml } from './delivery-id-header.js';
import { SOAP11_ENVELOPE, SOAP12_ENVELOPE } from './faults.js';
import { resolveOperation } from './wsdl.js';
import { WSSE, verifyUsernameToken, type TokenRefusal } from './username-token.js';

/** Namespace of the detail element that carries the gateway's error code in a fault. */
export const CALLBACK_FAULT_NAMESPACE = 'urn:amtsbote:soap:status-callback';
/** A status request is small; anything larger or deeper is refused before it is parsed further. */
const XML_LIMITS = { maxBytes: 1024 * 1024, maxDepth: 32 };
const MAX_REFERENCE_LENGTH = 256;
const MAX_TEXT_LENGTH = 4000;

type SoapVersion = '1.1' | '1.2';

/** The parts of the status operation the callback needs, read from the WSDL once. */
export interface StatusOperation {
  readonly operation: string;
  readonly request: { readonly namespace: string; readonly name: string };
  readonly response: {
    readonly namespace: string;
    readonly name: string;
    /** Whether the response's children are in its namespace (`elementFormDefault="qualified"`). */
    readonly qualified: boolean;
    readonly children: readonly string[];
  };
}

export async function loadStatusOperation(
  file: string,
  config: Pick<StatusCallbackConfig, 'service' | 'port' | 'operation'>,
): Promise<StatusOperation> {
  let client;
  try {
    client = await createClientAsync(file, { disableCache: true });
  } catch (cause) {
    throw new AmtError(
      'AMT_SOAP_WSDL_INVALID',
      `cannot load the status WSDL ${file}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const definitions = client.wsdl.definitions;
  const {
    service: serviceName,
    port: portName,
    operation,
    method,
  } = resolveOperation(definitions, file, config);
  if (!method.input || !method.output) {
    throw new AmtError(
      'AMT_SOAP_WSDL_INVALID',
      `operation ${operation} of ${file} is not a request-response operation`,
    );
  }
  // The soap package's parsed WSDL is untyped below the method level.
  const input = method.input as unknown as { $name: string; targetNamespace?: string };
  const output = method.output as unknown as { $name: string; targetNamespace?: string };
  const described = client.describe() as Record<
    string,
    Record<string, Record<string, { output?: Record<string, unknown> }>>
  >;
  const outputShape = described[serviceName]?.[portName]?.[operation]?.output ?? {};
  const schema = output.targetNamespace ? definitions.schemas[output.targetNamespace] : undefined;
  const elementFormDefault = (schema as { $elementFormDefault?: string } | undefined)?.$elementFormDefault;
  return {
    operation,
    request: { namespace: input.targetNamespace ?? '', name: input.$name },
    response: {
      namespace: output.targetNamespace ?? '',
      name: output.$name,
      qualified: elementFormDefault === 'qualified',
      children: Object.keys(outputShape).filter((key) => !key.startsWith('target')),
    },
  };
}

class CallbackFault extends Error {
  override readonly name = 'CallbackFault';
  constructor(
    readonly side: 'sender' | 'receiver',
    reason: string,
    readonly code: ErrorCode | undefined,
    readonly wsseFault?: TokenRefusal['fault'],
  ) {
    super(reason);
  }
}

const sender = (code: ErrorCode, reason: string = ERROR_CATALOG[code].title): CallbackFault =>
  new CallbackFault('sender', reason, code);

function headerValue(value: string | readonly string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value) ?? '';
}

function envelopeOpen(version: SoapVersion): string {
  return `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="${version === '1.2' ? SOAP12_ENVELOPE : SOAP11_ENVELOPE}"><soap:Body>`;
}

function soapAnswer(version: SoapVersion, status: number, body: string): CallbackResponse {
  return {
    status,
    contentType: `${version === '1.2' ? 'application/soap+xml' : 'text/xml'}; charset=utf-8`,
    body: `${envelopeOpen(version)}${body}</soap:Body></soap:Envelope>`,
  };
}

/**
 * SOAP 1.1 faults travel with HTTP 500 (WS-I Basic Profile R1126); SOAP 1.2 Sender faults with
 * 400 and Receiver faults with 500 (SOAP 1.2 part 2, 7.5.1). WS-Security failures name their
 * fault (`wsse:FailedAuthentication` …) as a SOAP 1.2 subcode.
 */
function faultAnswer(version: SoapVersion, fault: CallbackFault): CallbackResponse {
  const detail =
    fault.code === undefined
      ? ''
      : `<amt:fehler xmlns:amt="${CALLBACK_FAULT_NAMESPACE}"><amt:code>${fault.code}</amt:code></amt:fehler>`;
  const reason = escapeXml(fault.message);
  if (version === '1.1') {
    const code = fault.side === 'sender' ? 'soap:Client' : 'soap:Server';
    return soapAnswer(
      version,
      500,
      `<soap:Fault><faultcode>${code}</faultcode><faultstring>${reason}</faultstring>${detail ? `<detail>${detail}</detail>` : ''}</soap:Fault>`,
    );
  }
  const subcode = fault.wsseFault
    ? `<soap:Subcode><soap:Value xmlns:wsse="${WSSE}">wsse:${fault.wsseFault}</soap:Value></soap:Subcode>`
    : '';
  return soapAnswer(
    version,
    fault.side === 'sender' ? 400 : 500,
    `<soap:Fault><soap:Code><soap:Value>soap:${fault.side === 'sender' ? 'Sender' : 'Receiver'}</soap:Value>${subcode}</soap:Code>` +
      `<soap:Reason><soap:Text xml:lang="en">${reason}</soap:Text></soap:Reason>${detail ? `<soap:Detail>${detail}</soap:Detail>` : ''}</soap:Fault>`,
  );
}

const TOKEN_REASONS: Readonly<Record<TokenRefusal['reason'], string>> = {
  missing: 'the request carries no WS-Security header',
  malformed: 'the WS-Security UsernameToken needs Username, Password, Nonce and wsu:Created',
  credentials: 'authentication failed',
  stale: 'the UsernameToken was created more than 5 minutes away from now',
  expired: 'the wsu:Timestamp has expired',
  replayed: 'the UsernameToken nonce was used before',
};

/** Direct children of the request element with this local name (qualified or not). */
function field(request: XmlElement, local: string, what: string, maxLength: number): string | undefined {
  const found = childElements(request).filter((c) => c.local === local);
  if (found.length === 0) return undefined;
  if (found.length > 1) throw sender('AMT_VALIDATION_FAILED', `the request has ${local} more than once`);
  const value = textOf(found[0]!).trim();
  if (value.length > maxLength) {
    throw sender('AMT_VALIDATION_FAILED', `${what} (${local}) is longer than ${maxLength} characters`);
  }
  return value === '' ? undefined : value;
}

/** The delivery id as the import carried it: plain, or as the WS-Addressing MessageID URI. */
function plainDeliveryId(value: string): string {
  if (/^urn:uuid:/i.test(value)) return value.slice('urn:uuid:'.length).toLowerCase();
  const prefix = 'urn:amtsbote:delivery:';
  if (value.startsWith(prefix)) {
    try {
      return decodeURIComponent(value.slice(prefix.length));
    } catch {
      return value;
    }
  }
  return value;
}

/** Creates the `handleCallback` of a soap instance with a `statusCallback`. */
export function createStatusCallback(
  context: AdapterContext,
  config: StatusCallbackConfig,
): (request: CallbackRequest) => Promise<CallbackResponse> {
  const elements = { ...DEFAULT_STATUS_ELEMENTS, ...config.elements };
  let operation: Promise<StatusOperation> | undefined;
  const statusOperation = (): Promise<StatusOperation> => {
    operation ??= loadStatusOperation(context.resolvePath(config.wsdl), config).catch((err: unknown) => {
      operation = undefined;
      throw err;
    });
    return operation;
  };
  // Loaded now, so a broken WSDL shows in the log at start rather than at the first call.
  statusOperation().catch((err: unknown) => {
    context.logger.error('the status callback WSDL cannot be used', { reason: (err as Error).message });
  });

  /** `state.version` follows the caller's envelope as soon as it is read, for the fault too. */
  async function handle(
    request: CallbackRequest,
    state: { version: SoapVersion },
  ): Promise<CallbackResponse> {
    let root: XmlElement;
    try {
      root = readXml(request.rawBody, { limits: XML_LIMITS, source: 'SOAP request' });
    } catch (err) {
      if (isAmtError(err)) throw sender(err.code);
      throw err;
    }
    const envelopeVersion =
      root.ns === SOAP11_ENVELOPE ? '1.1' : root.ns === SOAP12_ENVELOPE ? '1.2' : undefined;
    if (root.local !== 'Envelope' || envelopeVersion === undefined) {
      throw sender('AMT_BODY_MALFORMED', 'the request is not a SOAP 1.1 or 1.2 Envelope');
    }
    state.version = envelopeVersion;
    const parts = childElements(root);
    const header = parts.find((c) => c.ns === root.ns && c.local === 'Header');
    const body = parts.find((c) => c.ns === root.ns && c.local === 'Body');

    const token = await verifyUsernameToken(header, config.usernameToken, context.rememberOnce);
    if (!token.ok) {
      context.logger.warn('status callback refused: WS-Security', { reason: token.reason });
      throw new CallbackFault('sender', TOKEN_REASONS[token.reason], undefined, token.fault);
    }

    const wsdl = await statusOperation();
    const [call, ...rest] = body ? childElements(body) : [];
    if (!call || rest.length > 0) {
      throw sender('AMT_BODY_MALFORMED', 'the SOAP Body must hold exactly one request element');
    }
    if (call.local !== wsdl.request.name || call.ns !== wsdl.request.namespace) {
      throw sender(
        'AMT_BODY_MALFORMED',
        `the request element is not ${wsdl.request.name} in ${wsdl.request.namespace || 'no namespace'}`,
      );
    }
    const remoteReference = field(call, elements.remoteReference, 'the reference', MAX_REFERENCE_LENGTH);
    const deliveryId = field(call, elements.deliveryId, 'the delivery id', MAX_REFERENCE_LENGTH);
    const status = field(call, elements.status, 'the status', MAX_REFERENCE_LENGTH);
    const text = field(call, elements.text, 'the text', MAX_TEXT_LENGTH);
    const time = field(call, elements.time, 'the time', 64);
    if ((remoteReference === undefined) === (deliveryId === undefined)) {
      throw sender(
        'AMT_VALIDATION_FAILED',
        `name the application by exactly one of ${elements.remoteReference} and ${elements.deliveryId}`,
      );
    }
    if (status === undefined) throw sender('AMT_VALIDATION_FAILED', `${elements.status} is required`);
    if (time !== undefined && Number.isNaN(Date.parse(time))) {
      throw sender('AMT_VALIDATION_FAILED', `${elements.time} is not a date and time`);
    }

    if (!context.findMessage) {
      throw new CallbackFault('receiver', 'the gateway cannot look up applications here', 'AMT_INTERNAL');
    }
    const found = await context.findMessage(
      remoteReference !== undefined ? { remoteReference } : { deliveryId: plainDeliveryId(deliveryId!) },
    );
    if (!found)
      throw sender('AMT_NOT_FOUND', 'no application delivered through this instance has this reference');
    await context.reportStatus({
      messageId: found.messageId,
      status,
      detail: {
        ...(text === undefined ? {} : { text }),
        ...(time === undefined ? {} : { reportedAt: time }),
      },
    });
    context.logger.info('status callback recorded', { messageId: found.messageId });

    const { response } = wsdl;
    const childPrefix = response.qualified ? 'st:' : '';
    const acknowledgement = response.children.includes(elements.acknowledgement)
      ? `<${childPrefix}${elements.acknowledgement}>${escapeXml(found.messageId)}</${childPrefix}${elements.acknowledgement}>`
      : '';
    const namespace = response.namespace ? ` xmlns:st="${escapeXml(response.namespace)}"` : '';
    const name = response.namespace ? `st:${response.name}` : response.name;
    return soapAnswer(state.version, 200, `<${name}${namespace}>${acknowledgement}</${name}>`);
  }

  return async (request) => {
    // Until the envelope is read, the content type is the best guess at the caller's SOAP version.
    const contentType = headerValue(request.headers['content-type']);
    const state = { version: /^application\/soap\+xml/i.test(contentType) ? '1.2' : '1.1' } as {
      version: SoapVersion;
    };
    try {
      return await handle(request, state);
    } catch (err) {
      if (err instanceof CallbackFault) return faultAnswer(state.version, err);
      if (isAmtError(err)) {
        // The core's answer: a wrong or unknown application is the caller's; the rest is ours.
        const side = !err.retryable && err.status >= 400 && err.status < 500 ? 'sender' : 'receiver';
        if (side === 'receiver') {
          context.logger.warn('status callback failed', { code: err.code, retryable: err.retryable });
        }
        return faultAnswer(state.version, new CallbackFault(side, ERROR_CATALOG[err.code].title, err.code));
      }
      context.logger.error('status callback failed', { reason: (err as Error).message });
      return faultAnswer(state.version, new CallbackFault('receiver', 'internal error', 'AMT_INTERNAL'));
    }
  };
}
