import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import busboy from 'busboy';
import { expect } from 'chai';
import express from 'express';
import type { AdapterInstance } from '../../src/adapter-contract.js';
import { AmtError } from '../../src/errors.js';
import { httpAdapter, type HttpAdapterConfig } from './manifest.js';
import {
  closedPort,
  fakeContext,
  fileAttachment,
  makeDelivery,
  settle,
  startServer,
  type RecordingContext,
  type RunningServer,
} from './test-support.js';

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

describe('http adapter: delivery against a real receiver', () => {
  let dir: string;
  let context: RecordingContext;
  let server: RunningServer;
  let received: Received[];
  const instances: AdapterInstance[] = [];

  function adapter(config: Omit<HttpAdapterConfig, 'url'> & { url?: string }): AdapterInstance {
    const instance = httpAdapter.create(context, { url: `${server.url}/antraege`, ...config });
    instances.push(instance);
    return instance;
  }

  async function rejection(
    instance: AdapterInstance,
    signal = new AbortController().signal,
  ): Promise<AmtError> {
    const outcome = await settle(instance.deliver!(makeDelivery(), signal));
    expect(outcome.error, 'the delivery should fail').to.be.instanceOf(AmtError);
    return outcome.error as AmtError;
  }

  before(async () => {
    const app = express();
    app.use(express.text({ type: ['application/xml', 'application/json', 'text/*'] }));
    app.use((req, _res, next) => {
      received.push({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: typeof req.body === 'string' ? req.body : '',
      });
      next();
    });
    app.post('/antraege', (_req, res) => {
      res.status(201).location('/antraege/FV-2026-4711').json({ id: 'FV-2026-4711' });
    });
    app.put('/vorgaenge/:ars/:service/:deliveryId', (req, res) => {
      res.status(200).json({ vorgang: { nummer: 88231, params: req.params } });
    });
    app.post('/status/:code', (req, res) => {
      const code = Number(req.params.code);
      if (req.query.retryAfter) res.set('Retry-After', String(req.query.retryAfter));
      res
        .status(code)
        .type('application/problem+json')
        .json({
          type: 'https://fachverfahren.example/probleme/ungueltig',
          title: 'Antrag unvollständig',
          detail: 'Feld /gewerbe/beginn fehlt',
          instance: '/antraege/raw-secret-echo',
          invalidParams: [{ name: 'beginn', reason: 'fehlt', echoedBody: 'x'.repeat(5000) }],
        });
    });
    app.post('/plain-404', (_req, res) => {
      res.status(404).type('text/html').send('<html><body>Stack trace: internal details here</body></html>');
    });
    app.post('/redirect', (_req, res) => {
      res.redirect(307, '/antraege');
    });
    app.post('/slow', (_req, res) => {
      setTimeout(() => res.status(201).end(), 3000).unref();
    });
    app.post('/after-a-moment', (_req, res) => {
      setTimeout(() => res.status(201).location('/antraege/spaet').end(), 50).unref();
    });
    app.post('/stalled-body', (_req, res) => {
      res.status(201).type('application/json').write('{"id":');
      setTimeout(() => res.end('"late"}'), 3000).unref();
    });
    server = await startServer(app);
  });

  after(async () => {
    await server.close();
  });

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-http-'));
    context = fakeContext(dir);
    received = [];
  });

  afterEach(async () => {
    await Promise.all(instances.splice(0).map((i) => i.close?.()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('POSTs the body with idempotency and trace headers and reads the Location header', async () => {
    const delivery = makeDelivery();
    const result = await adapter({ headers: { 'X-Mandant': '055150000000' } }).deliver!(
      delivery,
      new AbortController().signal,
    );
    expect(result.remoteReference).to.equal('/antraege/FV-2026-4711');
    expect(received).to.have.length(1);
    const [request] = received;
    expect(request!.method).to.equal('POST');
    expect(request!.body).to.equal(delivery.body.content);
    expect(request!.headers['idempotency-key']).to.equal(delivery.deliveryId);
    expect(request!.headers['x-amtsbote-delivery-id']).to.equal(delivery.deliveryId);
    expect(request!.headers['x-amtsbote-message-id']).to.equal(delivery.messageId);
    expect(request!.headers['content-type']).to.equal('application/xml');
    expect(request!.headers['x-mandant']).to.equal('055150000000');
    expect(request!.headers.authorization).to.equal(undefined);
  });

  it('sends a Buffer body unchanged', async () => {
    const content = Buffer.from('{"antrag":{"name":"Müller"}}', 'utf8');
    await adapter({}).deliver!(
      makeDelivery({ body: { contentType: 'application/json', content } }),
      new AbortController().signal,
    );
    expect(received[0]!.body).to.equal(content.toString('utf8'));
    expect(received[0]!.headers['content-type']).to.equal('application/json');
  });

  it('fills URL placeholders URL-encoded, PUTs, and reads the reference by JSON pointer', async () => {
    const delivery = makeDelivery({ deliveryId: 'dlv/1 ?&#' });
    const instance = adapter({
      url: `${server.url}/vorgaenge/{ars}/{service}/{deliveryId}`,
      method: 'PUT',
      remoteReference: { jsonPointer: '/vorgang/nummer' },
    });
    const result = await instance.deliver!(delivery, new AbortController().signal);
    expect(received[0]!.method).to.equal('PUT');
    expect(received[0]!.url).to.equal(
      `/vorgaenge/055150000000/99050012104000/${encodeURIComponent('dlv/1 ?&#')}`,
    );
    expect(result.remoteReference).to.equal('88231');
  });

  it('delivers without a reference when the configured pointer finds nothing, and warns', async () => {
    const result = await adapter({ remoteReference: { jsonPointer: '/nope' } }).deliver!(
      makeDelivery(),
      new AbortController().signal,
    );
    expect(result.remoteReference).to.equal(undefined);
    expect(context.lines.some((l) => l.level === 'warn' && /no reference/.test(l.message))).to.equal(true);
  });

  it('rejects unknown placeholders and adapter-owned headers at creation', () => {
    expect(() => adapter({ url: `${server.url}/x/{tenant}` }))
      .to.throw(AmtError)
      .with.property('code', 'AMT_CONFIG_INVALID');
    expect(() => adapter({ headers: { 'idempotency-key': 'fixed' } }))
      .to.throw(AmtError)
      .with.property('code', 'AMT_CONFIG_INVALID');
  });

  it('classifies 500 as retryable', async () => {
    const error = await rejection(adapter({ url: `${server.url}/status/500` }));
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(error.retryAfterSeconds).to.equal(undefined);
    expect(error.message).to.contain('500');
  });

  for (const status of [408, 425, 502, 504]) {
    it(`classifies ${status} as retryable`, async () => {
      const error = await rejection(adapter({ url: `${server.url}/status/${status}` }));
      expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    });
  }

  it('takes Retry-After seconds from a 429', async () => {
    const error = await rejection(adapter({ url: `${server.url}/status/429?retryAfter=120` }));
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(error.retryAfterSeconds).to.equal(120);
  });

  it('takes a Retry-After HTTP date from a 429 and from a 503', async () => {
    const at = new Date(Date.now() + 600_000).toUTCString();
    for (const status of [429, 503]) {
      const error = await rejection(
        adapter({ url: `${server.url}/status/${status}?retryAfter=${encodeURIComponent(at)}` }),
      );
      expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
      // An HTTP date has one-second resolution and the clock moves on while the test runs.
      expect(error.retryAfterSeconds).to.be.within(590, 600);
    }
  });

  it('rejects a 400 permanently with the problem title and detail, not the whole body', async () => {
    const error = await rejection(adapter({ url: `${server.url}/status/400` }));
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(error.message).to.contain('400');
    expect(error.message).to.contain('Antrag unvollständig');
    expect(error.message).to.contain('Feld /gewerbe/beginn fehlt');
    expect(error.message).not.to.contain('raw-secret-echo');
    expect(error.message).not.to.contain('xxxxxxxx');
    expect(error.message.length).to.be.below(600);
  });

  it('rejects a 404 with an HTML body without quoting the body', async () => {
    const error = await rejection(adapter({ url: `${server.url}/plain-404` }));
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(error.message).to.contain('404');
    expect(error.message).not.to.contain('Stack trace');
  });

  it('does not follow a redirect and rejects it as a configuration problem', async () => {
    const error = await rejection(adapter({ url: `${server.url}/redirect` }));
    expect(error.code).to.equal('AMT_DELIVERY_REJECTED');
    expect(error.message).to.contain('307');
    expect(received).to.have.length(1);
  });

  it('classifies a refused connection as retryable', async () => {
    const port = await closedPort();
    const error = await rejection(adapter({ url: `http://127.0.0.1:${port}/antraege` }));
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(error.message).to.contain('ECONNREFUSED');
  });

  it('classifies an unresolvable host as retryable', async () => {
    const error = await rejection(adapter({ url: 'http://fachverfahren.invalid/antraege' }));
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(error.message).to.match(/ENOTFOUND|EAI_AGAIN/);
  });

  it('classifies a reset connection as retryable', async () => {
    const resetting = await startServer((req) => req.socket.destroy());
    try {
      const error = await rejection(adapter({ url: `${resetting.url}/antraege` }));
      expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect(error.message).to.match(/ECONNRESET|socket hang up/);
    } finally {
      await resetting.close();
    }
  });

  it('classifies an answer cut off in its body as retryable, not as delivered', async () => {
    const cutting = await startServer((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"id":"FV-');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    try {
      const error = await rejection(adapter({ url: `${cutting.url}/antraege` }));
      expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    } finally {
      await cutting.close();
    }
  });

  it('classifies a timeout as retryable', async () => {
    const error = await rejection(adapter({ url: `${server.url}/slow`, timeout: '200ms' }));
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(error.message).to.contain('did not answer within 200 ms');
  });

  it('counts reading the answer into the timeout', async () => {
    const error = await rejection(adapter({ url: `${server.url}/stalled-body`, timeout: '200ms' }));
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(error.message).to.contain('did not answer within 200 ms');
  });

  it('accepts the timeout as a number of milliseconds', async () => {
    const error = await rejection(adapter({ url: `${server.url}/slow`, timeout: 150 }));
    expect(error.message).to.contain('did not answer within 150 ms');
  });

  it('waits out a timeout longer than a Node timer can (1000h) as the longest one, not as 1 ms', async () => {
    const result = await adapter({ url: `${server.url}/after-a-moment`, timeout: '1000h' }).deliver!(
      makeDelivery(),
      new AbortController().signal,
    );
    expect(result.remoteReference).to.equal('/antraege/spaet');
  });

  it('aborts the request when the signal aborts', async () => {
    let requestArrived!: () => void;
    const arrived = new Promise<void>((resolve) => (requestArrived = resolve));
    let connectionClosed!: () => void;
    const closed = new Promise<void>((resolve) => (connectionClosed = resolve));
    const hanging = await startServer((req) => {
      req.socket.on('close', () => connectionClosed());
      requestArrived();
    });
    try {
      const controller = new AbortController();
      const pending = settle(
        adapter({ url: `${hanging.url}/antraege` }).deliver!(makeDelivery(), controller.signal),
      );
      await arrived;
      controller.abort(new Error('shutdown'));
      const outcome = await pending;
      expect(outcome.error).to.be.instanceOf(AmtError);
      expect((outcome.error as AmtError).code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect((outcome.error as AmtError).message).to.contain('aborted');
      await closed;
    } finally {
      await hanging.close();
    }
  });

  it('does not send anything when the signal is already aborted', async () => {
    const error = await rejection(adapter({}), AbortSignal.abort());
    expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
    expect(received).to.have.length(0);
  });

  it('omits attachments by default', async () => {
    const file = path.join(dir, 'nachweis.pdf');
    writeFileSync(file, '%PDF-1.7 test');
    await adapter({}).deliver!(
      makeDelivery({ attachments: [fileAttachment(file, 'application/pdf')] }),
      new AbortController().signal,
    );
    expect(received[0]!.headers['content-type']).to.equal('application/xml');
  });
});

describe('http adapter: multipart with streamed attachments', () => {
  let dir: string;
  let server: RunningServer;
  let parts: { name: string; filename?: string; mimeType: string; sha256: string; size: number }[] = [];
  let messageArrived: Promise<void>;
  let onMessage: () => void;

  before(async () => {
    server = await startServer((req, res) => {
      const parser = busboy({ headers: req.headers, defParamCharset: 'utf8' });
      parser.on('field', (name, value, info) => {
        if (name === 'message') onMessage();
        parts.push({
          name,
          mimeType: info.mimeType,
          sha256: createHash('sha256').update(value).digest('hex'),
          size: Buffer.byteLength(value),
        });
      });
      parser.on('file', (name, stream, info) => {
        const hash = createHash('sha256');
        let size = 0;
        stream.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          size += chunk.length;
        });
        stream.on('end', () =>
          parts.push({
            name,
            filename: info.filename,
            mimeType: info.mimeType,
            sha256: hash.digest('hex'),
            size,
          }),
        );
      });
      parser.on('close', () => {
        res.statusCode = 201;
        res.setHeader('Location', '/eingang/1');
        res.end();
      });
      req.pipe(parser);
    });
    dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-http-mp-'));
  });

  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    parts = [];
    messageArrived = new Promise<void>((resolve) => (onMessage = resolve));
  });

  it('sends the message as part `message` and each attachment as a file part with the exact bytes', async () => {
    const big = path.join(dir, 'bauzeichnung.tif');
    // Several MB of random bytes: a truncated or re-encoded stream changes the hash.
    const content = randomBytes(6 * 1024 * 1024 + 123);
    writeFileSync(big, content);
    const small = path.join(dir, 'ausweis.pdf');
    writeFileSync(small, '%PDF-1.7\nAusweis');
    const delivery = makeDelivery({
      attachments: [
        fileAttachment(big, 'image/tiff', 'Bauzeichnung "Süd".tif'),
        fileAttachment(small, 'application/pdf'),
      ],
    });
    const context = fakeContext(dir);
    const instance = httpAdapter.create(context, { url: `${server.url}/eingang`, attachments: 'multipart' });
    try {
      const result = await instance.deliver!(delivery, new AbortController().signal);
      expect(result.remoteReference).to.equal('/eingang/1');
    } finally {
      await instance.close?.();
    }
    expect(parts.map((p) => p.name)).to.deep.equal(['message', 'attachment', 'attachment']);
    const [message, first, second] = parts;
    expect(message!.mimeType).to.equal('application/xml');
    expect(message!.sha256).to.equal(createHash('sha256').update(delivery.body.content).digest('hex'));
    expect(first!.filename).to.equal('Bauzeichnung %22Süd%22.tif');
    expect(first!.mimeType).to.equal('image/tiff');
    expect(first!.size).to.equal(content.length);
    expect(first!.sha256).to.equal(delivery.attachments[0]!.ref.sha256);
    expect(second!.filename).to.equal('ausweis.pdf');
    expect(second!.sha256).to.equal(delivery.attachments[1]!.ref.sha256);
  });

  it('fails retryably, without a half body accepted, when an attachment cannot be read', async () => {
    const missing = path.join(dir, 'weg.pdf');
    const attachment = {
      ref: { sha256: '1'.repeat(64), size: 11, filename: 'weg.pdf', mediaType: 'application/pdf' },
      path: missing,
      open: () => createReadStream(missing),
    };
    const instance = httpAdapter.create(fakeContext(dir), {
      url: `${server.url}/eingang`,
      attachments: 'multipart',
    });
    try {
      const error = await instance.deliver!(
        makeDelivery({ attachments: [attachment] }),
        new AbortController().signal,
      ).then(
        () => expect.fail('delivered although the attachment is missing'),
        (err: unknown) => err as AmtError,
      );
      expect(error.code).to.equal('AMT_DELIVERY_RETRYABLE');
      expect(error.message).to.contain('ENOENT');
    } finally {
      await instance.close?.();
    }
    expect(parts.some((p) => p.name === 'attachment')).to.equal(false);
  });

  it('streams an attachment: the receiver gets the message before the attachment source has ended', async () => {
    const source = new PassThrough();
    const attachment = {
      ref: { sha256: '0'.repeat(64), size: 11, filename: 'live.bin', mediaType: 'application/octet-stream' },
      path: path.join(dir, 'live.bin'),
      open: () => source,
    };
    const instance = httpAdapter.create(fakeContext(dir), {
      url: `${server.url}/eingang`,
      attachments: 'multipart',
    });
    try {
      const pending = instance.deliver!(
        makeDelivery({ attachments: [attachment] }),
        new AbortController().signal,
      );
      // A buffering implementation would wait for the end of the source before sending a byte.
      await messageArrived;
      source.end(Buffer.from('late chunks'));
      await pending;
    } finally {
      await instance.close?.();
    }
    const file = parts.find((p) => p.name === 'attachment');
    expect(file!.sha256).to.equal(createHash('sha256').update('late chunks').digest('hex'));
  });
});
