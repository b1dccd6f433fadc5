/**
 * The `soap` adapter: delivers each message by calling one operation of a WSDL-described SOAP
 * service of a Fachverfahren. The configuration is declared in `config.ts`; see README.md.
 */
import { defineAdapter } from '../../src/adapter-contract.js';
import { soapConfigSchema, soapExampleConfig, type SoapAdapterConfig } from './config.js';
import { createSoapInstance } from './soap-delivery.js';

export const soapAdapter = defineAdapter<SoapAdapterConfig>({
  type: 'soap',
  version: '1.0.0',
  description:
    'Calls one operation of a WSDL-described SOAP service (SOAP 1.1/1.2) per delivery: WS-Security UsernameToken, TLS client certificates, delivery id as WS-Addressing MessageID or custom header, configurable fault classification, MTOM attachments; optionally a SOAP status service the Fachverfahren calls back (WS-Security UsernameToken).',
  capabilities: { outbound: true, inbound: false, poll: false },
  configSchema: soapConfigSchema,
  secrets: ['/usernameToken/password', '/tls/passphrase', '/statusCallback/usernameToken/password'],
  example: soapExampleConfig,
  create: createSoapInstance,
});
