/**
 * The mapping worker pool gives what the inline step gives — the same bytes, the same AmtErrors
 * with their problems — survives a worker that dies mid-task, and leaves nothing running once
 * closed.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { manifests } from '../../adapters/index.js';
import { parseConfig } from '../../src/config/load.js';
import { AmtError, isAmtError } from '../../src/errors.js';
import { loadMappingStep } from '../../src/mapping/index.js';
import { createMappingPool, type MappingPool } from '../../src/mapping/pool.js';
import { loadMappingTestSuite } from '../../src/mapping/testing.js';
import type { MappedBody, MappingInput, MappingStep } from '../../src/pipeline/mapping-step.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SUITE = path.join(ROOT, 'mappings/bewohnerparken/bewohnerparken.test.yaml');

/** The creation time is the clock of the run; everything else must match byte for byte. */
const TIMESTAMP = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})/g;
const withoutClock = (content: string | Buffer): string => String(content).replace(TIMESTAMP, '<now>');

const XDOMEA_0504 = `source: { format: json }
target:
  format: xml
  root: xdomea:Aussonderung.AnbietungEmpfangBestaetigen.0504
  namespaces: { xdomea: 'urn:xoev-de:xdomea:schema:3.0.0' }
  schemaSet: xdomea-3.0.0
rules:
  - xdomeaKopf:
      nachrichtentyp: '0504'
      erstellungszeitpunkt: { from: application.created }
      absender: { institution: Portal }
      empfaenger: { institution: { from: message.tenant.name } }
`;

function input(application: unknown): MappingInput {
  return {
    application,
    message: {
      id: 'a1b2c3d4-0000-4000-8000-000000000001',
      deliveryId: 'd1e2f3a4-0000-4000-8000-000000000002',
      tenant: { id: 'dortmund', name: 'Stadt Dortmund', ars: '059130000000' },
      service: '99058012104000',
      reference: 'R-1',
      receivedAt: Date.parse('2024-05-02T08:15:00Z'),
    },
    attachments: [],
  };
}

async function outcome(run: () => MappedBody | Promise<MappedBody>): Promise<MappedBody | Error> {
  try {
    return await run();
  } catch (err) {
    return err as Error;
  }
}

async function failure(run: () => unknown): Promise<Error> {
  try {
    await run();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

const exited = (pool: MappingPool): Promise<unknown> =>
  Promise.all(pool.workersForTest().map((w) => new Promise((resolve) => w.once('exit', resolve))));

describe('mapping worker pool', function () {
  this.timeout(60_000);
  let dir: string;
  let pool: MappingPool;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amt-mapping-pool-'));
    pool = createMappingPool({ threads: 2 });
  });
  after(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('maps every bewohnerparken test case exactly as the inline step does', async () => {
    const suite = loadMappingTestSuite(SUITE);
    const inline = await loadMappingStep(suite.mappingFile);
    const pooled = await pool.loadMappingStep(suite.mappingFile);
    expect(pooled.source).to.equal(inline.source).and.equal('json');
    const fromJsonText = pooled.fromJsonText!;
    let mapped = 0;
    let refused = 0;
    for (const testCase of suite.cases) {
      const { application, ...rest } = testCase.input;
      const [expected, actual, fromText] = await Promise.all([
        outcome(() => inline(testCase.input)),
        outcome(() => pooled(testCase.input)),
        // The stored text, parsed on the worker: the same outcome as the parsed application.
        outcome(() => fromJsonText({ ...rest, applicationJson: JSON.stringify(application) })),
      ]);
      if (fromText instanceof Error) {
        expect(actual, testCase.name).to.be.instanceOf(Error);
        expect([fromText.message, (fromText as AmtError).problems]).to.deep.equal([
          (actual as AmtError).message,
          (actual as AmtError).problems,
        ]);
      } else {
        expect(actual, testCase.name).not.to.be.instanceOf(Error);
        expect(withoutClock(fromText.content)).to.equal(withoutClock((actual as MappedBody).content));
      }
      if (expected instanceof Error) {
        refused += 1;
        expect(isAmtError(expected), testCase.name).to.equal(true);
        const want = expected as AmtError;
        expect(actual, testCase.name).to.be.instanceOf(AmtError);
        const got = actual as AmtError;
        expect([got.code, got.message, got.retryable], testCase.name).to.deep.equal([
          want.code,
          want.message,
          want.retryable,
        ]);
        expect(got.problems, testCase.name).to.deep.equal(want.problems);
      } else {
        mapped += 1;
        expect(actual, testCase.name).not.to.be.instanceOf(Error);
        const got = actual as MappedBody;
        expect(got.contentType).to.equal(expected.contentType);
        expect(typeof got.content).to.equal(typeof expected.content);
        expect(withoutClock(got.content), testCase.name).to.equal(withoutClock(expected.content));
      }
    }
    // The suite has both kinds; a comparison of nothing would prove nothing.
    expect(mapped).to.be.greaterThan(3);
    expect(refused).to.be.greaterThan(2);
  });

  it('offers the text form only for JSON sources, and holds stored text that is not JSON as an internal fault', async () => {
    const suite = loadMappingTestSuite(SUITE);
    const step = await pool.loadMappingStep(suite.mappingFile);
    const { application: _unused, ...rest } = suite.cases[0]!.input;
    const err = await failure(() => step.fromJsonText!({ ...rest, applicationJson: '{"reference": ' }));
    expect(isAmtError(err) && [err.code, err.message]).to.deep.equal([
      'AMT_INTERNAL',
      `the stored payload of message ${rest.message.id} is not JSON`,
    ]);
    const xml = path.join(ROOT, 'mappings/xbeteiligung-inbound/xbeteiligung-inbound.mapping.yaml');
    const xmlStep = await pool.loadMappingStep(xml);
    expect(xmlStep.source).to.equal('xml');
    expect(xmlStep.fromJsonText).to.equal(undefined);
  });

  it('delivers the expected xdomea message for the sample application', async () => {
    const suite = loadMappingTestSuite(SUITE);
    const step = await pool.loadMappingStep(suite.mappingFile);
    const body = await step(suite.cases[0]!.input);
    const expected = readFileSync(path.join(ROOT, 'mappings/bewohnerparken/expected-0604.xml'), 'utf8');
    // Same ProzessID and document identifiers as the reviewed expected message.
    const ids = expected.match(/[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}/g) ?? [];
    expect(ids).to.have.length.greaterThan(2);
    for (const id of ids) expect(String(body.content)).to.contain(id);
    expect(body.contentType).to.equal('application/xml; charset=utf-8');
  });

  it('hands a validated XML document over as the UTF-8 bytes it validated, inline and from a worker', async () => {
    const suite = loadMappingTestSuite(SUITE);
    const inline = await loadMappingStep(suite.mappingFile);
    const pooled = await pool.loadMappingStep(suite.mappingFile);
    const application = suite.cases[0]!.input;
    const [mine, theirs] = [await inline(application), await pooled(application)];
    // The bytes libxml2 parsed and validated are the ones sent on: nobody encodes the text again.
    expect(Buffer.isBuffer(mine.content)).to.equal(true);
    expect(Buffer.isBuffer(theirs.content)).to.equal(true);
    const text = (mine.content as Buffer).toString('utf8');
    expect(text).to.match(/^<\?xml version="1.0" encoding="UTF-8"\?>/);
    expect(withoutClock(theirs.content)).to.equal(withoutClock(text));
    // Non-ASCII text arrives as UTF-8, not as Latin-1 bytes of the string.
    expect(text).to.contain('Straßenverkehrsbehörde');
  });

  it('starts its workers when the process runs with flags a worker refuses (--trace-gc)', async () => {
    process.execArgv.push('--trace-gc');
    let flagged: MappingPool | undefined;
    try {
      flagged = createMappingPool({ threads: 1 });
      const suite = loadMappingTestSuite(SUITE);
      const step = await flagged.loadMappingStep(suite.mappingFile);
      const body = await step(suite.cases[0]!.input);
      expect(String(body.content)).to.contain('FVDaten.SGOErstellen.0604');
    } finally {
      process.execArgv.pop();
      await flagged?.close();
    }
  });

  it('keeps an AmtError from a failing rule intact: code, message, problems, permanence', async () => {
    const file = path.join(dir, 'failing.mapping.yaml');
    writeFileSync(
      file,
      XDOMEA_0504.replace(
        'absender: { institution: Portal }',
        'absender: { institution: { from: application.portal, required: true } }',
      ),
    );
    const want = await failure(async () =>
      (await loadMappingStep(file))(input({ created: '2024-05-02T08:15:00Z' })),
    );
    const got = await failure(async () =>
      (await pool.loadMappingStep(file))(input({ created: '2024-05-02T08:15:00Z' })),
    );
    expect(got).to.be.instanceOf(AmtError);
    const amt = got as AmtError;
    expect(amt.code).to.equal('AMT_MAPPING_FAILED');
    expect(amt.retryable).to.equal(false);
    expect(amt.status).to.equal(422);
    expect(amt.message).to.equal(want.message);
    expect(amt.problems).to.deep.equal((want as AmtError).problems);
    expect(amt.problems[0]!.path).to.equal('xdomea:Kopf/xdomea:Absender/xdomea:Institution/xdomea:Name');
  });

  it('keeps the XPath and line of an XSD failure', async () => {
    const file = path.join(dir, 'invalid.mapping.yaml');
    writeFileSync(file, XDOMEA_0504);
    const step = await pool.loadMappingStep(file);
    const err = await failure(() => step(input({ created: 'gestern' })));
    expect(isAmtError(err) && err.code).to.equal('AMT_XML_INVALID');
    expect((err as AmtError).retryable).to.equal(false);
    expect((err as AmtError).problems).to.deep.include({
      path: '/xdomea:Aussonderung.AnbietungEmpfangBestaetigen.0504/xdomea:Kopf/xdomea:Erstellungszeitpunkt',
      message:
        "line 1: Element '{urn:xoev-de:xdomea:schema:3.0.0}Erstellungszeitpunkt': 'gestern' is not a valid value of the atomic type 'xs:dateTime'.",
    });
  });

  it('surfaces a compile error of a broken file from loadMappingStep', async () => {
    const file = path.join(dir, 'broken.mapping.yaml');
    writeFileSync(
      file,
      'source: { format: json }\ntarget: { format: json }\nrules:\n  - { to: name, frm: x }\n',
    );
    const err = await failure(() => pool.loadMappingStep(file));
    expect(isAmtError(err) && err.code).to.equal('AMT_MAPPING_COMPILE_FAILED');
    expect((err as AmtError).problems.map((p) => p.path).join('\n')).to.contain('broken.mapping.yaml:4');
  });

  it('spreads concurrent mappings over its workers', async () => {
    const suite = loadMappingTestSuite(SUITE);
    const step = await pool.loadMappingStep(suite.mappingFile);
    const bodies = await Promise.all(Array.from({ length: 8 }, () => step(suite.cases[0]!.input)));
    expect(new Set(bodies.map((b) => withoutClock(b.content))).size).to.equal(1);
    expect(pool.workersForTest()).to.have.length(2);
  });
});

describe('mapping worker pool: batches', function () {
  this.timeout(60_000);

  it('sends an idle worker the first mapping of a turn at once and the rest together', async () => {
    const pool = createMappingPool({ threads: 1 });
    try {
      const suite = loadMappingTestSuite(SUITE);
      const step = await pool.loadMappingStep(suite.mappingFile);
      await step(suite.cases[0]!.input); // the worker is running and has compiled the mapping
      const [worker] = pool.workersForTest();
      let posted = 0;
      const post = worker!.postMessage.bind(worker);
      worker!.postMessage = (...args: Parameters<typeof post>) => {
        posted += 1;
        post(...args);
      };

      const bodies = await Promise.all(Array.from({ length: 12 }, () => step(suite.cases[0]!.input)));
      // The first at once to the idle worker, the other eleven together. (How the answers come
      // back depends on how quick the mappings are: test/mapping/reply-gathering.test.ts.)
      expect(posted).to.equal(2);
      expect(new Set(bodies.map((b) => withoutClock(b.content))).size).to.equal(1);
      expect(withoutClock(bodies[0]!.content)).to.contain('<xdomea:');
    } finally {
      await pool.close();
    }
  });

  it('answers a batch as its mappings end, not all at the end of the batch', async () => {
    const pool = createMappingPool({ threads: 1 });
    try {
      const suite = loadMappingTestSuite(SUITE);
      const step = await pool.loadMappingStep(suite.mappingFile);
      await step(suite.cases[0]!.input);
      const [worker] = pool.workersForTest();
      let answers = 0;
      worker!.on('message', () => (answers += 1));

      // One mapping alone to the idle worker, then a batch of 100 (see the test above).
      const started = performance.now();
      const answeredAt: number[] = [];
      await Promise.all(
        Array.from({ length: 101 }, (_, i) =>
          Promise.resolve(step(suite.cases[0]!.input)).then(
            () => (answeredAt[i] = performance.now() - started),
          ),
        ),
      );
      const batch = answeredAt.slice(1);
      const firstOfBatch = Math.min(...batch);
      const lastOfBatch = Math.max(...batch);
      // Mapped one after another, the batch's first answers reach this thread while the worker
      // maps the rest; had every mapping of the batch run before the first answer, they would
      // all arrive at its end.
      expect(firstOfBatch).to.be.below(lastOfBatch / 2);
      expect(answers).to.be.at.least(3);
    } finally {
      await pool.close();
    }
  });

  it('fails a request that cannot be sent to a worker alone, and maps the others of its batch', async () => {
    const pool = createMappingPool({ threads: 1 });
    try {
      const suite = loadMappingTestSuite(SUITE);
      const step = await pool.loadMappingStep(suite.mappingFile);
      const good = suite.cases[0]!.input;
      const bad = { ...good, application: { ...(good.application as object), callback: () => 0 } };
      const [first, broken, last] = await Promise.all([
        outcome(() => step(good)),
        outcome(() => step(bad)),
        outcome(() => step(good)),
      ]);
      expect(broken).to.be.instanceOf(Error);
      expect((broken as Error).message).to.match(/could not be cloned/);
      for (const body of [first, last])
        expect(withoutClock((body as MappedBody).content)).to.contain('<xdomea:');
    } finally {
      await pool.close();
    }
  });
});

describe('mapping worker pool: warm-up', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amt-mapping-warm-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('starts every worker and has each compile the files before the first application', async () => {
    const file = path.join(dir, 'parken.mapping.yaml');
    writeFileSync(file, XDOMEA_0504);
    const pool = createMappingPool({ threads: 2 });
    try {
      expect(pool.workersForTest()).to.have.length(0); // workers start on demand otherwise
      expect(await pool.warmUp([file, path.relative(process.cwd(), file)])).to.deep.equal([]);
      const workers = pool.workersForTest();
      expect(workers).to.have.length(2);
      const step = await pool.loadMappingStep(file);
      const body = await step(input({ created: '2024-05-02T08:15:00Z' }));
      expect(String(body.content)).to.contain('<xdomea:Erstellungszeitpunkt>2024-05-02T08:15:00Z<');
      expect(pool.workersForTest()).to.deep.equal(workers);
    } finally {
      await pool.close();
    }
  });

  it('does not fail on a broken file but reports it; its messages fail with the compile error as before', async () => {
    const file = path.join(dir, 'broken.mapping.yaml');
    writeFileSync(
      file,
      'source: { format: json }\ntarget: { format: json }\nrules:\n  - { to: name, frm: x }\n',
    );
    for (const threads of [0, 1]) {
      const pool = createMappingPool({ threads });
      try {
        const failures = await pool.warmUp([file, path.relative(process.cwd(), file)]);
        expect(
          failures.map((f) => f.file),
          `threads ${threads}`,
        ).to.deep.equal([file]);
        const reported = failures[0]!.error;
        expect(isAmtError(reported) && reported.code).to.equal('AMT_MAPPING_COMPILE_FAILED');
        expect(isAmtError(reported) && reported.problems.map((p) => p.message).join(' ')).to.include('frm');
        const err = await failure(() => pool.loadMappingStep(file));
        expect(isAmtError(err) && err.code).to.equal('AMT_MAPPING_COMPILE_FAILED');
      } finally {
        await pool.close();
      }
    }
  });
});

describe('mapping worker pool: workers that die, closing', function () {
  this.timeout(60_000);
  let dir: string;
  let file: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amt-mapping-pool-'));
    file = path.join(dir, 'parken.mapping.yaml');
    writeFileSync(file, XDOMEA_0504);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('fails the task of a worker killed mid-task with a retryable error and maps the next on a replacement', async () => {
    const pool = createMappingPool({ threads: 1 });
    try {
      const step = await pool.loadMappingStep(file);
      const pending = step(input({ created: '2024-05-02T08:15:00Z' }));
      const failed = failure(() => pending);
      const [worker] = pool.workersForTest();
      await worker!.terminate();
      const err = await failed;
      expect(isAmtError(err)).to.equal(false);
      expect(err.message).to.match(/mapping worker stopped/);

      const body = await step(input({ created: '2024-05-02T08:15:00Z' }));
      expect(String(body.content)).to.contain('<xdomea:Erstellungszeitpunkt>2024-05-02T08:15:00Z<');
      const [replacement] = pool.workersForTest();
      expect(replacement).to.not.equal(worker);
    } finally {
      await pool.close();
    }
  });

  it('close() stops every worker, fails what is pending, and refuses later calls', async () => {
    const pool = createMappingPool({ threads: 2 });
    const step = await pool.loadMappingStep(file);
    await Promise.all([
      step(input({ created: '2024-05-02T08:15:00Z' })),
      step(input({ created: '2024-05-02T08:15:00Z' })),
    ]);
    expect(pool.workersForTest()).to.have.length(2);
    const stopped = exited(pool);
    const pending = failure(() => step(input({ created: '2024-05-02T08:15:00Z' })));
    await pool.close();
    await stopped;
    expect(pool.workersForTest()).to.deep.equal([]);
    const inFlight = await pending;
    expect(isAmtError(inFlight) && inFlight.code).to.equal('AMT_SHUTTING_DOWN');
    const later = await failure(() => step(input({ created: '2024-05-02T08:15:00Z' })));
    expect(later.message).to.equal('the mapping worker pool is closed');
    const load = await failure(() => pool.loadMappingStep(file));
    expect(load.message).to.equal('the mapping worker pool is closed');
    await pool.close(); // twice is fine
  });

  it('keeps no process alive: closed, or idle and never closed', async () => {
    const script = path.join(dir, 'exits.mts');
    const poolUrl = pathToFileURL(path.join(ROOT, 'src/mapping/pool.ts')).href;
    writeFileSync(
      script,
      `import { createMappingPool } from ${JSON.stringify(poolUrl)};
const application = { created: '2024-05-02T08:15:00Z' };
const input = { application, message: { id: 'm', deliveryId: 'd', tenant: { id: 't', name: 'Stadt', ars: '059130000000' }, service: 's', reference: undefined, receivedAt: 0 }, attachments: [] };
const closed = createMappingPool({ threads: 2 });
await (await closed.loadMappingStep(${JSON.stringify(file)}))(input);
await closed.close();
const idle = createMappingPool({ threads: 1 });
const body = await (await idle.loadMappingStep(${JSON.stringify(file)}))(input);
console.log(body.contentType);
`,
    );
    const started = Date.now();
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], {
      cwd: ROOT,
      timeout: 30_000,
    });
    expect(stdout.trim()).to.equal('application/xml; charset=utf-8');
    expect(Date.now() - started).to.be.lessThan(30_000);
  });
});

describe('mapping worker pool with threads: 0', () => {
  it('is the inline step', async () => {
    const pool = createMappingPool({ threads: 0 });
    expect(pool.loadMappingStep).to.equal(loadMappingStep);
    const suite = loadMappingTestSuite(SUITE);
    const step: MappingStep = await pool.loadMappingStep(suite.mappingFile);
    expect(step).to.equal(await loadMappingStep(suite.mappingFile));
    expect(pool.workersForTest()).to.deep.equal([]);
    await pool.close();
  });

  it('refuses a negative or fractional thread count', () => {
    expect(() => createMappingPool({ threads: -1 })).to.throw(RangeError);
    expect(() => createMappingPool({ threads: 1.5 })).to.throw(RangeError);
  });
});

describe('pipeline.mappingThreads', () => {
  const example = readFileSync(path.join(ROOT, 'examples/gateway.yaml'), 'utf8');
  const source = path.join(ROOT, 'examples/gateway.yaml');

  it('defaults to one core less than the machine has, at most 2', () => {
    const config = parseConfig(example, { manifests, source, env: {} });
    expect(config.pipeline.mappingThreads).to.equal(Math.max(0, Math.min(2, os.availableParallelism() - 1)));
  });

  it('takes a configured count, 0 included, and refuses a negative one', () => {
    for (const threads of [0, 3]) {
      const config = parseConfig(`${example}\npipeline: { mappingThreads: ${threads} }\n`, {
        manifests,
        source,
        env: {},
      });
      expect(config.pipeline.mappingThreads).to.equal(threads);
    }
    let err: unknown;
    try {
      parseConfig(`${example}\npipeline: { mappingThreads: -1 }\n`, { manifests, source, env: {} });
    } catch (caught) {
      err = caught;
    }
    expect(isAmtError(err) && err.code).to.equal('AMT_CONFIG_INVALID');
    expect((err as AmtError).problems.map((p) => p.path)).to.include('/pipeline/mappingThreads');
  });
});
