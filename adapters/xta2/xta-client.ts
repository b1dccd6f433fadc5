/**
 * Calls the three XTA 2 ports as `XTA.wsdl` describes them: SOAP 1.2, WS-Addressing headers
 * (Action from the WSDL, a fresh MessageID, To) on every call, the OSCI Author header that names
 * the account, and the client certificate on the TLS connection. Bodies and headers are written
 * as XML by the callers; answers are read namespace-aware from the raw envelope.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Client, HttpClient, createClientAsync, type IOptions, type WSDL } from 'soap';
import { AmtError } from '../../src/errors.js';
import type { PartyConfig, Xta2Config } from './config.js';
import {
  failureFromAnswer,
  failureFromCallError,
  failureFromFault,
  readEnvelope,
  type Envelope,
} from './exceptions.js';
import { WSA, escapeXml, partyXml } from './metadata.js';

export const XTA_WSDL = fileURLToPath(new URL('./wsdl/XTA.wsdl', import.meta.url));

export type XtaPort = 'management' | 'send' | 'msgBox';
const PORT_NAMES: Readonly<Record<XtaPort, string>> = {
  management: 'ManagementPort',
  send: 'SendXtaPort',
  msgBox: 'MsgBoxPort',
};

export interface XtaAnswer extends Envelope {
  /** MTOM parts of the answer by Content-ID (without angle brackets). */
  readonly parts: ReadonlyMap<string, Buffer>;
}

export interface XtaCall {
  /** The body element as XML, or undefined for the WSDL's EmptyBody. */
  readonly body?: string;
  /** Header elements besides WS-Addressing; default: the Author header naming the account. */
  readonly headers?: readonly string[];
  readonly signal: AbortSignal;
}

type SoapCallback = (
  err: unknown,
  result: unknown,
  rawResponse: unknown,
  soapHeader: unknown,
  rawRequest: unknown,
  mtom: unknown,
) => void;
type SoapMethod = (args: unknown, callback: SoapCallback, options: Record<string, unknown>) => void;

function readTls(config: Xta2Config['tls'], resolvePath: (configured: string) => string): https.AgentOptions {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(resolvePath(file));
    } catch (cause) {
      throw new AmtError(
        'AMT_CONFIG_INVALID',
        `cannot read the XTA TLS ${what} ${file}: ${(cause as Error).message}`,
        { cause },
      );
    }
  };
  const material: https.AgentOptions = {
    cert: read(config.cert, 'certificate'),
    key: read(config.key, 'key'),
    ...(config.ca ? { ca: read(config.ca, 'CA certificate') } : {}),
    ...(config.passphrase !== undefined ? { passphrase: config.passphrase } : {}),
  };
  try {
    tls.createSecureContext(material);
  } catch (cause) {
    throw new AmtError(
      'AMT_CONFIG_INVALID',
      `the XTA client certificate cannot be used: ${(cause as Error).message}`,
      { cause },
    );
  }
  return material;
}

function mtomParts(mtom: unknown): Map<string, Buffer> {
  const parts = new Map<string, Buffer>();
  const list =
    (mtom as { parts?: { body?: Buffer; headers?: Record<string, string> }[] } | undefined)?.parts ?? [];
  for (const part of list) {
    const id = part.headers?.['content-id'];
    if (id && part.body) parts.set(id.replace(/^<|>$/g, ''), part.body);
  }
  return parts;
}

export class XtaClient {
  private wsdl: Promise<WSDL> | undefined;
  private readonly agent: https.Agent;
  private readonly httpClient = new HttpClient({ parseResponseAttachments: true });
  private readonly authorHeader: string;

  constructor(
    private readonly endpoints: Xta2Config['endpoints'],
    tlsConfig: Xta2Config['tls'],
    author: PartyConfig,
    private readonly timeoutMs: number,
    resolvePath: (configured: string) => string,
  ) {
    this.agent = new https.Agent({ keepAlive: true, ...readTls(tlsConfig, resolvePath) });
    this.authorHeader = partyXml('Author', author, true);
  }

  private options(): IOptions {
    return {
      forceSoap12Headers: true,
      disableCache: true,
      httpClient: this.httpClient,
      parseResponseAttachments: true,
    };
  }

  private load(): Promise<WSDL> {
    this.wsdl ??= createClientAsync(XTA_WSDL, this.options()).then(
      (client) => client.wsdl,
      (cause: unknown) => {
        this.wsdl = undefined;
        throw new AmtError('AMT_SOAP_WSDL_INVALID', `cannot load ${XTA_WSDL}: ${(cause as Error).message}`, {
          cause,
        });
      },
    );
    return this.wsdl;
  }

  /** The WS-Addressing Action of an operation: the WSDL's soapAction, which equals its wsam:Action. */
  async action(port: XtaPort, operation: string): Promise<string> {
    const wsdl = await this.load();
    const method = wsdl.definitions.services.XTAService?.ports[PORT_NAMES[port]]?.binding.methods[operation];
    if (!method)
      throw new AmtError(
        'AMT_SOAP_WSDL_INVALID',
        `XTA.wsdl has no operation ${operation} on ${PORT_NAMES[port]}`,
      );
    return method.soapAction;
  }

  /** Calls an operation; resolves with the answer envelope, throws `XtaFailure` for faults and transport problems. */
  async call(port: XtaPort, operation: string, call: XtaCall): Promise<XtaAnswer> {
    const wsdl = await this.load();
    const endpoint = this.endpoints[port];
    const action = await this.action(port, operation);
    const client = new Client(wsdl, endpoint, this.options());
    const wsa = (name: string, value: string): string =>
      `<wsa:${name} xmlns:wsa="${WSA}">${escapeXml(value)}</wsa:${name}>`;
    client.addSoapHeader(wsa('Action', action));
    client.addSoapHeader(wsa('MessageID', `urn:uuid:${randomUUID()}`));
    client.addSoapHeader(wsa('To', endpoint));
    client.addSoapHeader(
      `<wsa:ReplyTo xmlns:wsa="${WSA}"><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>`,
    );
    for (const header of call.headers ?? [this.authorHeader]) client.addSoapHeader(header);
    let httpStatus: number | undefined;
    client.on('response', (_body: unknown, response: { status?: number } | undefined) => {
      httpStatus = response?.status;
    });
    // Methods are built at run time from the WSDL, so they are untyped.
    const method = (client as unknown as Record<string, Record<string, Record<string, SoapMethod>>>)
      .XTAService?.[PORT_NAMES[port]]?.[operation];
    if (!method) throw new AmtError('AMT_SOAP_WSDL_INVALID', `XTA.wsdl has no operation ${operation}`);
    // `_xml` is sent as the body as it is; a blank one keeps the EmptyBody operations' body empty.
    const args = { _xml: call.body ?? ' ' };
    const outcome = await new Promise<{ raw: string; mtom: unknown }>((resolve, reject) => {
      method(
        args,
        (err, _result, rawResponse, _header, _request, mtom) => {
          if (err !== null && err !== undefined)
            reject(failureFromCallError(err, this.timeoutMs, call.signal));
          else resolve({ raw: typeof rawResponse === 'string' ? rawResponse : '', mtom });
        },
        { timeout: this.timeoutMs, signal: call.signal, httpsAgent: this.agent },
      );
    });
    let envelope: Envelope;
    try {
      envelope = readEnvelope(outcome.raw);
    } catch {
      throw failureFromAnswer(outcome.raw, httpStatus, undefined);
    }
    const fault = failureFromFault(envelope.body, httpStatus);
    if (fault) throw fault;
    if (httpStatus !== undefined && httpStatus >= 300)
      throw failureFromAnswer(outcome.raw, httpStatus, undefined);
    return { ...envelope, parts: mtomParts(outcome.mtom) };
  }

  close(): void {
    this.agent.destroy();
  }
}
