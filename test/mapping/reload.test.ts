/**
 * A mapping file fixed on disk is used by the running gateway without a restart: the next
 * delivery and a replayed dead letter get the mapping as it is now.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isAmtError } from '../../src/errors.js';
import { loadMappingStep } from '../../src/mapping/index.js';
import type { MappingInput } from '../../src/pipeline/mapping-step.js';

const HEAD = 'source: { format: json }\ntarget: { format: json }\nrules:\n';

const input: MappingInput = {
  application: { applicant: { familyName: 'Mustermann' }, data: { zone: 'A' } },
  message: {
    id: 'a1b2c3d4-0000-4000-8000-000000000001',
    deliveryId: 'd1e2f3a4-0000-4000-8000-000000000002',
    tenant: { id: 'dortmund', name: 'Stadt Dortmund', ars: '059130000000' },
    service: '99058013001000',
    reference: 'R-1',
    receivedAt: Date.parse('2026-12-07T08:15:00Z'),
  },
  attachments: [],
};

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('mapping files changed on disk', function () {
  this.timeout(10_000);
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amt-mapping-reload-'));
    file = path.join(dir, 'parken.mapping.yaml');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const run = async (): Promise<unknown> => {
    const step = await loadMappingStep(file);
    const body = await step(input);
    return JSON.parse(String(body.content));
  };

  it('compiles a file once and uses the fixed file within about a second', async () => {
    // The broken version reads a field the portal does not send and requires it.
    writeFileSync(file, `${HEAD}  - { to: name, from: application.applicant.lastName, required: true }\n`);
    const failure = await run().catch((err: unknown) => err);
    expect(isAmtError(failure) && failure.code).to.equal('AMT_MAPPING_FAILED');
    expect(await loadMappingStep(file)).to.equal(await loadMappingStep(file)); // compiled once

    writeFileSync(file, `${HEAD}  - { to: name, from: application.applicant.familyName, required: true }\n`);
    await pause(1100);
    expect(await run()).to.deep.equal({ name: 'Mustermann' });
  });

  it('reports a broken file with its line and compiles it again once it is fixed', async () => {
    writeFileSync(file, `${HEAD}  - { to: zone, from: application.data.zone }\n`);
    expect(await run()).to.deep.equal({ zone: 'A' });
    writeFileSync(
      file,
      `${HEAD}  - { to: zone, transform: no-such-transform, from: application.data.zone }\n`,
    );
    await pause(1100);
    const broken = await loadMappingStep(file).catch((err: unknown) => err);
    expect(isAmtError(broken) && broken.code).to.equal('AMT_MAPPING_COMPILE_FAILED');
    expect(JSON.stringify(isAmtError(broken) && broken.problems)).to.match(/parken\.mapping\.yaml:4/);
    writeFileSync(file, `${HEAD}  - { to: area, from: application.data.zone }\n`);
    expect(await run()).to.deep.equal({ area: 'A' });
  });
});
