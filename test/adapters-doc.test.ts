import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { manifests } from '../adapters/index.js';
import { defineAdapter } from '../src/adapter-contract.js';
import {
  SECTION_END,
  SECTION_START,
  adapterSection,
  formatMarkdown,
  generatedSection,
  renderAdapterSection,
  replaceGeneratedSection,
} from '../src/adapters-doc.js';

const readmePath = (type: string): string =>
  fileURLToPath(new URL(`../adapters/${type}/README.md`, import.meta.url));

/** A manifest with every shape the renderer must handle; `create` is never called. */
const sample = defineAdapter({
  type: 'sample',
  version: '2.1.0',
  description: 'Test adapter.',
  capabilities: { outbound: true, inbound: false, poll: true },
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['target'],
    dependentRequired: { cert: ['key'] },
    properties: {
      target: {
        type: 'object',
        additionalProperties: false,
        required: ['path'],
        description: 'Where messages go.',
        properties: {
          path: { type: 'string', minLength: 1, description: 'Directory of the drop.' },
          depth: { type: 'integer', minimum: 1, maximum: 9, default: 2, description: 'Levels | deep.' },
        },
      },
      mode: { enum: ['fast', 'safe'], default: 'safe', description: 'How to write.' },
      cert: { type: 'string', description: 'Client certificate.' },
      key: { type: 'string', description: 'Its key.' },
      timeout: {
        default: '30s',
        description: 'How long to wait.',
        oneOf: [
          { type: 'integer', minimum: 1, description: 'Milliseconds.' },
          { type: 'string', pattern: '^[0-9]+(ms|s)$', description: 'Duration with unit.' },
        ],
      },
      auth: {
        description: 'How to log in.',
        default: { type: 'none' },
        oneOf: [
          {
            type: 'object',
            description: 'No login.',
            additionalProperties: false,
            required: ['type'],
            properties: { type: { const: 'none' } },
          },
          {
            type: 'object',
            additionalProperties: false,
            required: ['type', 'token'],
            properties: {
              type: { const: 'bearer', description: 'A bearer token.' },
              token: { type: 'string', description: 'The token.' },
            },
          },
        ],
      },
      reference: {
        description: 'Where the reference comes from.',
        oneOf: [
          {
            type: 'object',
            description: 'A header.',
            required: ['header'],
            properties: { header: { type: 'string', description: 'Header name.' } },
          },
          {
            type: 'object',
            required: ['pointer'],
            properties: { pointer: { type: 'string' } },
          },
        ],
      },
      routes: {
        type: 'array',
        minItems: 1,
        description: 'Routing table.',
        items: {
          type: 'object',
          required: ['ars'],
          properties: { ars: { type: 'string', description: 'ARS, quoted.' } },
        },
      },
      tags: { type: 'array', items: { type: 'string' }, uniqueItems: true, default: ['a'] },
      labels: {
        type: 'object',
        description: 'Per status.',
        propertyNames: { enum: ['OPEN', 'DONE'] },
        additionalProperties: { type: 'string', description: 'The label.' },
      },
    },
  },
  secrets: ['/auth/token'],
  example: {
    target: { path: '/srv/drop' },
    mode: 'fast',
    auth: { type: 'bearer', token: '${SAMPLE_TOKEN}' },
    routes: [{ ars: '059130000000' }],
  },
  create: () => ({}),
});

/** The table rows of a rendered section by field path: [type, required / default, description]. */
function tableRows(markdown: string): Map<string, readonly string[]> {
  const rows = new Map<string, readonly string[]>();
  for (const line of markdown.split('\n')) {
    const cells = line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((c) => c.trim());
    const path = /^`(.+)`$/.exec(cells[0] ?? '')?.[1];
    if (path !== undefined) rows.set(path, cells.slice(1));
  }
  return rows;
}

describe('adapter README sections', () => {
  for (const manifest of manifests) {
    it(`adapters/${manifest.type}/README.md holds the section generated from its manifest`, async () => {
      const file = readmePath(manifest.type);
      const section = generatedSection(readFileSync(file, 'utf8'));
      expect(section, `${file} needs the markers "${SECTION_START}" … "${SECTION_END}"`).to.be.a('string');
      expect(section, 'stale: run `npm run docs:adapters`').to.equal(await adapterSection(manifest, file));
    });
  }
});

describe('adapter section renderer', () => {
  const markdown = renderAdapterSection(sample);
  const rows = tableRows(markdown);

  it('flattens nested objects to dotted paths with required fields and defaults', () => {
    expect(rows.get('target')).to.deep.equal(['object', 'required', 'Where messages go.']);
    expect(rows.get('target.path')).to.deep.equal(['string', 'required', 'Directory of the drop.']);
    expect(rows.get('target.depth')).to.deep.equal(['integer, 1–9', 'default `2`', 'Levels \\| deep.']);
  });

  it('lists enum values and shows the default as it would be written in YAML', () => {
    expect(rows.get('mode')).to.deep.equal(['`fast` \\| `safe`', 'default `safe`', 'How to write.']);
    expect(rows.get('tags')).to.deep.equal(['array of string, no duplicates', 'default `[a]`', '']);
    expect(rows.get('auth')?.[1]).to.equal('default `{type: none}`');
  });

  it('names fields another field makes required', () => {
    expect(rows.get('key')?.[1]).to.equal('required with `cert`');
    expect(rows.get('cert')?.[1]).to.equal('optional');
  });

  it('describes scalar alternatives by their descriptions', () => {
    expect(rows.get('timeout')).to.deep.equal([
      'integer ≥ 1 (milliseconds) or string (duration with unit)',
      'default `30s`',
      'How long to wait.',
    ]);
  });

  it('explains object forms told apart by a constant, and marks the fields of each', () => {
    expect(rows.get('auth.type')).to.deep.equal([
      '`none` \\| `bearer`',
      'required',
      '`none`: No login. `bearer`: A bearer token.',
    ]);
    expect(rows.get('auth.token')).to.deep.equal([
      'string, secret',
      'required',
      'With `type: bearer`: The token.',
    ]);
  });

  it('numbers object forms without a constant and lists their fields', () => {
    expect(rows.get('reference')).to.deep.equal([
      'object, one of 2 forms',
      'optional',
      'Where the reference comes from. Form 1: `{ header }`, a header. Form 2: `{ pointer }`.',
    ]);
    expect(rows.get('reference.header')?.[2]).to.equal('In form 1: Header name.');
    expect(rows.get('reference.pointer')?.[2]).to.equal('In form 2.');
  });

  it('renders arrays of objects with [] and maps with their keys', () => {
    expect(rows.get('routes')).to.deep.equal([
      'array of object, at least 1 entry',
      'optional',
      'Routing table.',
    ]);
    expect(rows.get('routes[].ars')).to.deep.equal(['string', 'required', 'ARS, quoted.']);
    expect(rows.get('labels')).to.deep.equal([
      'map of string, keys `OPEN` \\| `DONE`',
      'optional',
      'Per status. Values: the label.',
    ]);
  });

  it('names the secrets with the way to pass them, and the capabilities', () => {
    expect(markdown).to.include('Secret fields (`auth.token`) are masked');
    expect(markdown).to.include('`${ENV_VAR}`');
    expect(markdown).to.include('`${file:/run/secrets/name}`');
    expect(markdown).to.include('Adapter type `sample`, version 2.1.0:');
    expect(markdown).to.include('- **outbound** (delivers messages): yes');
    expect(markdown).to.include('- **inbound** (receives messages pushed to the gateway): no');
    expect(markdown).to.match(
      /- \*\*poll\*\* \(fetches messages or status on a schedule\): yes; .*task: poll/,
    );
    expect(markdown).to.include('(keys not listed here are refused)');
  });

  it('shows the example as an adapter instance of gateway.yaml', () => {
    const block = /### Example[\s\S]*?```yaml\n([\s\S]*?)```/.exec(markdown);
    expect(block, 'example block').not.to.equal(null);
    expect(parse(block![1]!)).to.deep.equal({
      adapters: { sample: { type: 'sample', config: sample.example } },
    });
    expect(block![1]).to.include("ars: '059130000000'");
  });

  it('refuses a secret that names no field', () => {
    expect(() => renderAdapterSection({ ...sample, secrets: ['/auth/password'] })).to.throw(
      /secret \/auth\/password names no field/,
    );
  });

  it('formats to markdown prettier leaves alone', async () => {
    const file = readmePath('http');
    const formatted = await formatMarkdown(markdown, file);
    expect(await formatMarkdown(formatted, file)).to.equal(formatted);
    expect(tableRows(formatted)).to.deep.equal(rows);
  });

  it('replaces only the text between the markers', () => {
    const readme = `# sample\n\nintro\n\n${SECTION_START}\n\nold\n\n${SECTION_END}\n\n## Tests\n`;
    const updated = replaceGeneratedSection(readme, 'new table\n');
    expect(updated).to.equal(
      `# sample\n\nintro\n\n${SECTION_START}\n\nnew table\n\n${SECTION_END}\n\n## Tests\n`,
    );
    expect(generatedSection(updated)).to.equal('new table\n');
    expect(() => replaceGeneratedSection('# no markers\n', 'x')).to.throw(/markers/);
    expect(generatedSection(`${SECTION_START}\n${SECTION_START}\n${SECTION_END}`)).to.equal(undefined);
    expect(generatedSection(`${SECTION_START}\n${SECTION_END}\n${SECTION_END}`)).to.equal(undefined);
    expect(generatedSection(`${SECTION_END}\n${SECTION_START}`)).to.equal(undefined);
  });
});
