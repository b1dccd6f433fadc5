import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { expect } from 'chai';
import { parse } from 'yaml';
import { fileDropAdapter } from './manifest.js';
import { fakeContext, makeDelivery } from './test-support.js';

type Schema = Record<string, unknown>;

const properties = (schema: Schema) =>
  Object.entries((schema.properties as Record<string, Schema> | undefined) ?? {});

describe('file-drop adapter: manifest', () => {
  const readme = readFileSync(path.join(import.meta.dirname, 'README.md'), 'utf8');
  const schema = fileDropAdapter.configSchema as Schema;

  it('declares an outbound adapter of type file-drop that polls its inbox, without secrets', () => {
    expect(fileDropAdapter.type).to.equal('file-drop');
    expect(fileDropAdapter.version).to.match(/^\d+\.\d+\.\d+$/);
    expect(fileDropAdapter.capabilities).to.deep.equal({ outbound: true, inbound: false, poll: true });
    expect(fileDropAdapter.secrets).to.deep.equal([]);
  });

  it('has an example that validates against the schema in strict mode', () => {
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
    expect(validate(structuredClone(fileDropAdapter.example)), JSON.stringify(validate.errors)).to.equal(
      true,
    );
  });

  it('documents exactly the manifest example in the README', () => {
    const block = /### Example\s[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme);
    expect(block, 'README has an example block').not.to.equal(null);
    const documented = parse(block![1]!) as { adapters: Record<string, { type: string; config: unknown }> };
    const instances = Object.values(documented.adapters);
    expect(instances.map((instance) => instance.type)).to.deep.equal(['file-drop']);
    expect(instances[0]!.config).to.deep.equal(fileDropAdapter.example);
  });

  it('fills the documented defaults', () => {
    const validate = new Ajv2020({ useDefaults: true, strict: true }).compile(schema);
    const config = { directory: '/srv/drop' };
    expect(validate(config)).to.equal(true);
    expect(config).to.deep.equal({
      directory: '/srv/drop',
      fileName: '{deliveryId}{ext}',
      sidecar: true,
      attachments: 'copy',
      fileMode: '0640',
    });
  });

  it('rejects unknown keys, unknown placeholders and unsafe patterns', () => {
    const validate = new Ajv2020({ allErrors: true }).compile(schema);
    const directory = '/srv/drop';
    const invalid: unknown[] = [
      {},
      { directory: '' },
      { directory, overwrite: true },
      { directory, fileName: '{deliveryId}{tenant}' },
      { directory, fileName: '.{deliveryId}' },
      { directory, fileName: '../{deliveryId}' },
      { directory, fileName: 'sub/{deliveryId}' },
      { directory, fileName: 'a b{ext}' },
      { directory, fileMode: '0999' },
      { directory, fileMode: 640 },
      { directory, attachments: 'link' },
      { directory, sidecar: 'yes' },
    ];
    for (const config of invalid) expect(validate(config), JSON.stringify(config)).to.equal(false);
  });

  it('closes the config object and describes every field', () => {
    expect(schema.additionalProperties).to.equal(false);
    for (const [name, property] of properties(schema)) {
      expect(property.description, `${name} needs a description`).to.be.a('string');
    }
  });

  it('lists every config field in the README table', () => {
    for (const [name] of properties(schema)) {
      expect(readme, `README table lacks ${name}`).to.match(new RegExp(`^\\|\\s*\`${name}\`\\s*\\|`, 'm'));
    }
  });

  it('writes the example configuration as documented', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-file-drop-example-'));
    try {
      const directory = path.join(root, 'eingang');
      const instance = fileDropAdapter.create(fakeContext(root), {
        ...(fileDropAdapter.example as object),
        directory,
      });
      const result = await instance.deliver!(makeDelivery(), new AbortController().signal);
      expect(result.remoteReference).to.equal(
        'antrag_057110000000_WSA-2026-00042_dlv-2b7c9e1f-4d3a-4e8b-a1c2-7f6e5d4c3b2a.xml',
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
