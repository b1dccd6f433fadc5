/**
 * An XTA 2 server emulator for tests: the real `XTA.wsdl` served by the `soap` package's server
 * (soap.listen without an http server of its own, fed by an https front that requires a client
 * certificate). It keeps messages in memory, checks what it receives against the real XSDs and
 * the WSDL's WS-Addressing actions, and can be told to fail: XTA exceptions, silence, HTTP errors.
 *
 * The `soap` server needs four workarounds for this WSDL, all in the front (`handle`):
 * 1. SOAP 1.2 carries the action in the Content-Type (`action="…"`), but the server dispatches by
 *    a `SOAPAction` header; the front copies the action into that header.
 * 2. All ports share the placeholder address `REPLACE_WITH_ACTUAL_URL`, and the server picks the
 *    binding by URL path; the emulator sets each port's location to its own path after loading.
 * 3. createMessageId / checkAccountActive have an empty body (WSDL message `EmptyBody`), and the
 *    server crashes looking for the body's first element; the front inserts `<EmptyBody/>`, the
 *    name the server knows from the binding.
 * 4. The server builds response headers before the operation runs; headers that depend on the
 *    result (MessageMetaData, MsgBoxResponse of getMessage) are inserted into the envelope by the front.
 * The server does write SOAP 1.2 envelopes and faults (`forceSoap12Headers`).
 */ import { readFileSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { XmlDocument, type XmlElement } from 'libxml2-wasm';
import { listen, type IServices, type Server as SoapServer } from 'soap';
import {
  NS,
  depositedMessage,
  escape,
  exceptionFault,
  nsMap,
  text,
  withInjections,
  xtaOperations,
  type DepositOptions,
  type EmulatorStore,
  type InboxMessage,
  type Injection,
  type RequestState,
  type SentMessage,
} from './operations.js';
import { XTA_SCHEMA_DIR } from './xsd.js';

export type {
  ContentPart,
  DepositOptions,
  InboxMessage,
  Injection,
  SentMessage,
  XtaException,
} from './operations.js';

const WSDL_FILE = `${XTA_SCHEMA_DIR}XTA.wsdl`;
const PORTS = { management: 'ManagementPort', send: 'SendXtaPort', msgBox: 'MsgBoxPort' } as const;
type PortKey = keyof typeof PORTS;

export interface CallRecord {
  readonly port: PortKey;
  readonly operation: string;
  readonly wsaAction: string | null;
  readonly wsaMessageId: string | null;
  readonly wsaTo: string | null;
  readonly account: string | null;
  readonly clientCertificate: string | undefined;
  readonly contentType: string;
  /** The request as it arrived. */
  readonly raw: string;
}
export interface XtaEmulator {
  readonly endpoints: { readonly management: string; readonly send: string; readonly msgBox: string };
  readonly sent: SentMessage[];
  /** MessageIDs handed out by createMessageId. */
  readonly createdIds: ReadonlySet<string>;
  readonly inbox: InboxMessage[];
  readonly calls: CallRecord[];
  /** Transport status by XTA MessageID (0 open, 1 green, 2 yellow, 3 red); new messages start open. */
  readonly transportStatus: Map<
    string,
    { status: number; errors?: readonly { code: string; reason: string }[] }
  >;
  /** Puts a message for `reader` into the msgBox; returns its MessageID. */
  deposit(options: DepositOptions): string;
  /** The next call of `operation` fails this way (queued, one per call). */
  inject(operation: string, injection: Injection): void;
  close(): Promise<void>;
}
function wsdlActions(): Map<string, string> {
  const doc = XmlDocument.fromString(readFileSync(WSDL_FILE, 'utf8'));
  try {
    const actions = new Map<string, string>();
    for (const input of doc.find('/wsdl:definitions/wsdl:portType/wsdl:operation/wsdl:input', nsMap)) {
      const element = input as XmlElement;
      const operation = (element.parent as XmlElement).attr('name')?.value;
      const action = element.attr('Action', 'wsam')?.value;
      if (operation && action) actions.set(operation, action);
    }
    return actions;
  } finally {
    doc.dispose();
  }
}
export async function startXtaEmulator(tls: { cert: string; key: string; ca: string }): Promise<XtaEmulator> {
  const actions = wsdlActions();
  const store: EmulatorStore = {
    sent: [],
    inbox: [],
    transportStatus: new Map(),
    openRequests: new Map(),
    createdIds: new Set(),
    metadataById: new Map(),
  };
  const calls: CallRecord[] = [];
  const injections = new Map<string, Injection[]>();

  const services: IServices = {
    XTAService: Object.fromEntries(
      Object.entries(xtaOperations(store)).map(([name, port]) => [name, withInjections(port)]),
    ) as IServices[string],
  };

  const soapServer = await new Promise<SoapServer>((resolve, reject) => {
    const created: SoapServer = listen(null, {
      path: '/xta',
      services,
      xml: readFileSync(WSDL_FILE, 'utf8'),
      uri: WSDL_FILE,
      forceSoap12Headers: true,
      callback: (err: unknown) => (err ? reject(err) : resolve(created)),
    });
  });

  const server = https.createServer({
    cert: readFileSync(tls.cert),
    key: readFileSync(tls.key),
    ca: readFileSync(tls.ca),
    requestCert: true,
    rejectUnauthorized: true,
  });
  const pathOf = (port: PortKey): string => `/xta/${PORTS[port]}`;
  // Workaround 2: give every port its own address, so the soap server finds the binding by path.
  const wsdlPorts = (
    soapServer as unknown as {
      wsdl: { definitions: { services: Record<string, { ports: Record<string, { location: string }> }> } };
    }
  ).wsdl.definitions.services.XTAService!.ports;
  for (const port of Object.keys(PORTS) as PortKey[])
    wsdlPorts[PORTS[port]]!.location = `https://127.0.0.1${pathOf(port)}`;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, raw: string): Promise<void> {
    const port = (Object.keys(PORTS) as PortKey[]).find((p) => req.url === pathOf(p));
    const contentType = req.headers['content-type'] ?? '';
    const action = /action="([^"]+)"/.exec(contentType)?.[1];
    const operation = [...actions.entries()].find(([, a]) => a === action)?.[0] ?? '(unknown)';
    const queued = injections.get(operation)?.shift();
    if (queued?.kind === 'hang') return;
    if (queued?.kind === 'http') {
      res.writeHead(queued.status, { 'content-type': 'text/html' });
      res.end(queued.body);
      return;
    }
    if (!port || !/^application\/soap\+xml/.test(contentType)) {
      res.writeHead(415, { 'content-type': 'text/plain' });
      res.end('SOAP 1.2 expected');
      return;
    }
    // Workaround 3: an empty body gets the element name the binding knows for it.
    const xml = raw.replace(/<((?:[\w.-]+:)?Body)(\s[^>]*)?(?:\/>|>\s*<\/\1>)/, '<$1$2><EmptyBody/></$1>');
    const doc = XmlDocument.fromString(xml);
    try {
      const account =
        text(doc, '/soap:Envelope/soap:Header/oscimeta:Author/oscimeta:Identifier') ??
        text(
          doc,
          '/soap:Envelope/soap:Header/oscimeta:MessageMetaData/oscimeta:Originators/oscimeta:Author/oscimeta:Identifier',
        );
      const certificate = (req.socket as TLSSocket).getPeerCertificate?.();
      const record: CallRecord = {
        port,
        operation,
        wsaAction: text(doc, '/soap:Envelope/soap:Header/wsa:Action'),
        wsaMessageId: text(doc, '/soap:Envelope/soap:Header/wsa:MessageID'),
        wsaTo: text(doc, '/soap:Envelope/soap:Header/wsa:To'),
        account,
        clientCertificate: [certificate?.subject?.CN].flat()[0],
        contentType,
        raw,
      };
      calls.push(record);
      const state: RequestState = { doc, account, responseHeaders: '' };
      if (record.wsaAction !== action || record.wsaMessageId === null || record.wsaTo === null) {
        res.writeHead(400, { 'content-type': 'application/soap+xml; charset=utf-8' });
        res.end(
          `<soap:Envelope xmlns:soap="${NS.soap}"><soap:Body><soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value>` +
            `<soap:Subcode><soap:Value xmlns:wsa="${NS.wsa}">wsa:InvalidAddressingHeader</soap:Value></soap:Subcode></soap:Code>` +
            `<soap:Reason><soap:Text xml:lang="en">WS-Addressing Action, MessageID and To are required; Action must be ${escape(action ?? '')}</soap:Text></soap:Reason>` +
            '</soap:Fault></soap:Body></soap:Envelope>',
        );
        return;
      }
      if (queued?.kind === 'exception')
        state.injected = exceptionFault(queued.exception, `injected ${queued.exception.name}`);
      // Workaround 1: the SOAP 1.2 action goes where the soap server looks for it.
      const answer = await soapServer.processRequest(xml, {
        headers: { ...req.headers, soapaction: action },
        url: req.url ?? '/',
        method: 'POST',
        connection: state,
      });
      // Workaround 4: result-dependent response headers.
      const body = state.responseHeaders
        ? answer.body.replace(/<soap:Body/, `<soap:Header>${state.responseHeaders}</soap:Header><soap:Body`)
        : answer.body;
      res.writeHead(answer.statusCode, { 'content-type': 'application/soap+xml; charset=utf-8' });
      res.end(body);
    } finally {
      doc.dispose();
    }
  }

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`emulator error: ${(err as Error).stack ?? String(err)}`);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    endpoints: {
      management: base + pathOf('management'),
      send: base + pathOf('send'),
      msgBox: base + pathOf('msgBox'),
    },
    sent: store.sent,
    createdIds: store.createdIds,
    inbox: store.inbox,
    calls,
    transportStatus: store.transportStatus,
    deposit: (options) => {
      const message = depositedMessage(options);
      store.inbox.push(message);
      return message.messageId;
    },
    inject: (operation, injection) => {
      const queue = injections.get(operation) ?? [];
      queue.push(injection);
      injections.set(operation, queue);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
