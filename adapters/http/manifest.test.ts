import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { expect } from 'chai';
import { parse } from 'yaml';
import { httpAdapter } from './manifest.js';

type Schema = Record<string, unknown>;

/** Every object schema below `schema` with the JSON-pointer-like path of the config field it describes. */
function objectSchemas(schema: Schema, at = ''): { at: string; schema: Schema }[] {
  const found: { at: string; schema: Schema }[] = [];
  if (schema.type === 'object') found.push({ at, schema });
  for (const branch of (schema.oneOf as Schema[] | undefined) ?? []) found.push(...objectSchemas(branch, at));
  for (const [name, property] of Object.entries(
    (schema.properties as Record<string, Schema> | undefined) ?? {},
  )) {
    found.push(...objectSchemas(property, `${at}/${name}`));
  }
  return found;
}

function fieldPaths(schema: Schema): string[] {
  const paths = new Set<string>();
  for (const { at, schema: object } of objectSchemas(schema)) {
    for (const name of Object.keys((object.properties as Schema | undefined) ?? {}))
      paths.add(`${at}/${name}`);
  }
  return [...paths];
}

describe('http adapter: manifest', () => {
  const readme = readFileSync(path.join(import.meta.dirname, 'README.md'), 'utf8');

  it('declares an outbound adapter of type http', () => {
    expect(httpAdapter.type).to.equal('http');
    expect(httpAdapter.version).to.match(/^\d+\.\d+\.\d+$/);
    expect(httpAdapter.capabilities).to.deep.equal({ outbound: true, inbound: false, poll: false });
  });

  it('has an example that validates against the schema in strict mode', () => {
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(httpAdapter.configSchema);
    expect(validate(structuredClone(httpAdapter.example)), JSON.stringify(validate.errors)).to.equal(true);
  });

  it('documents exactly the manifest example in the README', () => {
    const block = /### Example\s[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme);
    expect(block, 'README has an example block').not.to.equal(null);
    const documented = parse(block![1]!) as { adapters: Record<string, { type: string; config: unknown }> };
    const instances = Object.values(documented.adapters);
    expect(instances.map((instance) => instance.type)).to.deep.equal(['http']);
    expect(instances[0]!.config).to.deep.equal(httpAdapter.example);
  });

  // As the configuration loader does; defaults inside `auth` branches are applied by the adapter itself.
  it('fills the documented defaults', () => {
    const validate = new Ajv2020({ useDefaults: true, strict: false }).compile(httpAdapter.configSchema);
    const config = { url: 'https://fv.example/antraege' };
    expect(validate(config)).to.equal(true);
    expect(config).to.deep.equal({
      url: 'https://fv.example/antraege',
      method: 'POST',
      headers: {},
      timeout: '30s',
      auth: { type: 'none' },
      remoteReference: { header: 'Location' },
      attachments: 'omit',
    });
  });

  it('rejects unknown keys, incomplete auth and malformed values', () => {
    const validate = new Ajv2020({ allErrors: true }).compile(httpAdapter.configSchema);
    const url = 'https://fv.example/antraege';
    const invalid: unknown[] = [
      {},
      { url, verb: 'POST' },
      { url: 'ftp://fv.example/' },
      { url, method: 'PATCH' },
      { url, timeout: '30 seconds' },
      { url, timeout: 0 },
      { url, auth: { type: 'bearer' } },
      { url, auth: { type: 'bearer', token: 't', password: 'p' } },
      { url, auth: { type: 'oauth2', tokenUrl: url, clientId: 'c' } },
      { url, auth: { type: 'kerberos' } },
      { url, tls: { cert: '/etc/cert.pem' } },
      { url, tls: { ca: '/ca.pem', verify: false } },
      { url, remoteReference: { header: 'Location', jsonPointer: '/id' } },
      { url, remoteReference: { jsonPointer: 'id' } },
      { url, headers: { 'Bad Header': 'x' } },
      { url, headers: { 'X-Count': 3 } },
      { url, attachments: 'inline' },
    ];
    for (const config of invalid) expect(validate(config), JSON.stringify(config)).to.equal(false);
    expect(validate({ url, timeout: 15000, auth: { type: 'basic', username: 'u', password: '' } })).to.equal(
      true,
    );
  });

  it('closes every object and describes every field', () => {
    for (const { at, schema } of objectSchemas(httpAdapter.configSchema as Schema)) {
      const isMap = schema.properties === undefined;
      expect(schema.additionalProperties, `${at || '/'} must not allow unknown keys`).to.satisfy(
        (value: unknown) => value === false || (isMap && typeof value === 'object'),
      );
      for (const [name, property] of Object.entries(
        (schema.properties as Record<string, Schema> | undefined) ?? {},
      )) {
        expect(property.description, `${at}/${name} needs a description`).to.be.a('string');
      }
    }
  });

  it('points its secrets at fields that exist', () => {
    const fields = fieldPaths(httpAdapter.configSchema as Schema);
    expect(httpAdapter.secrets).to.have.members(['/auth/token', '/auth/password', '/auth/clientSecret']);
    for (const pointer of httpAdapter.secrets) expect(fields).to.include(pointer);
  });

  it('lists every config field in the README table', () => {
    for (const field of fieldPaths(httpAdapter.configSchema as Schema)) {
      const dotted = field.slice(1).replace(/\//g, '.');
      const row = new RegExp(`^\\|\\s*\`${dotted.replace(/\./g, '\\.')}\`\\s*\\|`, 'm');
      expect(readme, `README table lacks ${dotted}`).to.match(row);
    }
  });
});
