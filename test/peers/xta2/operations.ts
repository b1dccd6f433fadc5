/**
 * The XTA 2 operations of the emulator, as the `soap` server calls them, over an in-memory store.
 * Each reads its request from the libxml2 document of the raw envelope (namespace-aware,
 * independent of the adapter's own XML reading) and checks MessageMetaData and content against
 * the real XSDs.
 */
import { randomUUID } from 'node:crypto';
import type { XmlDocument, XmlElement } from 'libxml2-wasm';
import { xsdProblems } from './xsd.js';

export const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  wsa: 'http://www.w3.org/2005/08/addressing',
  xta: 'http://xoev.de/transport/xta/211',
  osci: 'http://www.osci.eu/ws/2008/05/transport',
  oscimeta: 'http://www.osci.eu/ws/2014/10/transport',
  wsdl: 'http://schemas.xmlsoap.org/wsdl/',
  wsam: 'http://www.w3.org/2007/05/addressing/metadata',
} as const;

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
/** What the emulator holds between calls. */
export interface EmulatorStore {
  readonly sent: SentMessage[];
  readonly inbox: InboxMessage[];
  readonly transportStatus: Map<
    string,
    { status: number; errors?: readonly { code: string; reason: string }[] }
  >;
  /** MsgBoxRequestID → the MessageID that getMessage handed out under it. */
  readonly openRequests: Map<string, string>;
  /** MessageIDs handed out by createMessageId. */
  readonly createdIds: Set<string>;
  readonly metadataById: Map<string, string>;
}

export const nsMap = { ...NS };
export const text = (node: XmlElement | XmlDocument, xpath: string): string | null => {
  const found = node.get(xpath, nsMap);
  return found === null ? null : found.content.trim();
};
export const escape = (value: string): string =>
  value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The wsam:Action of every operation's input, read from the WSDL's portTypes. */
export function exceptionFault(exception: XtaException, reason: string): { Fault: Record<string, unknown> } {
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
export interface RequestState {
  readonly doc: XmlDocument;
  readonly account: string | null;
  responseHeaders: string;
  injected?: { Fault: Record<string, unknown> };
}

export type Operation = (args: unknown, callback: unknown, headers: unknown, req: unknown) => unknown;

/** Every operation first raises an injected exception, if the test queued one. */
export function withInjections(port: Record<string, Operation>): Record<string, Operation> {
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

const stateOf = (req: unknown): RequestState => (req as { connection: RequestState }).connection;
const fail = (exception: XtaException, reason: string): never => {
  throw exceptionFault(exception, reason);
};

/** The operations by WSDL port name. */
export function xtaOperations(store: EmulatorStore): Record<string, Record<string, Operation>> {
  const { sent, inbox, transportStatus, openRequests, createdIds, metadataById } = store;
  return {
    ManagementPort: {
      createMessageId: () => {
        const id = `urn:de:xta:messageid:emulator:${randomUUID()}`;
        createdIds.add(id);
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
}

/** Builds a message for the msgBox as another XTA participant would have sent it. */
export function depositedMessage(options: DepositOptions): InboxMessage {
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
  return { messageId, reader: options.reader, metadataXml, containerXml, closed: false, fetches: 0 };
}
