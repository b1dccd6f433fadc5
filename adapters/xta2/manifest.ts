/**
 * The `xta2` adapter: sends messages through an XTA 2 server (OSCI transport of the regional IT
 * provider), fetches incoming ones from the msgBox and follows transport reports. The
 * configuration is declared in `config.ts`; see README.md.
 */
import { defineAdapter } from '../../src/adapter-contract.js';
import { xta2ConfigSchema, xta2ExampleConfig, type Xta2Config } from './config.js';
import { createXta2Instance } from './xta2-instance.js';

export const xta2Adapter = defineAdapter<Xta2Config>({
  type: 'xta2',
  version: '1.0.0',
  description:
    'XTA 2 (OSCI transport web service, XTA.wsdl, SOAP 1.2 with WS-Addressing and client certificate): sends messages with OSCI MessageMetaData, fetches the msgBox, follows transport reports.',
  capabilities: { outbound: true, inbound: false, poll: true },
  configSchema: xta2ConfigSchema,
  secrets: ['/tls/passphrase'],
  example: xta2ExampleConfig,
  create: createXta2Instance,
});
