/**
 * The README's walk-through on the demo configuration: `amtsbote start` on a copy of
 * examples/gateway.yaml, the sample application as JSON (twice with one Idempotency-Key) and as
 * multipart with the sample PDF, each landing in the outbox as a valid xdomea message.
 */
import { expect } from 'chai';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnGateway, type GatewayProcess } from './support/gateway-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const KEY = 'demo-portal-key';

interface Accepted {
  id: string;
  status: string;
  links: { self: string };
}

describe('README walk-through on the demo configuration (examples/)', function () {
  this.timeout(60_000);
  let dir: string;
  let gateway: GatewayProcess;
  let url: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amt-demo-'));
    // The committed configuration on a free port, its relative paths resolving into dir/ (data/,
    // outbox), the mapping from the repository.
    const committed = readFileSync(path.join(ROOT, 'examples/gateway.yaml'), 'utf8');
    expect(committed).to.include('mapping: ../mappings/bewohnerparken/bewohnerparken.mapping.yaml');
    expect(committed).to.include('port: 8080');
    const port = await freePort();
    mkdirSync(path.join(dir, 'examples'));
    const config = path.join(dir, 'examples/gateway.yaml');
    writeFileSync(
      config,
      committed
        .replace('../mappings/', `${path.join(ROOT, 'mappings')}/`)
        .replace('port: 8080', `port: ${port}`),
    );
    gateway = await spawnGateway(config, port);
    url = gateway.url;
  });

  after(async () => {
    gateway.child.kill('SIGTERM');
    await gateway.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  async function delivered(accepted: Accepted): Promise<{ remoteReference: string }> {
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`${url}${accepted.links.self}`, {
        headers: { authorization: `Bearer ${KEY}` },
      });
      const body = (await res.json()) as { status: string; remoteReference: string };
      if (body.status === 'delivered') return body;
      expect(body.status).to.be.oneOf(['received', 'delivering']);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${accepted.id} was not delivered`);
  }

  it('takes the sample application as JSON, once per Idempotency-Key, and drops it into data/outbox', async () => {
    const post = (): Promise<Response> =>
      fetch(`${url}/api/v1/applications`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${KEY}`,
          'content-type': 'application/json',
          'idempotency-key': 'BPA-2024-000815',
        },
        body: readFileSync(path.join(ROOT, 'examples/application.json')),
      });
    const first = await post();
    expect(first.status).to.equal(202);
    const accepted = (await first.json()) as Accepted;
    const again = (await (await post()).json()) as Accepted;
    expect(again.id).to.equal(accepted.id);
    const { remoteReference } = await delivered(accepted);
    const xml = readFileSync(path.join(dir, 'data/outbox', remoteReference), 'utf8');
    expect(xml).to.include('FVDaten.SGOErstellen.0604').and.to.include('Fahrzeugschein.pdf');
    expect(existsSync(path.join(dir, 'data/outbox', `${remoteReference}.meta.json`))).to.equal(true);
  });

  it('takes the multipart form with examples/application-form.json and the sample PDF', async () => {
    const form = new FormData();
    form.append(
      'application',
      new Blob([readFileSync(path.join(ROOT, 'examples/application-form.json'))], {
        type: 'application/json',
      }),
      'application-form.json',
    );
    const pdf = readFileSync(path.join(ROOT, 'examples/Fahrzeugschein.pdf'));
    form.append('attachment', new Blob([pdf], { type: 'application/pdf' }), 'Fahrzeugschein.pdf');
    form.append('purpose', 'Nachweis Fahrzeugzulassung (Zulassungsbescheinigung Teil I)');
    const res = await fetch(`${url}/api/v1/applications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
      body: form,
    });
    expect(res.status, await res.clone().text()).to.equal(202);
    const { remoteReference } = await delivered((await res.json()) as Accepted);
    const xml = readFileSync(path.join(dir, 'data/outbox', remoteReference), 'utf8');
    expect(xml).to.include('BPA-2024-000816').and.to.include('Fahrzeugschein.pdf');
    const copies = readdirSync(path.join(dir, 'data/outbox', `${remoteReference}.attachments`));
    expect(
      copies.map((name) =>
        readFileSync(path.join(dir, 'data/outbox', `${remoteReference}.attachments`, name)),
      ),
    ).to.deep.include(pdf);
  });
});
