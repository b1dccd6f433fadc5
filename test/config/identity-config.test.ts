import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defineAdapter } from '../../src/adapter-contract.js';
import { loadConfigFile } from '../../src/config/load.js';
import { AmtError } from '../../src/errors.js';

const testAdapter = defineAdapter({
  type: 'test',
  version: '1.0.0',
  description: 'does nothing; only its type is needed',
  capabilities: { outbound: true, inbound: false, poll: false },
  configSchema: { type: 'object' },
  secrets: [],
  example: {},
  create: () => ({}),
});
const manifests = [testAdapter];

const KEY_HASH = 'sha256:' + 'b'.repeat(64);
const base = `
tenants:
  - { id: muenster, name: Stadt Münster, ars: '055150000000' }
clients:
  - { id: portal, keyHash: '${KEY_HASH}', tenants: [muenster] }
adapters:
  dms: { type: test }
`;

function spKeyPem(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function failure(run: () => unknown): AmtError {
  try {
    run();
  } catch (err) {
    expect(err).to.be.instanceOf(AmtError);
    return err as AmtError;
  }
  expect.fail('expected the configuration to be refused');
}

describe('config: identity section and route trust levels', () => {
  let dir: string;
  let keyPem: string;
  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  before(() => {
    keyPem = spKeyPem();
  });
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-identity-config-'));
    mkdirSync(path.join(dir, 'idp'));
    mkdirSync(path.join(dir, 'secrets'));
    write('idp/bundid.xml', '<md:EntityDescriptor/>');
    write('idp/servicekonto.xml', '<md:EntityDescriptor/>');
    write('secrets/sp-key.pem', keyPem);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves metadata and key paths against the configuration file, reads the key and defaults the clock skew', () => {
    const file = write(
      'gateway.yaml',
      `${base}
identity:
  idps:
    - metadata: idp/bundid.xml
    - metadata: ${path.join(dir, 'idp/servicekonto.xml')}
  audience: https://amtsbote.stadt-muenster.example/saml/sp
  spDecryptionKey: secrets/sp-key.pem
routes:
  - { id: parking, ars: '05515', service: '99058012104000', adapter: dms, minTrustLevel: substantiell }
  - { id: open, ars: '05515', service: '99058012104001', adapter: dms }
`,
    );
    const config = loadConfigFile(file, { manifests });
    expect(config.identity).to.deep.equal({
      idps: [
        { metadata: path.join(dir, 'idp/bundid.xml') },
        { metadata: path.join(dir, 'idp/servicekonto.xml') },
      ],
      audience: 'https://amtsbote.stadt-muenster.example/saml/sp',
      recipient: undefined,
      clockSkewMs: 120_000,
      spDecryptionKeys: [keyPem],
    });
    expect(config.routes[0]?.minTrustLevel).to.equal('substantiell');
    expect(config.routes[1]?.minTrustLevel).to.equal(undefined);
    expect(Object.isFrozen(config.identity)).to.equal(true);
    expect(Object.isFrozen(config.identity?.idps[0])).to.equal(true);
  });

  it('takes a recipient, a clock skew and a list of SP keys for a key rollover', () => {
    const next = spKeyPem();
    write('secrets/sp-key-next.pem', next);
    const file = write(
      'gateway.yaml',
      `${base}
identity:
  idps: [{ metadata: idp/bundid.xml }]
  audience: https://amtsbote.stadt-muenster.example/saml/sp
  recipient: https://portal.stadt-muenster.example/saml/acs
  clockSkew: 30s
  spDecryptionKey: [secrets/sp-key.pem, secrets/sp-key-next.pem]
routes: []
`,
    );
    const identity = loadConfigFile(file, { manifests }).identity;
    expect(identity?.recipient).to.equal('https://portal.stadt-muenster.example/saml/acs');
    expect(identity?.clockSkewMs).to.equal(30_000);
    expect(identity?.spDecryptionKeys).to.deep.equal([keyPem, next]);
  });

  it('without an identity section there is none, and routes require no trust level', () => {
    const file = write(
      'gateway.yaml',
      `${base}
routes:
  - { id: parking, ars: '05515', service: '99058012104000', adapter: dms }
`,
    );
    const config = loadConfigFile(file, { manifests });
    expect(config.identity).to.equal(undefined);
    expect(config.routes[0]?.minTrustLevel).to.equal(undefined);
  });

  it('a route with minTrustLevel needs the identity section', () => {
    const file = write(
      'gateway.yaml',
      `${base}
routes:
  - { id: open, ars: '05515', service: '99058012104001', adapter: dms }
  - { id: parking, ars: '05515', service: '99058012104000', adapter: dms, minTrustLevel: hoch }
`,
    );
    const err = failure(() => loadConfigFile(file, { manifests }));
    expect(err.code).to.equal('AMT_CONFIG_INVALID');
    expect(err.problems).to.deep.equal([
      {
        path: '/routes/1/minTrustLevel',
        message: 'a route that requires a trust level needs the identity section',
      },
    ]);
  });

  it('refuses an unknown trust level, unknown keys and a section without IdPs or audience', () => {
    const file = write(
      'gateway.yaml',
      `${base}
identity:
  idps: []
  audiences: https://amtsbote.stadt-muenster.example/saml/sp
routes:
  - { id: parking, ars: '05515', service: '99058012104000', adapter: dms, minTrustLevel: STORK-QAA-Level-3 }
`,
    );
    const err = failure(() => loadConfigFile(file, { manifests }));
    expect(err.code).to.equal('AMT_CONFIG_INVALID');
    const paths = err.problems.map((p) => `${p.path}: ${p.message}`);
    expect(paths).to.include('/routes/0/minTrustLevel: must be one of: basis, substantiell, hoch');
    expect(paths).to.include('/identity/audiences: unknown key');
    expect(paths).to.include('/identity/audience: is required');
    expect(paths.some((p) => p.startsWith('/identity/idps:'))).to.equal(true);
  });

  it('a missing SP key file is a missing secret; an unreadable metadata file is named too', () => {
    const file = write(
      'gateway.yaml',
      `${base}
identity:
  idps: [{ metadata: idp/gone.xml }]
  audience: https://amtsbote.stadt-muenster.example/saml/sp
  spDecryptionKey: secrets/gone.pem
routes: []
`,
    );
    const err = failure(() => loadConfigFile(file, { manifests }));
    expect(err.code).to.equal('AMT_CONFIG_SECRET_MISSING');
    expect(err.problems.map((p) => p.path)).to.deep.equal([
      '/identity/idps/0/metadata',
      '/identity/spDecryptionKey',
    ]);
    expect(err.problems[1]?.message).to.include(path.join(dir, 'secrets/gone.pem'));
  });

  it('a key file that holds no private key is refused, and the key never appears in a message', () => {
    write('secrets/not-a-key.pem', 'certainly-not-a-key-7731');
    const file = write(
      'gateway.yaml',
      `${base}
identity:
  idps: [{ metadata: idp/bundid.xml }]
  audience: https://amtsbote.stadt-muenster.example/saml/sp
  spDecryptionKey: [secrets/not-a-key.pem, '\${file:${path.join(dir, 'secrets/sp-key.pem')}}']
routes: []
`,
    );
    const err = failure(() => loadConfigFile(file, { manifests }));
    expect(err.code).to.equal('AMT_CONFIG_INVALID');
    expect(err.problems.map((p) => p.path)).to.deep.equal([
      '/identity/spDecryptionKey/0',
      '/identity/spDecryptionKey/1',
    ]);
    expect(err.problems[1]?.message).to.equal('give the path of the PEM file, not the key itself');
    const everything = JSON.stringify({ message: err.message, problems: err.problems });
    expect(everything).to.not.include('certainly-not-a-key-7731');
    expect(everything).to.not.include(keyPem.split('\n')[1]!);
  });
});
