import path from 'node:path';
import { expect } from 'chai';
import type { AdapterManifest } from '../../src/adapter-contract.js';
import { parseConfig } from '../../src/config/load.js';
import { AmtError } from '../../src/errors.js';

const manifests: AdapterManifest[] = [
  {
    type: 'test',
    version: '1.0.0',
    description: 'test',
    capabilities: { outbound: true, inbound: false, poll: false },
    configSchema: { type: 'object' },
    secrets: [],
    example: {},
    create: () => ({}),
  },
];
// A stand-in of the postbox adapter: only postbox and fit-connect instances may carry notices.
manifests.push({ ...manifests[0]!, type: 'postbox', statusNotices: () => undefined });

const yaml = (clients: string, route = '') => `
tenants:
  - { id: muenster, name: Stadt Münster, ars: '055150000000' }
clients:
${clients}
adapters:
  gewerbe: { type: test }
  postfach: { type: postbox }
routes:
  - id: gewerbe
    ars: '05515'
    service: '99050012104000'
    adapter: gewerbe
${route}
`;

const portal = `  - id: portal
    keyHash: sha256:${'a'.repeat(64)}
    tenants: [muenster]`;

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, { manifests, env, source: '/etc/amtsbote/gateway.yaml' });
  } catch (err) {
    expect(err).to.be.instanceOf(AmtError);
    return (err as AmtError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('the configuration was accepted');
}

describe('status: configuration', () => {
  it('reads webhooks with secrets from the environment, status reporters, status mappings and postbox notices', () => {
    const config = parseConfig(
      yaml(
        `${portal}
    webhook: { url: 'https://portal.example/hooks', secret: '\${PORTAL_WEBHOOK_SECRET}' }
  - id: fv
    keyHash: sha256:${'b'.repeat(64)}
    tenants: [muenster]
    statusReporter: [gewerbe]
  - id: fv-all
    keyHash: sha256:${'c'.repeat(64)}
    statusReporter: true
  - id: nobody
    keyHash: sha256:${'d'.repeat(64)}
    statusReporter: false`,
        `    statusMapping: mappings/gewerbe/status.yaml
    postbox:
      adapter: postfach
      subject: 'Ihr Antrag {reference}'
      templates: { COMPLETED: 'Fertig.[ {text}]' }`,
      ),
      {
        manifests,
        env: { PORTAL_WEBHOOK_SECRET: 'whsec-from-the-environment' },
        source: '/etc/amtsbote/gateway.yaml',
      },
    );
    const [p, fv, fvAll, nobody] = config.clients;
    expect(p!.webhook).to.deep.equal({
      url: 'https://portal.example/hooks',
      secret: 'whsec-from-the-environment',
    });
    expect(p!.statusReporter).to.equal(undefined);
    expect(fv!.statusReporter).to.deep.equal(['gewerbe']);
    expect(fvAll!.statusReporter).to.equal(true);
    expect(nobody!.statusReporter).to.equal(undefined);
    const [route] = config.routes;
    expect(route!.statusMapping).to.equal(path.resolve('/etc/amtsbote/mappings/gewerbe/status.yaml'));
    expect(route!.postbox).to.deep.equal({
      adapter: 'postfach',
      subject: 'Ihr Antrag {reference}',
      templates: { COMPLETED: 'Fertig.[ {text}]' },
    });
    expect(Object.isFrozen(route!.postbox)).to.equal(true);
  });

  it('names unknown adapter instances, broken templates and weak webhook secrets', () => {
    const found = problems(
      yaml(
        `${portal}
    statusReporter: [gewerbe, dms]`,
        `    postbox: { adapter: briefkasten, subject: 'Antrag {antragsteller}', templates: { COMPLETED: '[offen' } }`,
      ),
    );
    expect(found).to.include('/clients/0/statusReporter/1: no adapter instance has the id dms');
    expect(found).to.include('/routes/0/postbox/adapter: no adapter instance has the id briefkasten');
    expect(
      found.some((p) => p.startsWith('/routes/0/postbox/subject: unknown placeholder {antragsteller}')),
    ).to.equal(true);
    expect(found).to.include('/routes/0/postbox/templates/COMPLETED: a [ is not closed');

    expect(
      problems(
        yaml(`${portal}
    webhook: { url: 'https://portal.example/hooks', secret: kurz }`),
      ).join('\n'),
    ).to.include('/clients/0/webhook/secret');
    expect(
      problems(
        yaml(`${portal}
    webhook: { url: 'https://portal.example/hooks', secret: '\${MISSING}' }`),
      ),
    ).to.deep.equal(['/clients/0/webhook/secret: environment variable MISSING is not set']);
    expect(problems(yaml(portal, `    postbox: { adapter: postfach, templates: { DONE: 'x' } }`))).to.include(
      '/routes/0/postbox/templates: must be one of: RECEIVED, PROCESSING, ACTION_REQUIRED, COMPLETED, REJECTED',
    );
  });
});
