/**
 * The FIT-Connect demo as adapters/fit-connect/README.md documents it: the demo's Zustelldienst
 * and EfA service, `amtsbote check` and `amtsbote start` on examples/gateway.fit-connect.yaml, and
 * the sample application from the portal — delivered encrypted, decrypted and accepted by the EfA
 * side, `accepted` read back from the event log. Everything runs in a temporary copy of the
 * repository layout (examples/, data/fit-connect-demo/), so nothing is written into data/.
 */
import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEMO, startFitConnectDemo, type FitConnectDemo } from '../scripts/fit-connect-demo.js';
import { freePort } from './support/gateway-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CONFIG = 'examples/gateway.fit-connect.yaml';
/** tsx by absolute URL: the processes below run in a temporary directory without node_modules. */
const TSX = import.meta.resolve('tsx');
const run = promisify(execFile);

const APPLICATION = readFileSync(path.join(ROOT, 'examples/application.json'), 'utf8');
/** Personal data of the sample application that must never show up in the demo's output. */
const PERSONAL = ['Mustermann', 'Erika', 'Heiliger Weg', '44135', 'erika.mustermann@example.org', '1234567'];

/**
 * Copies the committed configuration into `dir/examples/`, pointed at the emulator's port; its
 * relative paths then resolve into `dir/data/` instead of the repository's data/.
 */
function copyConfig(dir: string, emulatorPort: number): void {
  const committed = readFileSync(path.join(ROOT, CONFIG), 'utf8');
  expect(committed.match(/http:\/\/127\.0\.0\.1:8091/g)).to.have.length(4);
  mkdirSync(path.join(dir, 'examples'), { recursive: true });
  writeFileSync(
    path.join(dir, CONFIG),
    committed.replaceAll('http://127.0.0.1:8091', `http://127.0.0.1:${emulatorPort}`),
  );
}

async function amtsbote(
  cwd: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', TSX, path.join(ROOT, 'src/main.ts'), ...args],
      { cwd, env: { ...process.env, AMTSBOTE_CONFIG: '' } },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Output of a child process so far, and a wait for a pattern in it. */
function capture(child: ChildProcess): {
  text(): string;
  waitFor(pattern: RegExp, ms: number): Promise<void>;
} {
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  return {
    text: () => output,
    async waitFor(pattern, ms) {
      const deadline = Date.now() + ms;
      while (!pattern.test(output)) {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`${pattern} not seen within ${ms} ms:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

const exited = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.once('exit', (code) => resolve(code)));

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface ApplicationStatus {
  status: string;
  remoteStatus: string | null;
  remoteReference: string | null;
  history: { event: string; detail?: Record<string, unknown> }[];
}

describe('FIT-Connect demo (scripts/fit-connect-demo.ts, examples/gateway.fit-connect.yaml)', function () {
  this.timeout(180_000);

  describe('gateway and demo together', () => {
    let dir: string;
    let demo: FitConnectDemo;
    let gateway: ChildProcess | undefined;
    const lines: string[] = [];

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'amt-fit-demo-'));
      const emulatorPort = await freePort();
      demo = await startFitConnectDemo({
        port: emulatorPort,
        dataDir: path.join(dir, 'data/fit-connect-demo'),
        pollIntervalMs: 200,
        log: (line) => lines.push(line),
        warn: (line) => lines.push(line),
      });
      copyConfig(dir, emulatorPort);
    });
    after(async () => {
      if (gateway && gateway.exitCode === null) {
        gateway.kill('SIGTERM');
        await exited(gateway);
      }
      await demo?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('writes the files the configuration names, and amtsbote check accepts it', async () => {
      expect(demo.clientSecretFile).to.equal(path.join(dir, 'data/fit-connect-demo/client-secret'));
      expect(statSync(demo.clientSecretFile).mode & 0o777).to.equal(0o600);
      const anchor = new X509Certificate(readFileSync(demo.trustAnchorFile));
      expect(anchor.ca).to.equal(true);

      const result = await amtsbote(dir, 'check', '-c', CONFIG);
      expect(result.stderr).to.equal('');
      expect(result.code).to.equal(0);
      expect(result.stdout).to.match(
        /configuration ok: 1 tenant\(s\), 2 client\(s\), 1 adapter instance\(s\), 1 route\(s\), store sqlite/,
      );
    });

    it('delivers the sample application to the EfA service, which decrypts and accepts it', async () => {
      const port = await freePort();
      gateway = spawn(
        process.execPath,
        ['--import', TSX, path.join(ROOT, 'src/main.ts'), 'start', '-c', CONFIG, '--port', String(port)],
        { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'test' } },
      );
      const gatewayOutput = capture(gateway);
      await gatewayOutput.waitFor(/amtsbote listening on/, 30_000);
      const url = `http://127.0.0.1:${port}`;

      const intake = await fetch(`${url}/api/v1/applications`, {
        method: 'POST',
        headers: {
          authorization: 'Bearer demo-portal-key',
          'content-type': 'application/json',
          'idempotency-key': 'BPA-2024-000815',
        },
        body: APPLICATION,
      });
      expect(intake.status).to.equal(202);
      const { id } = (await intake.json()) as { id: string };
      const status = async (): Promise<ApplicationStatus> => {
        const res = await fetch(`${url}/api/v1/applications/${id}`, {
          headers: { authorization: 'Bearer demo-portal-key' },
        });
        expect(res.status).to.equal(200);
        return (await res.json()) as ApplicationStatus;
      };

      const delivered = await until('delivery', 30_000, async () => {
        const s = await status();
        expect(s.status).to.not.equal('dead');
        return s.status === 'delivered' ? s : undefined;
      });
      const [submissionId, caseId] = delivered.remoteReference!.split(':');

      // The EfA side has fetched, decrypted and checked it.
      await until('the EfA service receiving it', 15_000, async () => demo.received[0]);
      expect(demo.received).to.have.length(1);
      const received = demo.received[0]!;
      expect(received).to.include({
        submissionId,
        caseId,
        destinationId: DEMO.destinationId,
        dataMimeType: 'application/json',
        schemaUri: DEMO.schemaUri,
        attachmentCount: 2,
        hashesMatched: 3,
        outcome: 'accepted',
      });
      expect(received.serviceType).to.deep.equal({
        identifier: `urn:de:fim:leika:leistung:${DEMO.service}`,
        name: DEMO.serviceName,
      });
      expect(received.problems).to.deep.equal([]);
      const sample = JSON.parse(APPLICATION) as { reference: string; data: unknown };
      const fachdaten = JSON.parse(received.fachdaten!.toString('utf8')) as {
        reference: string;
        data: unknown;
      };
      expect(fachdaten.reference).to.equal(sample.reference);
      expect(fachdaten.data).to.deep.equal(sample.data);

      // The Zustelldienst saw one submission for the demo destination, and a valid accept event.
      const submissions = [...demo.emulator.state.submissions.values()];
      expect(submissions.map((s) => [s.submissionId, s.destinationId, s.status])).to.deep.equal([
        [submissionId, DEMO.destinationId, 'accepted'],
      ]);
      expect(demo.emulator.state.refusedEvents).to.deep.equal([]);
      // The gateway found the destination through the Routing API.
      expect(
        demo.emulator.state.requests.some((r) => r.path === '/routing/v1/routes' && r.status === 200),
      ).to.equal(true);

      // The scheduled status poll (every 20 s) reads the signed accept-submission from the event log.
      const accepted = await until('remote status accepted', 45_000, async () => {
        const s = await status();
        return s.remoteStatus === 'accepted' ? s : undefined;
      });
      expect(accepted.status).to.equal('delivered');
      const remote = accepted.history.find((h) => h.event === 'remote-status');
      expect(remote?.detail).to.include({
        status: 'accepted',
        issuer: DEMO.destinationId,
        event: 'https://schema.fitko.de/fit-connect/events/accept-submission',
      });

      // What the demo printed names the submission but none of the applicant's data.
      const printed = lines.join('\n');
      expect(printed).to.include(`submission ${submissionId}`);
      expect(printed).to.include('3 of 3 SHA-512 hashes in the metadata match');
      expect(printed).to.include('accept-submission sent');
      for (const value of PERSONAL) expect(printed).to.not.include(value);

      gateway.kill('SIGTERM');
      expect(await exited(gateway)).to.equal(0);
    });
  });

  describe('the script on the command line', () => {
    let dir: string;
    let child: ChildProcess | undefined;

    before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'amt-fit-demo-cli-'))));
    after(async () => {
      if (child && child.exitCode === null) {
        child.kill('SIGKILL');
        await exited(child);
      }
      rmSync(dir, { recursive: true, force: true });
    });

    it('serves on --port, writes into --data, keeps the secret out of its output and stops on Ctrl-C', async () => {
      const port = await freePort();
      const dataDir = path.join(dir, 'demo-data');
      child = spawn(
        process.execPath,
        ['--import', 'tsx', 'scripts/fit-connect-demo.ts', '--port', String(port), '--data', dataDir],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const output = capture(child);
      await output.waitFor(/Waiting for submissions; Ctrl-C stops\./, 90_000);

      const secret = readFileSync(path.join(dataDir, 'client-secret'), 'utf8').trim();
      expect(secret).to.match(/^[0-9a-f]{48}$/);
      expect(output.text()).to.not.include(secret);
      expect(output.text()).to.include(`http://127.0.0.1:${port}`);

      const token = await fetch(`http://127.0.0.1:${port}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: DEMO.clientId,
          client_secret: secret,
        }),
      });
      expect(token.status).to.equal(200);
      const routes = (await (
        await fetch(`http://127.0.0.1:${port}/routing/v1/routes?leikaKey=${DEMO.service}&ars=${DEMO.ars}`)
      ).json()) as { routes: { destinationId: string }[] };
      expect(routes.routes.map((r) => r.destinationId)).to.deep.equal([DEMO.destinationId]);

      child.kill('SIGINT');
      expect(await exited(child)).to.equal(0);
      let refused = false;
      await fetch(`http://127.0.0.1:${port}/token`, { method: 'POST' }).catch(() => (refused = true));
      expect(refused).to.equal(true);
    });
  });
});
