/**
 * OSCI MessageMetaData (`http://www.osci.eu/ws/2014/10/transport`, OSCI_MessageMetaData_V2.02.xsd):
 * written for outgoing messages, read from incoming ones into plain JSON for the pipeline.
 * Element order follows the XSD's sequences; `code` / `name` of code types are unqualified.
 */
import type { CodeConfig, PartyConfig } from './config.js';
import { child, childrenNamed, textOf, type XmlElement } from '../../src/xml/element-tree.js';

export const OSCIMETA = 'http://www.osci.eu/ws/2014/10/transport';
export const OSCI = 'http://www.osci.eu/ws/2008/05/transport';
export const WSA = 'http://www.w3.org/2005/08/addressing';
export const XTA = 'http://xoev.de/transport/xta/211';

export function escapeXml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function attrs(values: Record<string, string | undefined>): string {
  return Object.entries(values)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => ` ${name}="${escapeXml(value)}"`)
    .join('');
}

/** `oscimeta:Author` / `oscimeta:Reader` content (PartyType). */
export function partyXml(element: 'Author' | 'Reader', party: PartyConfig, declareNamespace = false): string {
  const ns = declareNamespace ? ` xmlns:oscimeta="${OSCIMETA}"` : '';
  const identifier = `<oscimeta:Identifier${attrs({ type: party.type ?? 'xoev', name: party.name, category: party.category })}>${escapeXml(party.identifier)}</oscimeta:Identifier>`;
  return `<oscimeta:${element}${ns}>${identifier}</oscimeta:${element}>`;
}

function codeXml(element: string, value: CodeConfig, extra: Record<string, string | undefined> = {}): string {
  const name = value.name === undefined ? '' : `<name>${escapeXml(value.name)}</name>`;
  return `<oscimeta:${element}${attrs({ listURI: value.listURI, listVersionID: value.listVersionID, ...extra })}><code>${escapeXml(value.code)}</code>${name}</oscimeta:${element}>`;
}

export interface OutgoingMetadata {
  readonly messageId: string;
  readonly author: PartyConfig;
  readonly reader: PartyConfig;
  readonly service: string;
  readonly businessScenario: CodeConfig | { readonly undefined: string };
  readonly messageType: CodeConfig & { readonly payloadSchema: string };
  readonly subject?: string | undefined;
  readonly testMessage: boolean;
  /** The portal's reference, as the requester's process reference. */
  readonly processReference?: string | undefined;
  /** Scenario-specific properties, e.g. the delivery id. */
  readonly properties: readonly { readonly key: CodeConfig; readonly value: string }[];
  readonly createdAt: Date;
  readonly payloadSize: number;
}

export function messageMetaDataXml(meta: OutgoingMetadata): string {
  const timestamp = meta.createdAt.toISOString();
  const scenario =
    'undefined' in meta.businessScenario
      ? `<oscimeta:Undefined>${escapeXml(meta.businessScenario.undefined)}</oscimeta:Undefined>`
      : codeXml('Defined', meta.businessScenario);
  const processRef =
    meta.processReference === undefined
      ? ''
      : `<oscimeta:ProcessRef><oscimeta:Requester>${escapeXml(meta.processReference)}</oscimeta:Requester></oscimeta:ProcessRef>`;
  const properties =
    meta.properties.length === 0
      ? ''
      : `<oscimeta:MessageProperties>${meta.properties
          .map(
            (p) =>
              `<oscimeta:Property>${codeXml('Key', p.key)}<oscimeta:Value>${escapeXml(p.value)}</oscimeta:Value></oscimeta:Property>`,
          )
          .join('')}</oscimeta:MessageProperties>`;
  return (
    `<oscimeta:MessageMetaData xmlns:oscimeta="${OSCIMETA}" xmlns:wsa="${WSA}"${meta.testMessage ? ' TestMsg="true"' : ''}>` +
    `<oscimeta:DeliveryAttributes><oscimeta:Origin>${timestamp}</oscimeta:Origin><oscimeta:InitialSend>${timestamp}</oscimeta:InitialSend></oscimeta:DeliveryAttributes>` +
    `<oscimeta:Originators>${partyXml('Author', meta.author)}</oscimeta:Originators>` +
    `<oscimeta:Destinations>${partyXml('Reader', meta.reader)}</oscimeta:Destinations>` +
    `<oscimeta:MsgIdentification><wsa:MessageID>${escapeXml(meta.messageId)}</wsa:MessageID>${processRef}</oscimeta:MsgIdentification>` +
    `<oscimeta:Qualifier>${meta.subject === undefined ? '' : `<oscimeta:Subject>${escapeXml(meta.subject)}</oscimeta:Subject>`}` +
    `<oscimeta:Service>${escapeXml(meta.service)}</oscimeta:Service>` +
    `<oscimeta:BusinessScenario>${scenario}</oscimeta:BusinessScenario>` +
    codeXml('MessageType', meta.messageType, { payloadSchema: meta.messageType.payloadSchema }) +
    `</oscimeta:Qualifier>${properties}<oscimeta:MsgSize>${Math.max(1, meta.payloadSize)}</oscimeta:MsgSize>` +
    `</oscimeta:MessageMetaData>`
  );
}

/** MessageMetaData as JSON for the pipeline and mappings (no XML types leak out). */
export interface MessageMetadata {
  readonly messageId: string | undefined;
  readonly testMessage: boolean;
  readonly author: PartyConfig | undefined;
  readonly reader: PartyConfig | undefined;
  readonly service: string | undefined;
  readonly subject: string | undefined;
  readonly businessScenario: (Partial<CodeConfig> & { readonly undefined?: string }) | undefined;
  readonly messageType: (Partial<CodeConfig> & { readonly payloadSchema?: string }) | undefined;
  readonly inReplyTo: readonly string[];
  readonly processReference: { readonly requester?: string; readonly responder?: string } | undefined;
  readonly deliveryAttributes: Readonly<Record<string, string>>;
  readonly properties: readonly { readonly key: string; readonly value: string }[];
  readonly size: number | undefined;
}

function partyOf(element: XmlElement | undefined): PartyConfig | undefined {
  const identifier = element ? child(element, OSCIMETA, 'Identifier') : undefined;
  if (!identifier) return undefined;
  const { type, name, category } = identifier.attributes;
  return {
    identifier: identifier.text.trim(),
    ...(type !== undefined ? { type } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(category !== undefined ? { category } : {}),
  };
}

function codeOf(element: XmlElement | undefined): (Partial<CodeConfig> & Record<string, string>) | undefined {
  if (!element) return undefined;
  const result: Record<string, string> = { ...element.attributes };
  // `code` and `name` are unqualified in the XSD; a careless default namespace is tolerated.
  const codeValue = textOf(child(element, undefined, 'code'));
  const name = textOf(child(element, undefined, 'name'));
  if (codeValue !== undefined) result.code = codeValue;
  if (name !== undefined) result.name = name;
  return result;
}

function processReferenceOf(element: XmlElement): { requester?: string; responder?: string } {
  const requester = textOf(child(element, OSCIMETA, 'Requester'));
  const responder = textOf(child(element, OSCIMETA, 'Responder'));
  return {
    ...(requester !== undefined ? { requester } : {}),
    ...(responder !== undefined ? { responder } : {}),
  };
}

export function readMessageMetaData(element: XmlElement): MessageMetadata {
  const originators = child(element, OSCIMETA, 'Originators');
  const destinations = child(element, OSCIMETA, 'Destinations');
  const identification = child(element, OSCIMETA, 'MsgIdentification');
  const qualifier = child(element, OSCIMETA, 'Qualifier');
  const scenario = qualifier ? child(qualifier, OSCIMETA, 'BusinessScenario') : undefined;
  const undefinedScenario = scenario ? textOf(child(scenario, OSCIMETA, 'Undefined')) : undefined;
  const processRef = identification ? child(identification, OSCIMETA, 'ProcessRef') : undefined;
  const deliveryAttributes: Record<string, string> = {};
  for (const attribute of child(element, OSCIMETA, 'DeliveryAttributes')?.children ?? []) {
    const value = attribute.text.trim();
    if (value !== '') deliveryAttributes[attribute.local] = value;
  }
  const propertyList = child(element, OSCIMETA, 'MessageProperties');
  const properties = (propertyList ? childrenNamed(propertyList, OSCIMETA, 'Property') : []).map(
    (property) => ({
      key: codeOf(child(property, OSCIMETA, 'Key'))?.code ?? '',
      value: textOf(child(property, OSCIMETA, 'Value')) ?? '',
    }),
  );
  const size = textOf(child(element, OSCIMETA, 'MsgSize'));
  return {
    messageId: identification ? textOf(child(identification, WSA, 'MessageID')) : undefined,
    testMessage: element.attributes.TestMsg === 'true' || element.attributes.TestMsg === '1',
    author: partyOf(originators ? child(originators, OSCIMETA, 'Author') : undefined),
    reader: partyOf(destinations ? child(destinations, OSCIMETA, 'Reader') : undefined),
    service: qualifier ? textOf(child(qualifier, OSCIMETA, 'Service')) : undefined,
    subject: qualifier ? textOf(child(qualifier, OSCIMETA, 'Subject')) : undefined,
    businessScenario:
      undefinedScenario !== undefined
        ? { undefined: undefinedScenario }
        : codeOf(scenario ? child(scenario, OSCIMETA, 'Defined') : undefined),
    messageType: codeOf(qualifier ? child(qualifier, OSCIMETA, 'MessageType') : undefined),
    inReplyTo: identification
      ? childrenNamed(identification, OSCIMETA, 'In-Reply-To').map((e) => e.text.trim())
      : [],
    processReference: processRef ? processReferenceOf(processRef) : undefined,
    deliveryAttributes,
    properties,
    size: size === undefined ? undefined : Number(size),
  };
}
