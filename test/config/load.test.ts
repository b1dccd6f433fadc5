import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defineAdapter } from '../../src/adapter-contract.js';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import { MAX_TIMER_MS } from '../../src/config/units.js';
import { AmtError } from '../../src/errors.js';

const testAdapter = defineAdapter<{ url: string; token?: string }>({
  type: 'test-http',
  version: '1.0.0',
  description: 'test adapter',
  capabilities: { outbound: true, inbound: false, poll: false },
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: { url: { type: 'string' }, token: { type: 'string' } },
  },
  secrets: ['/token'],
  example: { url: 'http://127.0.0.1:9999/' },
  create: () => ({}),
});
const manifests = [testAdapter];

const KEY_HASH = 'sha256:' + 'a'.repeat(64);
const valid = `
tenants:
  - { id: muenster, name: Stadt Münster, ars: '055150000000' }
clients:
  - { id: portal, keyHash: '${KEY_HASH}', tenants: [muenster] }
adapters:
  fv:
    type: test-http
    config: { url: 'http://fv.local/', token: '\${FV_TOKEN}' }
routes:
  - { id: r1, ars: '05515', service: '99058012104000', adapter: fv }
`;

function problemsOf(fn: () => unknown): {
  code: string;
  message: string;
  problems: readonly { path: string; message: string }[];
} {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(AmtError);
    const e = err as AmtError;
    return { code: e.code, message: e.message, problems: e.problems };
  }
  throw new Error('expected an error');
}

describe('config loader', () => {
  it('loads a valid file, substitutes secrets from the environment, applies defaults and freezes', () => {
    const config = parseConfig(valid, { manifests, env: { FV_TOKEN: 's3cr3t' } });
    expect(config.tenants[0]?.ars).to.equal('055150000000');
    expect((config.adapters.fv?.config as { token: string }).token).to.equal('s3cr3t');
    expect(config.server.port).to.equal(8080);
    expect(config.server.bodyLimitBytes).to.equal(1024 * 1024);
    expect(config.pipeline.leaseMs).to.equal(120_000);
    expect(config.routes[0]?.retry.maxAttempts).to.equal(12);
    expect(config.store.type).to.equal('sqlite');
    expect(Object.isFrozen(config)).to.equal(true);
    expect(Object.isFrozen(config.routes[0])).to.equal(true);
    expect(() => {
      (config.tenants as unknown as { id: string }[]).push({ id: 'x' });
    }).to.throw();
  });

  it('reads ${file:...} secrets and reports a missing variable with its path', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'amt-config-'));
    try {
      const secretFile = path.join(dir, 'token');
      writeFileSync(secretFile, 'from-file\n');
      const text = valid.replace('${FV_TOKEN}', `\${file:${secretFile}}`);
      const config = parseConfig(text, { manifests, env: {} });
      expect((config.adapters.fv?.config as { token: string }).token).to.equal('from-file');

      // A relative path is relative to the configuration file, not to the working directory.
      mkdirSync(path.join(dir, 'conf'));
      const relative = valid.replace('${FV_TOKEN}', '${file:../token}');
      const fromFile = parseConfig(relative, {
        manifests,
        env: {},
        source: path.join(dir, 'conf', 'gw.yaml'),
      });
      expect((fromFile.adapters.fv?.config as { token: string }).token).to.equal('from-file');
      const unreadable = problemsOf(() =>
        parseConfig(valid.replace('${FV_TOKEN}', '${file:nope}'), {
          manifests,
          env: {},
          source: path.join(dir, 'conf', 'gw.yaml'),
        }),
      );
      expect(unreadable.problems).to.deep.include({
        path: '/adapters/fv/config/token',
        message: `secret file ${path.join(dir, 'conf', 'nope')} cannot be read`,
      });

      const missing = problemsOf(() => parseConfig(valid, { manifests, env: {} }));
      expect(missing.code).to.equal('AMT_CONFIG_SECRET_MISSING');
      expect(missing.problems).to.deep.include({
        path: '/adapters/fv/config/token',
        message: 'environment variable FV_TOKEN is not set',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports missing secrets together with the other problems, without what their empty stand-ins cause', () => {
    const text = `server:\n  port: \${PORT}\n${valid.replace('adapter: fv', 'adapter: fw')}`;
    const err = problemsOf(() => parseConfig(text, { manifests, env: {} }));
    expect(err.code).to.equal('AMT_CONFIG_SECRET_MISSING');
    // The empty stand-in for the port fails the schema, which is not reported, and does not keep
    // the consistency checks from running: the route's unknown adapter is listed at once, so
    // a check without the production secrets (in CI, say) still shows everything else.
    expect(err.message).to.equal('the configuration references missing secrets and has other problems');
    expect(err.problems).to.deep.equal([
      { path: '/server/port', message: 'environment variable PORT is not set' },
      { path: '/adapters/fv/config/token', message: 'environment variable FV_TOKEN is not set' },
      { path: '/routes/0/adapter', message: 'no adapter instance has the id fw' },
    ]);

    // A schema problem of its own still stops there, as without missing secrets.
    const schema = problemsOf(() =>
      parseConfig(text.replace('adapter: fw', 'adapter: fw, colour: blue'), { manifests, env: {} }),
    );
    expect(schema.problems).to.deep.equal([
      { path: '/server/port', message: 'environment variable PORT is not set' },
      { path: '/adapters/fv/config/token', message: 'environment variable FV_TOKEN is not set' },
      { path: '/routes/0/colour', message: 'unknown key' },
    ]);

    // With the port set the route's unknown adapter is listed beside the missing token.
    const consistency = problemsOf(() => parseConfig(text, { manifests, env: { PORT: '8080' } }));
    expect(consistency.code).to.equal('AMT_CONFIG_SECRET_MISSING');
    expect(consistency.message).to.equal(
      'the configuration references missing secrets and has other problems',
    );
    expect(consistency.problems).to.deep.equal([
      { path: '/adapters/fv/config/token', message: 'environment variable FV_TOKEN is not set' },
      { path: '/routes/0/adapter', message: 'no adapter instance has the id fw' },
    ]);
  });

  it('reads a whole ${VAR} as the number or boolean the schema asks for, and as text elsewhere', () => {
    const text = `server:\n  port: \${PORT}\npipeline:\n  mappingThreads: \${THREADS}\n${valid}`;
    const env = { FV_TOKEN: '123456', PORT: '8085', THREADS: '0' };
    const config = parseConfig(text, { manifests, env });
    expect(config.server.port).to.equal(8085);
    expect(config.pipeline.mappingThreads).to.equal(0);
    // A string field keeps a numeric secret as text, quoted or not.
    expect((config.adapters.fv?.config as { token: string }).token).to.equal('123456');
    const block = text.replace(
      "config: { url: 'http://fv.local/', token: '${FV_TOKEN}' }",
      "config:\n      url: 'http://fv.local/'\n      token: ${FV_TOKEN}",
    );
    expect(block).to.include('      token: ${FV_TOKEN}');
    const unquotedToken = parseConfig(block, { manifests, env });
    expect((unquotedToken.adapters.fv?.config as { token: string }).token).to.equal('123456');
    // Quoted, as a flow mapping needs it, the same.
    const flow = text.replace('server:\n  port: ${PORT}', "server: { port: '${PORT}' }");
    expect(flow).to.include("server: { port: '${PORT}' }");
    expect(parseConfig(flow, { manifests, env }).server.port).to.equal(8085);
    // Text that is no number stays an error, and so does a reference with more around it.
    const cases: [string, string][] = [
      [text, '80a'],
      [text.replace('port: ${PORT}', 'port: 1${PORT}'), '808'],
    ];
    for (const [source, port] of cases) {
      const { problems } = problemsOf(() => parseConfig(source, { manifests, env: { ...env, PORT: port } }));
      expect(problems).to.deep.equal([{ path: '/server/port', message: 'must be integer' }]);
    }
  });

  it('keeps a literal ${ when escaped as $${', () => {
    const config = parseConfig(
      valid.replace('${FV_TOKEN}', () => 'pre$${LITERAL}'),
      { manifests, env: {} },
    );
    expect((config.adapters.fv?.config as { token: string }).token).to.equal('pre${LITERAL}');
  });

  it('lists every problem with its path: unknown keys, wrong types, adapter config, references', () => {
    const broken = `
tenants:
  - { id: muenster, name: Stadt Münster, ars: 55150000000, colour: blue }
clients:
  - { id: portal, keyHash: 'plain-text-key', tenants: [nowhere] }
adapters:
  fv:
    type: test-http
    config: { uri: 'http://fv.local/' }
  other:
    type: no-such-adapter
routes:
  - { id: r1, ars: '05515', service: '12345', adapter: fv }
extra: true
`;
    const { code, problems } = problemsOf(() => parseConfig(broken, { manifests, env: {} }));
    expect(code).to.equal('AMT_CONFIG_INVALID');
    const paths = problems.map((p) => p.path);
    expect(paths).to.include('/extra');
    expect(paths).to.include('/tenants/0/colour');
    expect(paths).to.include('/tenants/0/ars');
    expect(paths).to.include('/clients/0/keyHash');
    expect(paths).to.include('/adapters/fv/config/uri');
    expect(paths).to.include('/adapters/fv/config/url');
    expect(paths).to.include('/adapters/other/type');
    expect(paths).to.include('/routes/0/service');
  });

  it('checks cross references after the schema: unknown adapter instance, unknown tenant, duplicates', () => {
    const text = `
tenants:
  - { id: muenster, name: Stadt Münster, ars: '055150000000' }
  - { id: muenster, name: Doppelt, ars: '055150000000' }
clients:
  - { id: portal, keyHash: '${KEY_HASH}', tenants: [nowhere] }
adapters:
  fv: { type: test-http, config: { url: 'http://fv.local/' } }
routes:
  - { id: r1, ars: '05515', service: '99058012104000', adapter: missing }
  - { id: r2, ars: '05515', service: '99058012104000', adapter: fv }
`;
    const { problems } = problemsOf(() => parseConfig(text, { manifests, env: {} }));
    const messages = problems.map((p) => `${p.path} ${p.message}`);
    expect(messages).to.include('/tenants/1/id duplicate id muenster');
    expect(messages).to.include('/tenants/1/ars ARS 055150000000 is already used by tenant muenster');
    expect(messages).to.include('/clients/0/tenants/0 no tenant has the id nowhere');
    expect(messages).to.include('/routes/0/adapter no adapter instance has the id missing');
    expect(messages.some((m) => m.startsWith('/routes/1 route r1 already serves'))).to.equal(true);
  });

  it('rejects invalid YAML and duplicate keys with a line number', () => {
    const { code, problems } = problemsOf(() => parseConfig('tenants: [\n  a: b\n', { manifests }));
    expect(code).to.equal('AMT_CONFIG_INVALID');
    expect(problems[0]?.path).to.match(/^line \d+/);
    const dup = problemsOf(() => parseConfig('tenants: []\ntenants: []\n', { manifests }));
    expect(dup.code).to.equal('AMT_CONFIG_INVALID');
  });

  it('bounds the JSON body limit at 100mb, which is held in memory; attachments may be larger', () => {
    const withServer = (server: string): string => valid.replace('${FV_TOKEN}', 'x') + `server: ${server}\n`;
    const { code, problems } = problemsOf(() =>
      parseConfig(withServer('{ bodyLimit: 101mb }'), { manifests }),
    );
    expect(code).to.equal('AMT_CONFIG_INVALID');
    expect(problems.map((p) => p.path)).to.deep.equal(['/server/bodyLimit']);
    const config = parseConfig(withServer('{ bodyLimit: 100mb, attachmentLimit: 4gb }'), { manifests });
    expect(config.server.bodyLimitBytes).to.equal(100 * 1024 * 1024);
    expect(config.server.attachmentLimitBytes).to.equal(4 * 1024 ** 3);
  });

  it('counts a wait or timeout longer than a Node timer can wait as the longest one', () => {
    const config = parseConfig(
      valid.replace('${FV_TOKEN}', 'x') +
        'pipeline: { deliveryTimeout: 30d, pollInterval: 9999999999, drainTimeout: 10s, lease: 30d }\n',
      { manifests },
    );
    expect(config.pipeline.deliveryTimeoutMs).to.equal(MAX_TIMER_MS);
    expect(config.pipeline.pollIntervalMs).to.equal(MAX_TIMER_MS);
    expect(config.pipeline.drainTimeoutMs).to.equal(10_000);
    // A lease is a point in time in the store, not a timer: kept as given.
    expect(config.pipeline.leaseMs).to.equal(30 * 86_400_000);
    expect(MAX_TIMER_MS).to.equal(2 ** 31 - 1);
  });

  it('refuses aliases that expand into a "billion laughs"', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (const name of 'bcdefgh') {
      const previous = String.fromCharCode(name.charCodeAt(0) - 1);
      levels.push(`${name}: &${name} [${Array(10).fill(`*${previous}`).join(', ')}]`);
    }
    const { code, problems } = problemsOf(() => parseConfig(levels.join('\n'), { manifests }));
    expect(code).to.equal('AMT_CONFIG_INVALID');
    expect(problems).to.deep.equal([
      {
        path: '/',
        message:
          'its aliases (*name) expand too far: each may be used a few times, not nested into thousands',
      },
    ]);
  });

  it('refuses a file that is not UTF-8, naming the line', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'amt-config-'));
    try {
      const file = path.join(dir, 'gateway.yaml');
      const latin1 = Buffer.from(
        valid.replace('${FV_TOKEN}', 'x').replace('Münster', 'M\u00fcnster'),
        'latin1',
      );
      writeFileSync(file, latin1);
      const { code, problems } = problemsOf(() => loadConfigFile(file, { manifests }));
      expect(code).to.equal('AMT_CONFIG_INVALID');
      expect(problems).to.deep.equal([{ path: 'line 3', message: 'is not valid UTF-8' }]);
      // The same text in UTF-8, with a byte order mark, is fine.
      writeFileSync(
        file,
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(latin1.toString('latin1'))]),
      );
      expect(loadConfigFile(file, { manifests }).tenants[0]?.name).to.equal('Stadt Münster');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resolves relative paths against the file and reports an unreadable file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'amt-config-'));
    try {
      const file = path.join(dir, 'gateway.yaml');
      writeFileSync(file, valid.replace('${FV_TOKEN}', 'x') + 'dataDir: ./state\n');
      const config = loadConfigFile(file, { manifests });
      expect(config.dataDir).to.equal(path.join(dir, 'state'));
      expect(config.store).to.deep.equal({ type: 'sqlite', path: path.join(dir, 'state', 'amtsbote.db') });
      expect(config.source).to.equal(file);
      expect(problemsOf(() => loadConfigFile(path.join(dir, 'nope.yaml'), { manifests })).code).to.equal(
        'AMT_CONFIG_UNREADABLE',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('route retry settings override the global policy field by field', () => {
    const text =
      valid.replace('${FV_TOKEN}', 'x').replace('adapter: fv }', 'adapter: fv, retry: { maxAttempts: 3 } }') +
      'retry: { initialDelay: 500ms, maxDelay: 1m }\n';
    const config = parseConfig(text, { manifests });
    expect(config.retry.initialDelayMs).to.equal(500);
    expect(config.routes[0]?.retry).to.deep.equal({
      maxAttempts: 3,
      initialDelayMs: 500,
      maxDelayMs: 60_000,
      multiplier: 2,
      jitter: 0.2,
    });
  });
});

describe('config loader: scheduled jobs', () => {
  const pollAdapter = defineAdapter<Record<string, never>>({
    type: 'test-inbox',
    version: '1.0.0',
    description: 'test adapter that polls',
    capabilities: { outbound: false, inbound: true, poll: true },
    configSchema: { type: 'object', additionalProperties: false },
    secrets: [],
    example: {},
    create: () => ({}),
  });
  const withPoll = [testAdapter, pollAdapter];
  const withInbox = valid.replace('adapters:\n', 'adapters:\n  inbox:\n    type: test-inbox\n');

  function load(jobs: string) {
    return parseConfig(`${withInbox}jobs:\n${jobs}`, { manifests: withPoll, env: { FV_TOKEN: 'x' } });
  }

  it('has no jobs when the section is absent', () => {
    expect(parseConfig(valid, { manifests, env: { FV_TOKEN: 'x' } }).jobs).to.deep.equal([]);
  });

  it('reads built-in and adapter jobs with their defaults', () => {
    const config = load(`
  - name: purge
    schedule: '30 2 * * *'
    run: { builtin: retention-purge }
    options: { days: 30, routes: [r1] }
  - name: inbox-poll
    schedule: '*/10 * * * * *'
    timezone: UTC
    run: { adapter: inbox, task: poll }
    overlap: queue
    missed: run-once
    timeout: 30s
  - name: digest
    schedule: '0 8 * * 1-5'
    run: { builtin: dead-letter-digest }
`);
    expect(config.jobs).to.deep.equal([
      {
        name: 'purge',
        schedule: '30 2 * * *',
        timezone: 'Europe/Berlin',
        run: { builtin: 'retention-purge' },
        overlap: 'skip',
        missed: 'skip',
        timeoutMs: 300_000,
        options: { days: 30, routes: ['r1'] },
      },
      {
        name: 'inbox-poll',
        schedule: '*/10 * * * * *',
        timezone: 'UTC',
        run: { adapter: 'inbox', task: 'poll' },
        overlap: 'queue',
        missed: 'run-once',
        timeoutMs: 30_000,
        options: undefined,
      },
      {
        name: 'digest',
        schedule: '0 8 * * 1-5',
        timezone: 'Europe/Berlin',
        run: { builtin: 'dead-letter-digest' },
        overlap: 'skip',
        missed: 'skip',
        timeoutMs: 300_000,
        options: {},
      },
    ]);
    expect(Object.isFrozen(config.jobs[0]?.options)).to.equal(true);
  });

  it('checks schedules with node-cron, time zones, names and adapters that can poll', () => {
    const { code, problems } = problemsOf(() =>
      load(`
  - { name: a, schedule: '61 * * * *', run: { builtin: dead-letter-digest } }
  - { name: a, schedule: '* * * * *', timezone: Europe/Bonn, run: { builtin: dead-letter-digest } }
  - { name: b, schedule: '* * * * *', run: { adapter: fv, task: poll } }
  - { name: c, schedule: '* * * * *', run: { adapter: nowhere, task: poll } }
  - { name: d, schedule: '* * * * *', run: { builtin: retention-purge }, options: { days: 7, routes: [r1, r9] } }
`),
    );
    expect(code).to.equal('AMT_CONFIG_INVALID');
    expect(problems).to.deep.equal([
      { path: '/jobs/0/schedule', message: 'not a cron expression: 61 * * * *' },
      { path: '/jobs/1/name', message: 'duplicate job name a' },
      { path: '/jobs/1/timezone', message: 'unknown time zone Europe/Bonn' },
      { path: '/jobs/2/run/adapter', message: 'adapter instance fv (type test-http) cannot poll' },
      { path: '/jobs/3/run/adapter', message: 'no adapter instance has the id nowhere' },
      { path: '/jobs/4/options/routes/1', message: 'no route has the id r9' },
    ]);
  });

  it('checks a built-in job’s options against its schema', () => {
    const paths = (jobs: string) => problemsOf(() => load(jobs)).problems.map((p) => p.path);
    expect(paths(`  - { name: p, schedule: '@daily', run: { builtin: retention-purge } }`)).to.deep.equal([
      '/jobs/0/options',
    ]);
    expect(
      paths(
        `  - { name: p, schedule: '@daily', run: { builtin: retention-purge }, options: { days: 0, keep: true } }`,
      ),
    ).to.have.members(['/jobs/0/options/days', '/jobs/0/options/keep']);
    expect(
      paths(`  - { name: p, schedule: '@daily', run: { adapter: inbox, task: poll }, options: { days: 3 } }`),
    ).to.include('/jobs/0');
    expect(paths(`  - { name: p, schedule: '@daily', run: { builtin: coffee } }`)).to.include(
      '/jobs/0/run/builtin',
    );
    expect(
      paths(
        `  - { name: p, schedule: '@daily', run: { builtin: dead-letter-digest }, options: { webhook: { url: 'ftp://x' } } }`,
      ),
    ).to.deep.equal(['/jobs/0/options/webhook/url']);
  });
});
