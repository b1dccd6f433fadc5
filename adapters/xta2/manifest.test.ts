import { Ajv2020 } from 'ajv/dist/2020.js';
import { expect } from 'chai';
import { xta2Adapter } from './manifest.js';

describe('xta2 adapter manifest', () => {
  const ajv = new Ajv2020({ allErrors: true, useDefaults: true, strict: false });
  const validate = ajv.compile(xta2Adapter.configSchema);
  const example = (): Record<string, unknown> =>
    structuredClone(xta2Adapter.example) as Record<string, unknown>;

  it('documents an example that passes its own config schema', () => {
    const config = example();
    expect(validate(config), JSON.stringify(validate.errors)).to.equal(true);
  });

  it('fills the documented defaults', () => {
    const config = example();
    delete config.timeout;
    delete config.statusPolling;
    delete config.messageIdSource;
    expect(validate(config)).to.equal(true);
    expect(config).to.deep.include({
      timeout: '60s',
      messageIdSource: 'createMessageId',
      testMessage: false,
      statusPolling: { enabled: true, batchSize: 50 },
    });
    expect((config.author as Record<string, unknown>).type).to.equal('xoev');
  });

  it('rejects unknown keys, identifiers without prefix, a numeric ARS and a bad Leistungsschlüssel', () => {
    const variants: ((c: Record<string, unknown>) => void)[] = [
      (c) => (c.endpoint = 'https://typo'),
      (c) => (c.reader = { identifier: 'gewerbeamt' }),
      (c) => ((c.inbound as { routes: Record<string, unknown>[] }).routes[0]!.ars = 55150000000),
      (c) => ((c.inbound as { routes: Record<string, unknown>[] }).routes[0]!.leistungsschluessel = '12345'),
      (c) => delete (c.messageType as Record<string, unknown>).payloadSchema,
      (c) => delete (c.tls as Record<string, unknown>).key,
    ];
    for (const change of variants) {
      const config = example();
      change(config);
      expect(validate(config), change.toString()).to.equal(false);
    }
  });

  it('names the key passphrase as its secret', () => {
    expect(xta2Adapter.secrets).to.deep.equal(['/tls/passphrase']);
  });
});
