/**
 * Switching a service from a self-built target to an EfA service is a change of one route's
 * adapter: new applications go through FIT-Connect, those already accepted finish where they began.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { manifests } from '../adapters/index.js';
import { parseRemoteReference } from '../adapters/fit-connect/send.js';
import { validateConfig } from '../src/config/load.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { createLogger } from '../src/observability/log.js';
import { passThrough } from '../src/pipeline/mapping-step.js';
import {
  CITY_ARS,
  SERVICE_KEY,
  fitConnectFixture,
  type FitConnectFixture,
} from './peers/fit-connect/fixture.js';
import { hashApiKey } from '../src/http/auth.js';

const KEY = 'switch-test-portal-key';

describe('switching a route from file-drop to FIT-Connect', function () {
  this.timeout(180_000);
  let world: FitConnectFixture;
  let dir: string;
  let gateway: Gateway | undefined;

  before(async () => {
    world = await fitConnectFixture();
    dir = mkdtempSync(path.join(os.tmpdir(), 'amt-switch-'));
  });
  after(async () => {
    await gateway?.stop();
    await world.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function config(adapter: 'selfbuilt' | 'efa') {
    return validateConfig(
      {
        dataDir: dir,
        tenants: [{ id: 'muenster', name: 'Stadt Münster', ars: CITY_ARS }],
        clients: [{ id: 'portal', keyHash: hashApiKey(KEY), tenants: ['muenster'] }],
        adapters: {
          selfbuilt: { type: 'file-drop', config: { directory: path.join(dir, 'outbox') } },
          efa: { type: 'fit-connect', config: world.sendingConfig() },
        },
        routes: [{ id: 'wohnsitz', ars: '05515', service: SERVICE_KEY, adapter }],
        pipeline: { pollInterval: 20 },
      },
      { manifests, baseDir: dir, source: undefined },
    );
  }

  async function submit(url: string, reference: string): Promise<string> {
    const res = await fetch(`${url}/api/v1/applications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        tenant: CITY_ARS,
        service: SERVICE_KEY,
        reference,
        applicant: { familyName: 'Mustermann' },
        data: { zuzug: '2026-12-01' },
      }),
    });
    expect(res.status).to.equal(202);
    return ((await res.json()) as { id: string }).id;
  }

  it('sends new applications through FIT-Connect while one already accepted lands on the old target', async () => {
    const logger = createLogger({ silent: true });
    // Accepted while the route still pointed at the self-built target; not delivered yet.
    gateway = await startGateway(config('selfbuilt'), {
      manifests,
      loadMapping: async () => passThrough,
      logger,
      port: 0,
      workers: false,
    });
    const inFlight = await submit(gateway.url, 'before-switch');
    await gateway.stop();

    // The route now names the EfA service.
    gateway = await startGateway(config('efa'), {
      manifests,
      loadMapping: async () => passThrough,
      logger,
      port: 0,
    });
    const afterSwitch = await submit(gateway.url, 'after-switch');
    const deadline = Date.now() + 60_000;
    const delivered = async (id: string) => (await gateway!.store.getMessage(id))?.status === 'delivered';
    while (!((await delivered(inFlight)) && (await delivered(afterSwitch))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }

    const old = await gateway.store.getMessage(inFlight);
    expect(old?.status).to.equal('delivered');
    expect(old?.target).to.equal('selfbuilt');
    expect(existsSync(path.join(dir, 'outbox', old!.remoteReference!))).to.equal(true);

    const efa = await gateway.store.getMessage(afterSwitch);
    expect(efa?.status).to.equal('delivered');
    expect(efa?.target).to.equal('efa');
    const ref = parseRemoteReference(efa?.remoteReference);
    expect(world.emulator.state.submissions.get(ref!.submissionId)?.status).to.equal('submitted');
    // Only the first application went to the share.
    expect(
      readdirSync(path.join(dir, 'outbox')).filter((f) => !f.startsWith('.') && !f.endsWith('.meta.json')),
    ).to.have.length(1);

    // Status from the FIT-Connect event log reaches the message.
    await world.emulator.emitServiceEvent(
      ref!.submissionId,
      'https://schema.fitko.de/fit-connect/events/forward-submission',
    );
    await gateway.adapters.get('efa')!.poll!(new AbortController().signal);
    expect((await gateway.store.getMessage(afterSwitch))?.remoteStatus).to.equal('forwarded');
    const events = (await gateway.store.history(afterSwitch)).map((e) => e.event);
    expect(events).to.include('remote-status');
  });
});
