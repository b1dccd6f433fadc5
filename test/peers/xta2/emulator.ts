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
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { XmlDocument, type XmlElement } from 'libxml2-wasm';
import { listen, type IServices, type Server as SoapServer } from 'soap';
import { XTA_SCHEMA_DIR, xsdProblems } from './xsd.js';

export const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  wsa: 'http://www.w3.org/2005/08/addressing',
  xta: 'http://xoev.de/transport/xta/211',
  osci: 'http://www.osci.eu/ws/2008/05/transport',
  oscimeta: 'http://www.osci.eu/ws/2014/10/transport',
  wsdl: 'http://schemas.xmlsoap.org/wsdl/',
  wsam: 'http://www.w3.org/2007/05/addressing/metadata',
} as const;

const WSDL_FILE = `${XTA_SCHEMA_DIR}XTA.wsdl`;
const PORTS = { management: 'ManagementPort', send: 'SendXtaPort', msgBox: 'MsgBoxPort' } as const;
type PortKey = keyof typeof PORTS;

export type XtaExceptionName =
  | 'PermissionDeniedException'
  | 'ParameterIsNotValidException'
  | 'XTAWSTechnicalProblemException'
  | 'MessageSchemaViolationException'
  | 'MessageVirusDetectionException'
  | 'SyncAsyncException'
  | 'InvalidMessageIDException';

export interface XtaException {
  readonly name: XtaExceptionName;
  readonly code: string;
  readonly codeName: string;
}

export type Injection =
  | { readonly kind: 'exception'; readonly exception: XtaException }
  | { readonly kind: 'hang' }
  | { readonly kind: 'http'; readonly status: number; readonly body: string };

export interface ContentPart {
  readonly contentType: string | null;
  readonly filename: string | null;
  readonly encoding: string | null;
  readonly size: string | null;
  readonly content: Buffer;
}

export interface SentMessage {
  readonly messageId: string;
  readonly metadataXml: string;
  /** Values read from the metadata with XPath, for assertions. */
  readonly meta: Readonly<Record<string, string | null>>;
  readonly message: ContentPart;
  readonly attachments: readonly ContentPart[];
}

export interface InboxMessage {
  readonly messageId: string;
  readonly reader: string;
  readonly metadataXml: string;
  readonly containerXml: string;
  closed: boolean;
  fetches: number;
}

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

export interface DepositOptions {
  readonly reader: string;
  readonly author: string;
  readonly service: string;
  readonly messageType: { readonly code: string; readonly payloadSchema: string };
  readonly businessScenario: string;
  readonly payloadXml: string;
  readonly attachments?: readonly {
    readonly filename: string;
    readonly contentType: string;
    readonly content: Buffer;
  }[];
}

export interface XtaEmulator {
  readonly endpoints: { readonly management: string; readonly send: string; readonly msgBox: string };
  readonly sent: SentMessage[];
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

const nsMap = { ...NS };
const text = (node: XmlElement | XmlDocument, xpath: string): string | null => {
  const found = node.get(xpath, nsMap);
  return found === null ? null : found.content.trim();
};
const escape = (value: string): string =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The wsam:Action of every operation's input, read from the WSDL's portTypes. */
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

function exceptionFault(exception: XtaException, reason: string): { Fault: Record<string, unknown> } {
  const sender = exception.name !== 'XTAWSTechnicalProblemException';
  return {
    Fault: {
      Code: { Value: sender ? 'soap:Sender' : 'soap:Receiver' },
      Reason: { Text: reason },
      Detail: {
        $xml:
          `<xta:${exception.name} xmlns:xta="${NS.xta}"><xta:errorCode listURI="urn:de:xta:webservice:codeliste:fehlernummer" listVersionID="1.0">` +
          `<code>${exception.code}</code><name>${escape(exception.codeName)}</name></xta:errorCode></xta:${exception.name}>`,
      },
      statusCode: 500,
    },
  };
}

const INVALID_ID: XtaException = {
  name: 'InvalidMessageIDException',
  code: '9070',
  codeName: 'MessageID für den Account nicht bekannt.',
};

function contentPart(element: XmlElement): ContentPart {
  return {
    contentType: element.attr('contentType')?.value ?? null,
    filename: element.attr('filename')?.value ?? null,
    encoding: element.attr('encoding')?.value ?? null,
    size: element.attr('size')?.value ?? null,
    content: Buffer.from(element.content.replace(/\s+/g, ''), 'base64'),
  };
}

/** Per-request state handed to the operations through the serverless request's `connection`. */
interface RequestState {
  readonly doc: XmlDocument;
  readonly account: string | null;
  responseHeaders: string;
  injected?: { Fault: Record<string, unknown> };
}

type Operation = (args: unknown, callback: unknown, headers: unknown, req: unknown) => unknown;

/** Every operation first raises an injected exception, if the test queued one. */
function withInjections(port: Record<string, Operation>): Record<string, Operation> {
  return Object.fromEntries(
    Object.entries(port).map(([name, operation]) => [
      name,
      (args, callback, headers, req) => {
        const injected = (req as { connection: RequestState }).connection.injected;
        if (injected) throw injected;
        return operation(args, callback, headers, req);
      },
    ]),
  );
}

export async function startXtaEmulator(tls: { cert: string; key: string; ca: string }): Promise<XtaEmulator> {
  const actions = wsdlActions();
  const sent: SentMessage[] = [];
  const inbox: InboxMessage[] = [];
  const calls: CallRecord[] = [];
  const transportStatus: XtaEmulator['transportStatus'] = new Map();
  const injections = new Map<string, Injection[]>();
  const openRequests = new Map<string, string>();
  const knownIds = new Set<string>();
  const metadataById = new Map<string, string>();

  const stateOf = (req: unknown): RequestState => (req as { connection: RequestState }).connection;
  const fail = (exception: XtaException, reason: string): never => {
    throw exceptionFault(exception, reason);
  };

  const ports: Record<string, Record<string, Operation>> = {
    ManagementPort: {
      createMessageId: () => {
        const id = `urn:de:xta:messageid:emulator:${randomUUID()}`;
        knownIds.add(id);
        return { _xml: `<wsa:MessageID xmlns:wsa="${NS.wsa}">${id}</wsa:MessageID>` };
      },
      getTransportReport: (_args, _cb, _headers, req) => {
        const id = text(stateOf(req).doc, '/soap:Envelope/soap:Body/wsa:MessageID') ?? '';
        const status = transportStatus.get(id);
        const metadata = metadataById.get(id);
        if (!status || !metadata) return fail(INVALID_ID, `unknown MessageID ${id}`);
        const errors = (status.errors ?? [])
          .map(
            (e) =>
              `<xta:Error><xta:Timestamp>${new Date().toISOString()}</xta:Timestamp><xta:Code listURI="urn:de:xta:codeliste:record.type" listVersionID="1"><code>${escape(e.code)}</code></xta:Code><xta:Reason>${escape(e.reason)}</xta:Reason></xta:Error>`,
          )
          .join('');
        return {
          _xml:
            `<xta:TransportReport xmlns:xta="${NS.xta}">${metadata}<xta:ReportTime>${new Date().toISOString()}</xta:ReportTime>` +
            `<xta:XTAServerIdentity>xta-emulator.test</xta:XTAServerIdentity><xta:MessageStatus><xta:Status>${status.status}</xta:Status>` +
            `${errors ? `<xta:ErrorList>${errors}</xta:ErrorList>` : ''}</xta:MessageStatus></xta:TransportReport>`,
        };
      },
    },
    SendXtaPort: {
      sendMessage: (_args, _cb, _headers, req) => {
        const { doc } = stateOf(req);
        const metadata = doc.get(
          '/soap:Envelope/soap:Header/oscimeta:MessageMetaData',
          nsMap,
        ) as XmlElement | null;
        const container = doc.get(
          '/soap:Envelope/soap:Body/xta:GenericContentContainer',
          nsMap,
        ) as XmlElement | null;
        if (!metadata || !container) {
          return fail(
            { name: 'ParameterIsNotValidException', code: '9020', codeName: 'Keine Parameter vorhanden' },
            'MessageMetaData header or GenericContentContainer missing',
          );
        }
        const problems = [...xsdProblems(metadata), ...xsdProblems(container)];
        if (problems.length > 0) {
          return fail(
            {
              name: 'MessageSchemaViolationException',
              code: '9050',
              codeName: 'Fachnachricht ist nicht schemakonform',
            },
            problems.join('; '),
          );
        }
        const m = (xpath: string): string | null => text(metadata, xpath);
        const messageId = m('oscimeta:MsgIdentification/wsa:MessageID') ?? '';
        if (metadataById.has(messageId)) {
          return fail(
            {
              name: 'ParameterIsNotValidException',
              code: '9024',
              codeName: 'MessageID ist bereits vergeben.',
            },
            `MessageID ${messageId} was used before`,
          );
        }
        const messageElement = container.get('xta:ContentContainer/xta:Message', nsMap) as XmlElement;
        const metadataXml = metadata.toString();
        sent.push({
          messageId,
          metadataXml,
          meta: {
            author: m('oscimeta:Originators/oscimeta:Author/oscimeta:Identifier'),
            authorType: m('oscimeta:Originators/oscimeta:Author/oscimeta:Identifier/@type'),
            reader: m('oscimeta:Destinations/oscimeta:Reader/oscimeta:Identifier'),
            service: m('oscimeta:Qualifier/oscimeta:Service'),
            businessScenario: m('oscimeta:Qualifier/oscimeta:BusinessScenario/oscimeta:Defined/code'),
            businessScenarioList: m('oscimeta:Qualifier/oscimeta:BusinessScenario/oscimeta:Defined/@listURI'),
            messageType: m('oscimeta:Qualifier/oscimeta:MessageType/code'),
            payloadSchema: m('oscimeta:Qualifier/oscimeta:MessageType/@payloadSchema'),
            testMsg: m('@TestMsg'),
            processRef: m('oscimeta:MsgIdentification/oscimeta:ProcessRef/oscimeta:Requester'),
            deliveryId: m(
              "oscimeta:MessageProperties/oscimeta:Property[oscimeta:Key/code='deliveryId']/oscimeta:Value",
            ),
            msgSize: m('oscimeta:MsgSize'),
          },
          message: contentPart(messageElement),
          attachments: (container.find('xta:ContentContainer/xta:Attachment', nsMap) as XmlElement[]).map(
            contentPart,
          ),
        });
        metadataById.set(messageId, metadataXml);
        transportStatus.set(messageId, { status: 0 });
        return { _xml: ' ' };
      },
      sendMessageSync: () =>
        fail(
          { name: 'SyncAsyncException', code: '9080', codeName: 'Der Dienst wird nur asynchron angeboten.' },
          'asynchronous only',
        ),
    },
    MsgBoxPort: {
      getStatusList: (_args, _cb, _headers, req) => {
        const state = stateOf(req);
        const max = Number(
          text(state.doc, '/soap:Envelope/soap:Body/osci:MsgBoxStatusListRequest/@maxListItems') ?? '100',
        );
        const open = inbox.filter((m) => !m.closed && m.reader === state.account);
        const listed = open.slice(0, max);
        const requestId = `urn:uuid:${randomUUID()}`;
        state.responseHeaders =
          `<osci:MsgBoxResponse xmlns:osci="${NS.osci}" MsgBoxRequestID="${requestId}">` +
          (listed.length === 0
            ? '<osci:NoMessageAvailable reason="http://www.osci.eu/ws/2008/05/transport/MsgBox/reasons/NoMatch"/>'
            : `<osci:ItemsPending>${open.length - listed.length}</osci:ItemsPending>`) +
          '</osci:MsgBoxResponse>';
        return {
          _xml: `<osci:MsgStatusList xmlns:osci="${NS.osci}">${listed.map((m) => m.metadataXml).join('')}</osci:MsgStatusList>`,
        };
      },
      getMessage: (_args, _cb, _headers, req) => {
        const state = stateOf(req);
        const id =
          text(
            state.doc,
            '/soap:Envelope/soap:Body/osci:MsgBoxFetchRequest/osci:MsgSelector/wsa:MessageID',
          ) ?? '';
        const message = inbox.find((m) => m.messageId === id && !m.closed && m.reader === state.account);
        if (!message) return fail(INVALID_ID, `no message ${id} in this msgBox`);
        message.fetches += 1;
        const requestId = `urn:uuid:${randomUUID()}`;
        openRequests.set(requestId, id);
        state.responseHeaders =
          message.metadataXml +
          `<osci:MsgBoxResponse xmlns:osci="${NS.osci}" MsgBoxRequestID="${requestId}"><osci:ItemsPending>0</osci:ItemsPending></osci:MsgBoxResponse>`;
        return { _xml: message.containerXml };
      },
      close: (_args, _cb, _headers, req) => {
        const { doc } = stateOf(req);
        const requestId =
          text(doc, '/soap:Envelope/soap:Body/osci:MsgBoxCloseRequest/@MsgBoxRequestID') ?? '';
        const last = text(doc, '/soap:Envelope/soap:Body/osci:MsgBoxCloseRequest/osci:LastMsgReceived') ?? '';
        if (openRequests.get(requestId) !== last)
          return fail(INVALID_ID, `request ${requestId} did not fetch ${last}`);
        const message = inbox.find((m) => m.messageId === last);
        if (message) message.closed = true;
        openRequests.delete(requestId);
        return { _xml: ' ' };
      },
    },
  };
  const services: IServices = {
    XTAService: Object.fromEntries(
      Object.entries(ports).map(([name, port]) => [name, withInjections(port)]),
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
    sent,
    inbox,
    calls,
    transportStatus,
    deposit: (options) => {
      const messageId = `urn:de:xta:messageid:emulator:${randomUUID()}`;
      const now = new Date().toISOString();
      const metadataXml =
        `<oscimeta:MessageMetaData xmlns:oscimeta="${NS.oscimeta}" xmlns:wsa="${NS.wsa}">` +
        `<oscimeta:DeliveryAttributes><oscimeta:Origin>${now}</oscimeta:Origin><oscimeta:Delivery>${now}</oscimeta:Delivery></oscimeta:DeliveryAttributes>` +
        `<oscimeta:Originators><oscimeta:Author><oscimeta:Identifier type="xoev">${escape(options.author)}</oscimeta:Identifier></oscimeta:Author></oscimeta:Originators>` +
        `<oscimeta:Destinations><oscimeta:Reader><oscimeta:Identifier type="xoev">${escape(options.reader)}</oscimeta:Identifier></oscimeta:Reader></oscimeta:Destinations>` +
        `<oscimeta:MsgIdentification><wsa:MessageID>${messageId}</wsa:MessageID></oscimeta:MsgIdentification>` +
        `<oscimeta:Qualifier><oscimeta:Service>${escape(options.service)}</oscimeta:Service>` +
        `<oscimeta:BusinessScenario><oscimeta:Defined listURI="urn:de:dataport:codeliste:business.scenario" listVersionID="1"><code>${escape(options.businessScenario)}</code></oscimeta:Defined></oscimeta:BusinessScenario>` +
        `<oscimeta:MessageType listURI="urn:de:xoev:codeliste:nachrichtentyp" listVersionID="1" payloadSchema="${escape(options.messageType.payloadSchema)}"><code>${escape(options.messageType.code)}</code></oscimeta:MessageType>` +
        `</oscimeta:Qualifier><oscimeta:MsgSize>${Buffer.byteLength(options.payloadXml)}</oscimeta:MsgSize></oscimeta:MessageMetaData>`;
      const part = (element: string, contentType: string, filename: string, content: Buffer): string =>
        `<xta:${element} contentType="${escape(contentType)}" filename="${escape(filename)}" encoding="UTF-8" size="${content.length}">${content.toString('base64')}</xta:${element}>`;
      const containerXml =
        `<xta:GenericContentContainer xmlns:xta="${NS.xta}"><xta:ContentContainer>` +
        part('Message', 'application/xml', 'nachricht.xml', Buffer.from(options.payloadXml, 'utf8')) +
        (options.attachments ?? [])
          .map((a) => part('Attachment', a.contentType, a.filename, a.content))
          .join('') +
        '</xta:ContentContainer></xta:GenericContentContainer>';
      inbox.push({ messageId, reader: options.reader, metadataXml, containerXml, closed: false, fetches: 0 });
      return messageId;
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
