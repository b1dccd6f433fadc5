import { Ajv2020 } from 'ajv/dist/2020.js';
import { expect } from 'chai';
import { soapAdapter } from './manifest.js';

describe('soap adapter manifest', () => {
  const ajv = new Ajv2020({ allErrors: true, useDefaults: true, strict: false });
  const validate = ajv.compile(soapAdapter.configSchema);

  it('documents an example that passes its own config schema', () => {
    const example = structuredClone(soapAdapter.example);
    expect(validate(example), JSON.stringify(validate.errors)).to.equal(true);
  });

  it('fills the documented defaults', () => {
    const config: Record<string, unknown> = { wsdl: 'x.wsdl', operation: 'importGewerbeanmeldung' };
    expect(validate(config)).to.equal(true);
    expect(config).to.deep.include({
      soapVersion: '1.1',
      timeout: '30s',
      xmlBody: 'element',
      deliveryIdHeader: { kind: 'ws-addressing' },
      tlsFailure: 'retry',
      attachments: 'omit',
    });
  });

  it('rejects unknown keys, a half client certificate and a header element without namespace', () => {
    const bad = [
      { wsdl: 'x.wsdl', operation: 'op', endpiont: 'http://typo' },
      { wsdl: 'x.wsdl', operation: 'op', tls: { cert: 'client.crt' } },
      { wsdl: 'x.wsdl', operation: 'op', deliveryIdHeader: { kind: 'element', name: 'Id' } },
      { wsdl: 'x.wsdl', operation: 'op', faults: { retry: ['soap:Server'], sometimes: ['x'] } },
      {
        wsdl: 'x.wsdl',
        operation: 'op',
        usernameToken: { username: 'u', password: 'p', passwordType: 'Plain' },
      },
      // A status callback without credentials, with a short password, with an unknown key.
      { wsdl: 'x.wsdl', operation: 'op', statusCallback: { wsdl: 'status.wsdl' } },
      {
        wsdl: 'x.wsdl',
        operation: 'op',
        statusCallback: { wsdl: 'status.wsdl', usernameToken: { username: 'fv', password: 'short' } },
      },
      {
        wsdl: 'x.wsdl',
        operation: 'op',
        statusCallback: {
          wsdl: 'status.wsdl',
          usernameToken: { username: 'fv', password: 'long-enough-password' },
          elements: { aktenzeichen: 'az' },
        },
      },
    ];
    for (const config of bad) expect(validate(config), JSON.stringify(config)).to.equal(false);
  });

  it('names the secret fields by JSON pointer into the config', () => {
    expect(soapAdapter.secrets).to.deep.equal([
      '/usernameToken/password',
      '/tls/passphrase',
      '/statusCallback/usernameToken/password',
    ]);
    for (const pointer of soapAdapter.secrets) {
      let node: unknown = soapAdapter.configSchema;
      for (const step of pointer.split('/').slice(1))
        node = (node as { properties: Record<string, unknown> }).properties[step];
      expect(node, pointer).to.be.an('object');
    }
  });
});
