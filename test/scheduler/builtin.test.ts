import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { AdapterInstance } from '../../src/adapter-contract.js';
import { AttachmentStore } from '../../src/attachments.js';
import { AmtError } from '../../src/errors.js';
import { adapterTask } from '../../src/scheduler/builtin/adapter-task.js';
import { deadLetterDigestTask } from '../../src/scheduler/builtin/dead-letter-digest.js';
import { retentionPurgeTask } from '../../src/scheduler/builtin/retention-purge.js';
import { jobMetrics } from '../../src/scheduler/metrics.js';
import type { JobContext } from '../../src/scheduler/types.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import {
  MAX_ATTACHMENT_LOOKUP,
  PURGED_PAYLOAD,
  type AttachmentRef,
  type JobRun,
} from '../../src/store/types.js';

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.parse('2026-06-01T04:00:00Z');
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describe('built-in jobs', () => {
  let dir: string;
  let store: SqliteStore;
  let attachments: AttachmentStore;
  let n: number;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amtsbote-builtin-'));
    store = SqliteStore.open(path.join(dir, 'amtsbote.db'));
    await store.migrate();
    attachments = new AttachmentStore(path.join(dir, 'attachments'));
    n = 0;
  });

  afterEach(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A message that reached `status` at `at`, with the given attachments. */
  async function finalMessage(
    status: 'delivered' | 'dead',
    at: number,
    options: { routeId?: string; attachments?: AttachmentRef[] } = {},
  ): Promise<string> {
    n += 1;
    const id = `m${String(n).padStart(6, '0')}`;
    await store.accept([
      {
        id,
        deliveryId: `d-${id}`,
        direction: 'outbound',
        tenantId: 'muenster',
        ars: '055150000000',
        service: '99058012104000',
        reference: undefined,
        clientId: 'portal',
        routeId: options.routeId ?? 'parken',
        target: 'fachverfahren',
        payload: '{"antragsteller":{"name":"Erika Mustermann"}}',
        attachments: options.attachments ?? [],
        idempotency: undefined,
        receivedAt: at - 1000,
      },
    ]);
    await store.claimDue('w', 1, 30_000, at - 500);
    const attempt = { startedAt: at - 10, endedAt: at, target: 'fachverfahren' };
    const [applied] = await store.complete(
      [
        status === 'delivered'
          ? { kind: 'delivered', messageId: id, leaseOwner: 'w', attempt, remoteReference: undefined }
          : {
              kind: 'dead',
              messageId: id,
              leaseOwner: 'w',
              attempt,
              error: { code: 'AMT_DELIVERY_REJECTED', message: '400' },
            },
      ],
      at,
    );
    expect(applied).to.equal(true);
    return id;
  }

  async function savedFile(content: string, modifiedAt: number): Promise<AttachmentRef> {
    const { sha256, size } = await attachments.saveBuffer(Buffer.from(content));
    fs.utimesSync(attachments.pathOf(sha256), modifiedAt / 1000, modifiedAt / 1000);
    return { sha256, size, filename: 'nachweis.pdf', mediaType: 'application/pdf' };
  }

  function context(progress: number[] = [], signal = new AbortController().signal): JobContext {
    const run: JobRun = {
      id: 'run-1',
      job: 'job',
      scheduledAt: NOW,
      attempt: 1,
      trigger: 'schedule',
      owner: 'test',
      status: 'running',
      startedAt: NOW,
      leaseExpiresAt: NOW + 30_000,
      finishedAt: undefined,
      itemsProcessed: undefined,
      error: undefined,
      takeoverOf: undefined,
    };
    return { signal, run, progress: (items) => progress.push(items) };
  }

  describe('retention-purge', () => {
    it('purges payloads of messages final for longer than N days and deletes files nobody references', async () => {
      const own = await savedFile('only in the old message', NOW - 40 * DAY);
      const shared = await savedFile('also in a recent message', NOW - 40 * DAY);
      const fresh = await savedFile('uploaded again a minute ago', NOW - 60_000);
      const oldDelivered = await finalMessage('delivered', NOW - 31 * DAY, {
        attachments: [own, shared, fresh],
      });
      const oldDead = await finalMessage('dead', NOW - 45 * DAY, { routeId: 'gewerbe' });
      const recent = await finalMessage('delivered', NOW - 29 * DAY, { attachments: [shared] });

      const progress: number[] = [];
      const task = retentionPurgeTask({ days: 30 }, { store, attachments, logger: quiet, now: () => NOW });
      expect(await task(context(progress))).to.deep.equal({ items: 2 });
      expect(progress).to.deep.equal([2]);

      for (const id of [oldDelivered, oldDead]) {
        const m = (await store.getMessage(id))!;
        expect([m.payload, m.attachments]).to.deep.equal([PURGED_PAYLOAD, []]);
        expect((await store.history(id)).at(-1)?.event).to.equal('purged');
      }
      expect((await store.getMessage(oldDead))?.status).to.equal('dead');
      expect((await store.getMessage(recent))?.payload).to.include('Erika');
      expect(fs.existsSync(attachments.pathOf(own.sha256)), 'unreferenced file').to.equal(false);
      expect(fs.existsSync(attachments.pathOf(shared.sha256)), 'file still referenced').to.equal(true);
      expect(fs.existsSync(attachments.pathOf(fresh.sha256)), 'freshly written file').to.equal(true);
      // A second run finds nothing left to purge.
      expect(await task(context())).to.deep.equal({ items: 0 });
    });

    it('deletes files no message references once unused for a day, whatever the messages’ age', async () => {
      const leftOver = await savedFile('written by an intake that then failed', NOW - 2 * DAY);
      const recentLeftOver = await savedFile('written an hour ago, not committed yet', NOW - 3_600_000);
      const inUse = await savedFile('in a message still waiting', NOW - 10 * DAY);
      const waiting = await finalMessage('delivered', NOW - DAY, { attachments: [inUse] });
      const task = retentionPurgeTask({ days: 30 }, { store, attachments, logger: quiet, now: () => NOW });
      expect(await task(context())).to.deep.equal({ items: 0 });
      expect(fs.existsSync(attachments.pathOf(leftOver.sha256)), 'unreferenced for two days').to.equal(false);
      expect(fs.existsSync(attachments.pathOf(recentLeftOver.sha256)), 'unreferenced for an hour').to.equal(
        true,
      );
      expect(fs.existsSync(attachments.pathOf(inUse.sha256)), 'referenced').to.equal(true);
      expect((await store.getMessage(waiting))?.attachments.map((a) => a.sha256)).to.deep.equal([
        inUse.sha256,
      ]);
      const files: string[] = [];
      for await (const file of attachments.storedFiles()) files.push(file.sha256);
      expect(files.sort()).to.deep.equal([recentLeftOver.sha256, inUse.sha256].sort());
    });

    it('asks the store about files a chunk at a time, not one query per file', async () => {
      const old = NOW - 2 * DAY;
      const refs: AttachmentRef[] = [];
      for (let i = 0; i < 1_505; i++) {
        // Written straight into place: the sweep reads only names and times.
        const sha256 = createHash('sha256').update(`file ${i}`).digest('hex');
        fs.mkdirSync(path.dirname(attachments.pathOf(sha256)), { recursive: true });
        fs.writeFileSync(attachments.pathOf(sha256), `file ${i}`);
        fs.utimesSync(attachments.pathOf(sha256), old / 1000, old / 1000);
        refs.push({ sha256, size: 7, filename: 'nachweis.pdf', mediaType: 'application/pdf' });
      }
      const orphans = refs.slice(1_500);
      for (let i = 0; i < 1_500; i += 100) {
        await finalMessage('delivered', NOW - DAY, { attachments: refs.slice(i, i + 100) });
      }
      const asked: number[] = [];
      const counting = Object.create(store) as SqliteStore;
      counting.referencedAttachments = (sha256s) => {
        asked.push(sha256s.length);
        return store.referencedAttachments(sha256s);
      };
      const task = retentionPurgeTask(
        { days: 30 },
        { store: counting, attachments, logger: quiet, now: () => NOW },
      );
      await task(context());
      // Two chunks for the 1,505 files; each orphan is then checked on its own before and after
      // it is moved aside (removeUnlessUsed), since a new message may take it meanwhile.
      expect(asked.filter((size) => size > 1)).to.deep.equal([MAX_ATTACHMENT_LOOKUP, 505]);
      expect(asked.filter((size) => size === 1)).to.have.length(2 * orphans.length);
      for (const ref of orphans) expect(fs.existsSync(attachments.pathOf(ref.sha256))).to.equal(false);
      expect(fs.existsSync(attachments.pathOf(refs[0]!.sha256))).to.equal(true);
      expect(fs.existsSync(attachments.pathOf(refs[1_499]!.sha256))).to.equal(true);
    });

    it('purges only the routes named, in batches, reporting progress', async () => {
      for (let i = 0; i < 5; i++) await finalMessage('delivered', NOW - 40 * DAY + i);
      const other = await finalMessage('delivered', NOW - 40 * DAY, { routeId: 'gewerbe' });
      const progress: number[] = [];
      const task = retentionPurgeTask(
        { days: 30, routes: ['parken'] },
        { store, attachments, logger: quiet, now: () => NOW, batchSize: 2 },
      );
      expect(await task(context(progress))).to.deep.equal({ items: 5 });
      expect(progress).to.deep.equal([2, 4, 5]);
      expect((await store.getMessage(other))?.payload).to.not.equal(PURGED_PAYLOAD);
    });

    it('stops between batches when its signal aborts', async () => {
      await finalMessage('delivered', NOW - 40 * DAY);
      const controller = new AbortController();
      controller.abort(new AmtError('AMT_JOB_TIMEOUT', 'too slow'));
      const task = retentionPurgeTask({ days: 30 }, { store, attachments, logger: quiet, now: () => NOW });
      let thrown: unknown;
      try {
        await task(context([], controller.signal));
      } catch (err) {
        thrown = err;
      }
      expect((thrown as AmtError).code).to.equal('AMT_JOB_TIMEOUT');
    });
  });

  describe('dead-letter-digest', () => {
    let server: Server;
    let received: { headers: IncomingHttpHeaders; body: string }[];
    let answer: number;
    let url: string;

    beforeEach(async () => {
      received = [];
      answer = 204;
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => {
          received.push({ headers: req.headers, body });
          res.statusCode = answer;
          res.end();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/digest`;
    });

    afterEach(async () => {
      await new Promise((resolve) => server.close(resolve));
    });

    it('reports counts per route to the log, a gauge and the webhook, without message content', async () => {
      await finalMessage('dead', NOW - 3 * DAY, { routeId: 'parken' });
      await finalMessage('dead', NOW - 3600_000, { routeId: 'parken' });
      await finalMessage('dead', NOW - 7200_000, { routeId: 'gewerbe' });
      await finalMessage('delivered', NOW - 3600_000, { routeId: 'wohnsitz' });
      const registry = new Registry();
      const logged: Record<string, unknown>[] = [];
      const task = deadLetterDigestTask(
        { webhook: { url, headers: { authorization: 'Bearer hook-secret' } } },
        {
          store,
          logger: { ...quiet, warn: (_m, meta) => logged.push(meta ?? {}) },
          metrics: jobMetrics(registry),
          now: () => NOW,
        },
      );
      expect(await task(context())).to.deep.equal({ items: 3 });
      expect(received).to.have.length(1);
      expect(received[0]?.headers.authorization).to.equal('Bearer hook-secret');
      expect(received[0]?.headers['content-type']).to.equal('application/json');
      const digest = JSON.parse(received[0]!.body) as Record<string, unknown>;
      expect(digest).to.deep.equal({
        job: 'job',
        generatedAt: new Date(NOW).toISOString(),
        since: new Date(NOW - DAY).toISOString(),
        dead: 3,
        deadSince: 2,
        routes: [
          { route: 'gewerbe', dead: 1, deadSince: 1 },
          { route: 'parken', dead: 2, deadSince: 1 },
        ],
      });
      expect(received[0]?.body).to.not.include('Erika');
      expect(logged[0]).to.deep.include({ dead: 3, deadSince: 2 });
      const metrics = await registry.metrics();
      expect(metrics).to.match(/amtsbote_dead_letters_by_route\{route="parken"\} 2/);
      expect(metrics).to.match(/amtsbote_dead_letters_by_route\{route="gewerbe"\} 1/);
    });

    it('counts new dead letters since the previous successful run', async () => {
      const previous = await store.claimJobOccurrence(
        'job',
        NOW - 2 * 3600_000,
        'x',
        1000,
        NOW - 2 * 3600_000,
      );
      await store.finishJobRun(
        previous!.run.id,
        'x',
        { status: 'succeeded', itemsProcessed: 0 },
        NOW - 2 * 3600_000,
      );
      await finalMessage('dead', NOW - 3 * 3600_000);
      await finalMessage('dead', NOW - 3600_000);
      const task = deadLetterDigestTask({ webhook: { url } }, { store, logger: quiet, now: () => NOW });
      await task(context());
      expect(JSON.parse(received[0]!.body)).to.deep.include({
        since: new Date(NOW - 2 * 3600_000).toISOString(),
        dead: 2,
        deadSince: 1,
      });
    });

    it('fails the run when the webhook does not accept the digest', async () => {
      answer = 503;
      const task = deadLetterDigestTask({ webhook: { url } }, { store, logger: quiet, now: () => NOW });
      let thrown: unknown;
      try {
        await task(context());
      } catch (err) {
        thrown = err;
      }
      expect([(thrown as AmtError).code, (thrown as AmtError).details]).to.deep.equal([
        'AMT_DELIVERY_RETRYABLE',
        { status: 503 },
      ]);
    });
  });

  describe('adapter poll', () => {
    it('runs the poll of the named instance with the run’s signal and reports its items', async () => {
      const signals: AbortSignal[] = [];
      const adapters = new Map<string, AdapterInstance>([
        ['xta-inbox', { poll: async (signal) => (signals.push(signal), { items: 3 }) }],
        ['http-out', { deliver: async () => ({}) }],
      ]);
      const ctx = context();
      expect(await adapterTask('xta-inbox', 'poll', adapters)(ctx)).to.deep.equal({ items: 3 });
      expect(signals).to.deep.equal([ctx.signal]);
      for (const id of ['http-out', 'missing']) {
        let thrown: unknown;
        try {
          await adapterTask(id, 'poll', adapters)(ctx);
        } catch (err) {
          thrown = err;
        }
        expect((thrown as AmtError).code).to.equal('AMT_ADAPTER_UNKNOWN');
      }
    });
  });
});
