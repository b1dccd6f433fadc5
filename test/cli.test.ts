import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { manifests } from '../adapters/index.js';
import { ADMIN_KEY, freePort, spawnGateway, submit, writeGatewayConfig } from './support/gateway-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

async function amtsbote(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return amtsboteWithEnv({}, ...args);
}

async function amtsboteWithEnv(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'src/main.ts'), ...args],
      {
        cwd: ROOT,
        env: { ...process.env, AMTSBOTE_CONFIG: '', ...env },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('amtsbote CLI', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'amt-cli-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('check accepts the demo configuration', async () => {
    const result = await amtsbote('check', '-c', 'examples/gateway.yaml');
    expect(result.stderr).to.equal('');
    expect(result.code).to.equal(0);
    expect(result.stdout).to.match(
      /configuration ok: 1 tenant\(s\), 2 client\(s\), 1 adapter instance\(s\), 1 route\(s\), store sqlite/,
    );
  });

  it('check exits non-zero and prints every problem with its path', async () => {
    const file = path.join(dir, 'broken.yaml');
    writeFileSync(
      file,
      `tenants: [{ id: a, name: A, ars: 5515 }]
clients: []
adapters: { out: { type: file-drop, config: { directory: /tmp/x, colour: red } } }
routes: [{ id: r, ars: '05515', service: '99058012104000', adapter: nowhere }]
surprise: 1
`,
    );
    const result = await amtsbote('check', '-c', file);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include('AMT_CONFIG_INVALID');
    expect(result.stderr).to.include('/tenants/0/ars');
    expect(result.stderr).to.include('/adapters/out/config/colour: unknown key');
    expect(result.stderr).to.include('/surprise: unknown key');
  });

  /** A mapping file with a typo in its one rule, and what `check` says about it under route 0. */
  function typoMapping(name: string): string[] {
    const file = path.join(dir, name);
    writeFileSync(
      file,
      'source: { format: json }\ntarget: { format: json }\nrules:\n  - { to: name, frm: x }\n',
    );
    return [
      `  /routes/0/mapping: ${file}:4: rules[0] (to: name): unknown key "frm" (did you mean from?)`,
      `  /routes/0/mapping: ${file}:4: rules[0] (to: name): a rule needs a value: from, value, template, uuid, now, jsonata (or default)`,
    ];
  }

  it("check compiles the routes' mappings and names each problem under its route", async () => {
    const typo = typoMapping('typo.mapping.yaml');
    const file = path.join(dir, 'mappings.yaml');
    writeFileSync(
      file,
      `dataDir: ${dir}
tenants: [{ id: a, name: A, ars: '055150000000' }]
clients: []
adapters: { out: { type: file-drop, config: { directory: ${path.join(dir, 'out')} } } }
routes:
  - { id: typo, ars: '05515', service: '99058012104000', adapter: out, mapping: typo.mapping.yaml }
  - { id: absent, ars: '05515', service: '99058013001000', adapter: out, mapping: absent.mapping.yaml }
  - { id: shipped, ars: '05515', service: '99058013001001', adapter: out,
      mapping: ${path.join(ROOT, 'mappings/bewohnerparken/bewohnerparken.mapping.yaml')} }
`,
    );
    const result = await amtsbote('check', '-c', file);
    expect(result.code).to.equal(1);
    expect(result.stdout).to.equal('');
    const lines = result.stderr.trim().split('\n');
    expect(lines[0]).to.equal("AMT_MAPPING_COMPILE_FAILED: a route's mapping does not compile");
    expect(lines.slice(1)).to.deep.equal([
      ...typo,
      `  /routes/1/mapping: ${path.join(dir, 'absent.mapping.yaml')}: cannot read the file`,
    ]);
  });

  it("check without the secrets still compiles the routes' mappings", async () => {
    const typo = typoMapping('typo2.mapping.yaml');
    const file = path.join(dir, 'secrets.yaml');
    writeFileSync(
      file,
      `dataDir: ${dir}
tenants: [{ id: a, name: A, ars: '055150000000' }]
clients: [{ id: portal, keyHash: '\${AMT_CLI_TEST_UNSET_KEY_HASH}', tenants: [a] }]
adapters: { out: { type: file-drop, config: { directory: ${path.join(dir, 'out')} } } }
routes:
  - { id: typo, ars: '05515', service: '99058012104000', adapter: out, mapping: typo2.mapping.yaml }
`,
    );
    const result = await amtsbote('check', '-c', file);
    expect(result.code).to.equal(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).to.deep.equal([
      'AMT_CONFIG_SECRET_MISSING: the configuration references missing secrets and has other problems',
      '  /clients/0/keyHash: environment variable AMT_CLI_TEST_UNSET_KEY_HASH is not set',
      ...typo,
    ]);
  });

  it('--version prints the version of the package', async () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const result = await amtsbote(flag);
      expect(result.code, flag).to.equal(0);
      expect(result.stdout, flag).to.equal(`${pkg.version}\n`);
    }
  });

  it('check names a missing file', async () => {
    const result = await amtsbote('check', '-c', path.join(dir, 'absent.yaml'));
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include('absent.yaml');
  });

  it('every adapter’s documented example passes check', async () => {
    for (const manifest of manifests) {
      const file = path.join(dir, `example-${manifest.type}.yaml`);
      writeFileSync(
        file,
        stringify({
          dataDir: dir,
          tenants: [{ id: 'muenster', name: 'Stadt Münster', ars: '055150000000' }],
          clients: [],
          adapters: { example: { type: manifest.type, config: manifest.example } },
          routes: [{ id: 'r', ars: '05515', service: '99058012104000', adapter: 'example' }],
        }),
      );
      // Examples reference secrets as ${VAR}; give each a value as an operator's environment would.
      const variables = [...JSON.stringify(manifest.example).matchAll(/\$\{([A-Z0-9_]+)\}/g)].map(
        (m) => m[1]!,
      );
      const env = Object.fromEntries(variables.map((name) => [name, `value-of-${name}`]));
      const result = await amtsboteWithEnv(env, 'check', '-c', file);
      expect(result.stderr, manifest.type).to.equal('');
      expect(result.code, manifest.type).to.equal(0);
    }
  });

  it('config schema prints the composed JSON Schema with every adapter', async () => {
    const result = await amtsbote('config', 'schema');
    expect(result.code).to.equal(0);
    const schema = JSON.parse(result.stdout) as {
      $defs: { adapterInstance: { properties: { type: { enum: string[] } } } };
    };
    expect(schema.$defs.adapterInstance.properties.type.enum).to.deep.equal(manifests.map((m) => m.type));
  });

  it('adapters list prints the manifests, as text and as JSON', async () => {
    const text = await amtsbote('adapters', 'list');
    expect(text.code).to.equal(0);
    for (const m of manifests) expect(text.stdout).to.include(m.type);
    const json = JSON.parse((await amtsbote('adapters', 'list', '--json')).stdout) as {
      type: string;
      secrets: string[];
    }[];
    expect(json.map((m) => m.type)).to.deep.equal(manifests.map((m) => m.type));
  });

  it('hash-key prints the keyHash of a key and generates one when asked', async () => {
    const known = await amtsbote('hash-key', 'demo-portal-key');
    expect(known.stdout.trim()).to.equal(
      'keyHash: sha256:9bdc095594e27a33d12a48fd6ed8d3b3a4bb7abc6219b82867f2b5660b13be90',
    );
    const generated = await amtsbote('hash-key');
    expect(generated.stdout).to.match(/^key: +\S{43}\nkeyHash: sha256:[0-9a-f]{64}\n$/);
  });

  it('migrate, jobs list, jobs run and jobs history work on a configuration of their own', async () => {
    const file = path.join(dir, 'jobs.yaml');
    writeFileSync(
      file,
      stringify({
        dataDir: path.join(dir, 'jobs-data'),
        tenants: [{ id: 'dortmund', name: 'Stadt Dortmund', ars: '059130000000' }],
        clients: [],
        adapters: { outbox: { type: 'file-drop', config: { directory: path.join(dir, 'jobs-out') } } },
        routes: [{ id: 'parken', ars: '05913', service: '99058013001000', adapter: 'outbox' }],
        jobs: [
          {
            name: 'retention',
            schedule: '30 2 * * *',
            run: { builtin: 'retention-purge' },
            options: { days: 90 },
          },
          { name: 'outbox-poll', schedule: '*/5 * * * *', run: { adapter: 'outbox', task: 'poll' } },
        ],
      }),
    );
    const migrated = await amtsbote('migrate', '-c', file);
    expect(migrated.code, migrated.stderr).to.equal(0);
    expect(migrated.stdout).to.match(/schema version \d+ \(migrated from version 0\)/);
    const list = await amtsbote('jobs', 'list', '-c', file, '--json');
    expect(list.code, list.stderr).to.equal(0);
    expect(JSON.parse(list.stdout).map((j: { name: string }) => j.name)).to.deep.equal([
      'retention',
      'outbox-poll',
    ]);
    const ran = await amtsbote('jobs', 'run', 'retention', '-c', file);
    expect(ran.code, ran.stderr).to.equal(0);
    const history = await amtsbote('jobs', 'history', 'retention', '-c', file, '--json');
    expect(JSON.parse(history.stdout)[0]).to.include({
      job: 'retention',
      trigger: 'manual',
      status: 'succeeded',
    });
  });

  it('an unknown command is a usage error', async () => {
    const result = await amtsbote('frobnicate');
    expect(result.code).to.equal(2);
  });

  it('admin commands say what is wrong with the connection: no gateway, not a URL, not the gateway', async () => {
    const env = { AMTSBOTE_ADMIN_KEY: 'k', AMTSBOTE_URL: '' };
    const closed = await freePort();
    const refused = await amtsboteWithEnv(env, 'messages', 'list', '--url', `http://127.0.0.1:${closed}`);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.include(
      `cannot reach the gateway at http://127.0.0.1:${closed}: ECONNREFUSED — is it running? (--url or AMTSBOTE_URL)`,
    );
    const notUrl = await amtsboteWithEnv(env, 'dead-letters', '--url', 'gateway:8080/x y');
    expect(notUrl.code).to.equal(1);
    expect(notUrl.stderr).to.include('the gateway URL gateway:8080/x y is not a URL');
    const other = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html/>'),
    );
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
      const wrong = await amtsboteWithEnv(env, 'messages', 'show', 'x', '--url', url);
      expect(wrong.code).to.equal(1);
      expect(wrong.stderr).to.include(
        `${url} answered 200 with something other than JSON — is it the gateway?`,
      );
    } finally {
      other.close();
    }
  });

  it('replay --retrying sends the messages waiting for their next retry now', async () => {
    const refusing = await freePort(); // nothing listens there: every delivery is retried
    const port = await freePort();
    const gatewayDir = mkdtempSync(path.join(dir, 'retrying-'));
    const config = writeGatewayConfig({ dir: gatewayDir, receiverUrl: `http://127.0.0.1:${refusing}`, port });
    // The next retry an hour away, so the message stays `retrying` until the replay.
    writeFileSync(
      config,
      readFileSync(config, 'utf8').replace(
        'retry: { maxAttempts: 50, initialDelay: 50ms, maxDelay: 1s }',
        'retry: { maxAttempts: 50, initialDelay: 1h, maxDelay: 1h }',
      ),
    );
    expect(readFileSync(config, 'utf8')).to.include('initialDelay: 1h');
    const gateway = await spawnGateway(config, port);
    try {
      const env = { AMTSBOTE_ADMIN_KEY: ADMIN_KEY, AMTSBOTE_URL: gateway.url };
      const both = await amtsboteWithEnv(env, 'replay', 'some-id', '--retrying');
      expect(both.code).to.equal(1);
      expect(both.stderr).to.include('name message ids, or use --dead-letters or --retrying');
      const id = await submit(gateway.url, 'CLI-RETRY-1');
      const admin = { authorization: `Bearer ${ADMIN_KEY}` };
      for (let waited = 0; ; waited += 50) {
        const status = (
          (await (await fetch(`${gateway.url}/api/v1/admin/messages/${id}`, { headers: admin })).json()) as {
            status: string;
          }
        ).status;
        if (status === 'retrying') break;
        if (waited > 10_000) throw new Error(`still ${status}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const replayed = await amtsboteWithEnv(env, 'replay', '--retrying', '--json');
      expect(replayed.code, replayed.stderr).to.equal(0);
      expect(JSON.parse(replayed.stdout)).to.deep.equal({ replayed: [id], notReplayable: [] });
    } finally {
      gateway.child.kill('SIGTERM');
      await gateway.exited;
    }
  });

  it('start ends with status 1 and says why when its port is taken, leaving nothing running', async () => {
    const taken = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const config = writeGatewayConfig({ dir, receiverUrl: 'http://127.0.0.1:9', port });
      const error = await spawnGateway(config, port, 15_000).then(
        () => undefined,
        (err: unknown) => err as Error,
      );
      expect(error?.message).to.match(/^gateway exited with 1:/);
      expect(error?.message).to.include(
        `cannot listen on 127.0.0.1:${port}: the port is in use (is another amtsbote running?); choose server.port or --port`,
      );
    } finally {
      taken.close();
    }
  });

  it('start ends with status 1 and names dataDir when the data directory cannot be made', async () => {
    const blocker = path.join(dir, 'not-a-directory');
    writeFileSync(blocker, '');
    const config = writeGatewayConfig({ dir, receiverUrl: 'http://127.0.0.1:9', port: await freePort() });
    writeFileSync(
      config,
      readFileSync(config, 'utf8').replace('dataDir: ./data', `dataDir: ${blocker}/data`),
    );
    const result = await amtsbote('start', '-c', config);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include(`cannot create the data directory ${blocker}/data (dataDir): ENOTDIR`);
  });
});
