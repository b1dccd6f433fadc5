import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { expect } from 'chai';
import { parse } from 'yaml';
import { postboxAdapter } from './manifest.js';

type Schema = Record<string, unknown>;

describe('postbox adapter: manifest', () => {
  const readme = readFileSync(path.join(import.meta.dirname, 'README.md'), 'utf8');
  const schema = postboxAdapter.configSchema as Schema;

  it('declares an outbound adapter of type postbox with its secrets', () => {
    expect(postboxAdapter.type).to.equal('postbox');
    expect(postboxAdapter.version).to.match(/^\d+\.\d+\.\d+$/);
    expect(postboxAdapter.capabilities).to.deep.equal({ outbound: true, inbound: false, poll: false });
    expect(postboxAdapter.secrets).to.deep.equal(['/auth/token', '/auth/clientSecret']);
  });

  it('has an example that validates against the schema in strict mode', () => {
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
    expect(validate(structuredClone(postboxAdapter.example)), JSON.stringify(validate.errors)).to.equal(true);
  });

  it('documents exactly the manifest example in the README', () => {
    const block = /### Example\s[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme);
    expect(block, 'README has an example block').not.to.equal(null);
    const documented = parse(block![1]!) as { adapters: Record<string, { type: string; config: unknown }> };
    const instances = Object.values(documented.adapters);
    expect(instances.map((instance) => instance.type)).to.deep.equal(['postbox']);
    expect(instances[0]!.config).to.deep.equal(postboxAdapter.example);
  });

  it('fills the documented defaults', () => {
    const validate = new Ajv2020({ useDefaults: true, strict: false }).compile(schema);
    const config = { url: 'https://postfach.example/api' };
    expect(validate(config)).to.equal(true);
    expect(config).to.deep.equal({
      url: 'https://postfach.example/api',
      auth: { type: 'none' },
      headers: {},
      timeout: '30s',
      requirePseudonym: false,
    });
  });

  it('rejects unknown keys, unknown statuses and incomplete auth', () => {
    const validate = new Ajv2020({ allErrors: true, strict: false }).compile(schema);
    const url = 'https://postfach.example/api';
    for (const config of [
      {},
      { url: 'ftp://postfach.example' },
      { url, retries: 3 },
      { url, statusValues: { DONE: 'COMPLETED' } },
      { url, statusValues: { REJECTED: '' } },
      { url, auth: { type: 'bearer' } },
      { url, auth: { type: 'oauth2', tokenUrl: 'https://sso.example/token', clientId: 'a' } },
      { url, auth: { type: 'basic', username: 'u', password: 'p' } },
      { url, timeout: '5 minutes' },
      { url, headers: { 'bad header': 'x' } },
    ]) {
      expect(validate(config), JSON.stringify(config)).to.equal(false);
    }
  });

  it('closes the config object, describes and documents every field', () => {
    expect(schema.additionalProperties).to.equal(false);
    for (const [name, property] of Object.entries(schema.properties as Record<string, Schema>)) {
      expect(property.description, `${name} needs a description`).to.be.a('string');
      expect(readme, `README table lacks ${name}`).to.match(new RegExp(`^\\|\\s*\`${name}\`\\s*\\|`, 'm'));
    }
  });

  it('documents in its README the FIT-Connect path to the postbox and what is configurable there', () => {
    expect(readme).not.to.match(/Out of scope/);
    const section = /## Through FIT-Connect\n([\s\S]*?)\n## /.exec(readme)?.[1];
    expect(section, 'README has a section "Through FIT-Connect"').to.be.a('string');
    for (const key of [
      'sending.postbox',
      'serviceIdentifier',
      'schemaUri',
      'statusValues',
      'destinationId',
    ]) {
      expect(section, key).to.include(key);
    }
    expect(section).to.match(/`REJECTED` becomes `COMPLETED`/);
  });
});
