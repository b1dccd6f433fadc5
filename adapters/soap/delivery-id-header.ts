/**
 * The SOAP header that carries the delivery id, so a receiver can recognise a repeated delivery.
 * The id is the same in every attempt of one delivery.
 */
import type { DeliveryIdHeaderConfig } from './config.js';

export const WSA_NAMESPACE = 'http://www.w3.org/2005/08/addressing';

export function escapeXml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** WS-Addressing wants a URI: `urn:uuid:` for UUIDs, otherwise an amtsbote URN. */
export function messageIdUri(deliveryId: string): string {
  return UUID.test(deliveryId)
    ? `urn:uuid:${deliveryId.toLowerCase()}`
    : `urn:amtsbote:delivery:${encodeURIComponent(deliveryId)}`;
}

export function deliveryIdHeaders(
  config: DeliveryIdHeaderConfig,
  deliveryId: string,
  target: { readonly soapAction: string; readonly endpoint: string },
): string[] {
  switch (config.kind) {
    case 'none':
      return [];
    case 'element':
      return [
        `<amt:${config.name} xmlns:amt="${escapeXml(config.namespace)}">${escapeXml(deliveryId)}</amt:${config.name}>`,
      ];
    case 'ws-addressing': {
      const wsa = (name: string, value: string): string =>
        `<wsa:${name} xmlns:wsa="${WSA_NAMESPACE}">${escapeXml(value)}</wsa:${name}>`;
      return [
        wsa('Action', target.soapAction),
        wsa('MessageID', messageIdUri(deliveryId)),
        wsa('To', target.endpoint),
      ];
    }
  }
}
