/**
 * Bad input gets a precise 4xx problem and leaves nothing stored — every case checks both.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { assertMatchesOpenApi } from './openapi-check.js';
import {
  application,
  KEYS,
  messageCount,
  startHarness,
  type ApiResponse,
  type Harness,
  type RequestOptions,
} from './harness.js';

interface Case {
  readonly name: string;
  readonly request: RequestOptions;
  readonly status: number;
  readonly code: string;
  /** Problem paths the answer must name. */
  readonly paths?: readonly string[];
}

const json = { 'content-type': 'application/json' };
const raw = (text: string | Buffer, headers: Record<string, string> = json): RequestOptions => ({
  key: KEYS.muenster,
  body: text,
  headers,
});
const submit = (app: unknown): RequestOptions => ({ key: KEYS.muenster, json: app });

function nested(depth: number): unknown {
  let value: unknown = 'tief';
  for (let i = 0; i < depth; i++) value = { level: value };
  return value;
}

const cases: readonly Case[] = [
  { name: 'malformed JSON', request: raw('{"tenant": "0551'), status: 400, code: 'AMT_BODY_MALFORMED' },
  { name: 'an empty body', request: raw(''), status: 400, code: 'AMT_BODY_MALFORMED' },
  {
    name: 'trailing garbage after JSON',
    request: raw(`${JSON.stringify(application())} x`),
    status: 400,
    code: 'AMT_BODY_MALFORMED',
  },
  {
    name: 'ARS as a number',
    request: raw(JSON.stringify(application()).replace('"055150000000"', '055150000000')),
    status: 400,
    code: 'AMT_BODY_MALFORMED',
  },
  {
    name: 'ARS as a number without leading zero',
    request: submit(application({ tenant: 55150000000 })),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/tenant'],
  },
  {
    name: 'ARS with 8 digits (AGS)',
    request: submit(application({ tenant: '05515000' })),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/tenant'],
  },
  {
    name: 'service as a number',
    request: submit(application({ service: 99058012104000 })),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/service'],
  },
  {
    name: 'applicant as a string',
    request: submit(application({ applicant: 'Erika Mustermann' })),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/applicant'],
  },
  {
    name: 'missing reference and data',
    request: submit({ tenant: '055150000000', service: '99058012104000', applicant: {} }),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/reference', '/data'],
  },
  {
    name: 'an extra top-level key',
    request: submit(application({ priority: 'high' })),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/priority'],
  },
  {
    name: 'an array instead of an object',
    request: submit([application()]),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/'],
  },
  { name: 'JSON null', request: raw('null'), status: 422, code: 'AMT_VALIDATION_FAILED' },
  {
    name: 'an attachment that is not base64',
    request: submit(
      application({
        attachments: [{ filename: 'a.pdf', mediaType: 'application/pdf', contentBase64: 'not base64!' }],
      }),
    ),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/attachments/0/contentBase64'],
  },
  {
    name: 'an attachment file name with a directory',
    request: submit(
      application({
        attachments: [{ filename: '../../etc/passwd', mediaType: 'text/plain', contentBase64: 'AAAA' }],
      }),
    ),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/attachments/0/filename'],
  },
  {
    name: 'an attachment with an unknown key',
    request: submit(
      application({
        attachments: [{ filename: 'a.txt', mediaType: 'text/plain', contentBase64: 'AAAA', path: '/tmp/a' }],
      }),
    ),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/attachments/0/path'],
  },
  {
    name: 'an unknown tenant',
    request: submit(application({ tenant: '051110000000' })),
    status: 422,
    code: 'AMT_UNKNOWN_TENANT',
    paths: ['/tenant'],
  },
  {
    name: 'a service without a route',
    request: submit(application({ service: '99123456789012' })),
    status: 422,
    code: 'AMT_NO_ROUTE',
    paths: ['/service'],
  },
  {
    name: 'another tenant’s submission',
    request: submit(application({ tenant: '057110000000' })),
    status: 403,
    code: 'AMT_FORBIDDEN',
  },
  {
    name: 'JSON larger than the body limit',
    request: submit(application({ data: { text: 'x'.repeat(70_000) } })),
    status: 413,
    code: 'AMT_BODY_TOO_LARGE',
  },
  { name: 'no API key', request: { json: application() }, status: 401, code: 'AMT_AUTH_MISSING' },
  {
    name: 'an unknown API key',
    request: { key: 'guessed-key', json: application() },
    status: 401,
    code: 'AMT_AUTH_INVALID',
  },
  {
    name: 'Basic instead of Bearer',
    request: {
      json: application(),
      headers: { authorization: `Basic ${Buffer.from(`x:${KEYS.muenster}`).toString('base64')}` },
    },
    status: 401,
    code: 'AMT_AUTH_INVALID',
  },
  {
    name: 'text/plain',
    request: raw(JSON.stringify(application()), { 'content-type': 'text/plain' }),
    status: 415,
    code: 'AMT_UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'no content type',
    request: raw(Buffer.from(JSON.stringify(application())), {}),
    status: 415,
    code: 'AMT_UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'a form-urlencoded body',
    request: raw('tenant=055150000000', { 'content-type': 'application/x-www-form-urlencoded' }),
    status: 415,
    code: 'AMT_UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'JSON in latin1',
    request: raw(JSON.stringify(application()), { 'content-type': 'application/json; charset=iso-8859-1' }),
    status: 415,
    code: 'AMT_UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'a gzip content encoding',
    request: raw(JSON.stringify(application()), { ...json, 'content-encoding': 'gzip' }),
    status: 415,
    code: 'AMT_UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'JSON nested 100 levels deep',
    request: submit(application({ data: nested(100) })),
    status: 400,
    code: 'AMT_BODY_MALFORMED',
  },
  { name: 'a bare deep array', request: raw('['.repeat(10_000)), status: 400, code: 'AMT_BODY_MALFORMED' },
  {
    name: 'invalid UTF-8',
    request: raw(
      Buffer.concat([
        Buffer.from('{"tenant":"055150000000","reference":"'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}'),
      ]),
    ),
    status: 400,
    code: 'AMT_BODY_MALFORMED',
  },
  {
    name: 'an integer that JSON.parse would round',
    request: raw(
      JSON.stringify(application()).replace('"zone":"A"', '"zone":"A","kassenzeichen":12345678901234567891'),
    ),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/data/kassenzeichen'],
  },
  {
    name: 'a NUL character in the applicant’s address',
    request: submit(
      application({
        applicant: { givenName: 'Erika', familyName: 'Muster\u0000mann', address: { locality: 'M\u0001s' } },
      }),
    ),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/applicant/familyName', '/applicant/address/locality'],
  },
  {
    name: 'a lone surrogate in the data',
    request: raw(JSON.stringify(application()).replace('"zone":"A"', '"zone":"A\\ud83d"')),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/data/zone'],
  },
  {
    name: 'a noncharacter U+FFFF as it is, not escaped',
    request: raw(JSON.stringify(application({ data: { note: 'Ende\uffff' } }))),
    status: 422,
    code: 'AMT_VALIDATION_FAILED',
    paths: ['/data/note'],
  },
  {
    name: 'an Idempotency-Key with a space',
    request: { ...submit(application()), headers: { 'idempotency-key': 'two words' } },
    status: 400,
    code: 'AMT_IDEMPOTENCY_KEY_INVALID',
  },
  {
    name: 'an Idempotency-Key of 201 characters',
    request: { ...submit(application()), headers: { 'idempotency-key': 'k'.repeat(201) } },
    status: 400,
    code: 'AMT_IDEMPOTENCY_KEY_INVALID',
  },
  {
    name: 'an empty Idempotency-Key',
    request: { ...submit(application()), headers: { 'idempotency-key': '' } },
    status: 400,
    code: 'AMT_IDEMPOTENCY_KEY_INVALID',
  },
];

function expectProblem(res: ApiResponse, status: number, code: string): void {
  expect(res.status, res.text).to.equal(status);
  expect(res.headers.get('content-type')).to.match(/^application\/problem\+json/);
  expect(res.body.code).to.equal(code);
  expect(res.body.type).to.equal(`https://amtsbote.de/errors/${code}`);
  expect(res.body.status).to.equal(status);
}

describe('http: bad input', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  for (const c of cases) {
    it(`${c.name} → ${c.status} ${c.code}, nothing stored`, async () => {
      const res = await h.request('POST', '/api/v1/applications', c.request);
      expectProblem(res, c.status, c.code);
      if (c.paths)
        expect(res.body.problems.map((p: { path: string }) => p.path)).to.include.members([...c.paths]);
      expect(await messageCount(h.store)).to.equal(0);
      expect(h.state.accepted).to.equal(0);
    });
  }

  it('answers alike on the spellings of the path that go through the router (trailing slash, case, query)', async () => {
    // The canonical request line is served without express; these reach the same handler through
    // express' route. Headers and problem documents must not tell the two apart.
    const unauthenticated: Case = {
      name: 'no key',
      request: { json: application() },
      status: 401,
      code: 'AMT_AUTH_MISSING',
    };
    const shape = (res: ApiResponse): unknown => ({
      status: res.status,
      contentType: res.headers.get('content-type'),
      cacheControl: res.headers.get('cache-control'),
      wwwAuthenticate: res.headers.get('www-authenticate'),
      body: { ...res.body, instance: undefined },
    });
    for (const c of [...cases, unauthenticated]) {
      const canonical = await h.request('POST', '/api/v1/applications', c.request);
      expectProblem(canonical, c.status, c.code);
      for (const spelling of [
        '/api/v1/applications/',
        '/API/V1/Applications',
        '/api/v1/applications?via=router',
      ]) {
        const routed = await h.request('POST', spelling, {
          ...c.request,
          documentedAs: '/api/v1/applications',
        });
        expect(shape(routed), `${c.name} at ${spelling}`).to.deep.equal(shape(canonical));
      }
    }
    expect(await messageCount(h.store)).to.equal(0);
  });

  it('401 answers carry WWW-Authenticate: Bearer', async () => {
    const missing = await h.request('POST', '/api/v1/applications', { json: application() });
    expect(missing.headers.get('www-authenticate')).to.equal('Bearer');
    const invalid = await h.request('GET', '/api/v1/applications/00000000-0000-4000-8000-000000000000', {
      key: 'nope',
    });
    expect(invalid.status).to.equal(401);
    expect(invalid.headers.get('www-authenticate')).to.match(/^Bearer/);
  });

  it('a body over the limit without Content-Length (chunked) is 413 as well', async () => {
    const chunk = new TextEncoder().encode(`{"tenant":"055150000000","data":{"t":"${'x'.repeat(16_000)}`);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const response = await fetch(`${h.url}/api/v1/applications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.muenster}`, 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    const text = await response.text();
    assertMatchesOpenApi({
      method: 'POST',
      path: '/api/v1/applications',
      status: response.status,
      headers: response.headers,
      text,
    });
    expect(response.status).to.equal(413);
    expect((JSON.parse(text) as { code: string }).code).to.equal('AMT_BODY_TOO_LARGE');
    expect(await messageCount(h.store)).to.equal(0);
  });

  it('another tenant’s message is 404, exactly like an unknown id', async () => {
    const accepted = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: application(),
    });
    const foreign = await h.request('GET', `/api/v1/applications/${accepted.body.id}`, {
      key: KEYS.bielefeld,
    });
    const unknown = await h.request('GET', '/api/v1/applications/00000000-0000-4000-8000-000000000000', {
      key: KEYS.bielefeld,
    });
    expectProblem(foreign, 404, 'AMT_NOT_FOUND');
    expectProblem(unknown, 404, 'AMT_NOT_FOUND');
    expect(foreign.body.detail).to.equal(unknown.body.detail);
    expect(foreign.body.title).to.equal(unknown.body.title);
  });

  describe('multipart', () => {
    const post = (form: FormData, headers: Record<string, string> = {}): Promise<ApiResponse> =>
      h.request('POST', '/api/v1/applications', { key: KEYS.muenster, body: form, headers });

    it('an attachment over the limit → 413 AMT_ATTACHMENT_TOO_LARGE, nothing stored', async () => {
      const form = new FormData();
      form.append('application', JSON.stringify(application()));
      form.append('attachment', new Blob(['klein']), 'klein.txt');
      form.append('attachment', new Blob([Buffer.alloc(300_000, 1)]), 'gross.bin');
      const res = await post(form);
      expectProblem(res, 413, 'AMT_ATTACHMENT_TOO_LARGE');
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('a disk that cannot take the file → 503 AMT_ATTACHMENTS_UNAVAILABLE with Retry-After, not a malformed body', async () => {
      // A file where the attachments' temp directory should be: writing fails as on a full disk.
      const tmp = path.join(h.attachments.dir, '.tmp');
      rmSync(tmp, { recursive: true, force: true });
      writeFileSync(tmp, '');
      try {
        const form = new FormData();
        form.append('application', JSON.stringify(application()));
        form.append('attachment', new Blob([Buffer.alloc(10_000, 1)]), 'scan.pdf');
        const res = await post(form);
        expectProblem(res, 503, 'AMT_ATTACHMENTS_UNAVAILABLE');
        expect(res.headers.get('retry-after')).to.match(/^\d+$/);
        const inline = await h.request('POST', '/api/v1/applications', {
          key: KEYS.muenster,
          json: application({
            attachments: [{ filename: 'a.pdf', mediaType: 'application/pdf', contentBase64: 'JVBERi0xLjc=' }],
          }),
        });
        expectProblem(inline, 503, 'AMT_ATTACHMENTS_UNAVAILABLE');
        expect(await messageCount(h.store)).to.equal(0);
      } finally {
        rmSync(tmp, { force: true });
        mkdirSync(tmp);
      }
    });

    it('a bad application part sent first is rejected before any file is written', async () => {
      const content = Buffer.from('would be an orphan');
      const form = new FormData();
      form.append('application', JSON.stringify(application({ tenant: 55150000000 })));
      form.append('attachment', new Blob([content]), 'a.txt');
      const res = await post(form);
      expectProblem(res, 422, 'AMT_VALIDATION_FAILED');
      expect(res.body.problems.map((p: { path: string }) => p.path)).to.include('/tenant');
      expect(existsSync(h.attachments.pathOf(createHash('sha256').update(content).digest('hex')))).to.equal(
        false,
      );
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('a bad application part after the files: the files stay as unreferenced content, nothing is stored', async () => {
      const form = new FormData();
      form.append('attachment', new Blob(['vorher']), 'a.txt');
      form.append('application', JSON.stringify(application({ tenant: '051110000000' })));
      const res = await post(form);
      expectProblem(res, 422, 'AMT_UNKNOWN_TENANT');
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('inline attachments are not allowed in the application part', async () => {
      const form = new FormData();
      form.append('application', JSON.stringify(application({ attachments: [] })));
      const res = await post(form);
      expectProblem(res, 422, 'AMT_VALIDATION_FAILED');
      expect(res.body.problems.map((p: { path: string }) => p.path)).to.include('/attachments');
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('a control character in the application part → 422 naming its path, no file written', async () => {
      const content = Buffer.from('never stored');
      const form = new FormData();
      form.append('application', JSON.stringify(application({ data: { note: 'Glocke\u0007' } })));
      form.append('attachment', new Blob([content]), 'a.txt');
      const res = await post(form);
      expectProblem(res, 422, 'AMT_VALIDATION_FAILED');
      expect(res.body.problems.map((p: { path: string }) => p.path)).to.deep.equal(['/data/note']);
      expect(existsSync(h.attachments.pathOf(createHash('sha256').update(content).digest('hex')))).to.equal(
        false,
      );
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('no application part → 422 naming /application', async () => {
      const form = new FormData();
      form.append('attachment', new Blob(['x']), 'x.txt');
      const res = await post(form);
      expectProblem(res, 422, 'AMT_VALIDATION_FAILED');
      expect(res.body.problems).to.deep.equal([{ path: '/application', message: 'is required' }]);
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('an unknown part → 422 naming it', async () => {
      const form = new FormData();
      form.append('application', JSON.stringify(application()));
      form.append('comment', 'hello');
      const res = await post(form);
      expectProblem(res, 422, 'AMT_VALIDATION_FAILED');
      expect(res.body.problems[0].path).to.equal('/comment');
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('more purposes than files → 422', async () => {
      const form = new FormData();
      form.append('application', JSON.stringify(application()));
      form.append('purpose', 'Nachweis');
      const res = await post(form);
      expectProblem(res, 422, 'AMT_VALIDATION_FAILED');
      expect(res.body.problems[0].path).to.equal('/purpose/0');
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('more than 100 attachments → 413', async () => {
      const form = new FormData();
      form.append('application', JSON.stringify(application()));
      for (let i = 0; i < 101; i++) form.append('attachment', new Blob([`file ${i}`]), `f${i}.txt`);
      const res = await post(form);
      expectProblem(res, 413, 'AMT_BODY_TOO_LARGE');
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('malformed JSON in the application part → 400', async () => {
      const form = new FormData();
      form.append('application', '{"tenant":');
      const res = await post(form);
      expectProblem(res, 400, 'AMT_BODY_MALFORMED');
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('invalid UTF-8 in an application file part → 400', async () => {
      const form = new FormData();
      const bytes = Buffer.concat([Buffer.from('{"tenant":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
      form.append('application', new Blob([bytes], { type: 'application/json' }), 'application.json');
      const res = await post(form);
      expectProblem(res, 400, 'AMT_BODY_MALFORMED');
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('invalid UTF-8 in an application text part → 400', async () => {
      const boundary = 'amtsbote-boundary';
      const [before = '', after = ''] = JSON.stringify(application({ reference: 'MARKER' })).split('MARKER');
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="application"\r\n\r\n${before}`),
        Buffer.from([0xc3, 0x28]), // a lead byte without its continuation
        Buffer.from(`${after}\r\n--${boundary}--\r\n`),
      ]);
      const res = await h.request('POST', '/api/v1/applications', {
        key: KEYS.muenster,
        body,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      });
      expectProblem(res, 400, 'AMT_BODY_MALFORMED');
      expect(res.body.detail).to.include('UTF-8');
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('a file name or purpose that is not UTF-8 (Latin-1, say) → 422 naming it, nothing stored', async () => {
      const boundary = 'amtsbote-boundary';
      const part = (headers: string, content: Buffer | string): Buffer =>
        Buffer.concat([
          Buffer.from(`--${boundary}\r\n${headers}\r\n\r\n`),
          Buffer.from(content),
          Buffer.from('\r\n'),
        ]);
      const body = Buffer.concat([
        part('Content-Disposition: form-data; name="application"', JSON.stringify(application())),
        part(
          'Content-Disposition: form-data; name="purpose"',
          Buffer.from('Nachweis Gr\u00f6\u00dfe', 'latin1'),
        ),
        Buffer.concat([
          Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="attachment"; filename="`),
          Buffer.from('Nachweis_M\u00fcnster.pdf', 'latin1'),
          Buffer.from(`"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\r\n`),
        ]),
        Buffer.from(`--${boundary}--\r\n`),
      ]);
      const res = await h.request('POST', '/api/v1/applications', {
        key: KEYS.muenster,
        body,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      });
      expectProblem(res, 422, 'AMT_VALIDATION_FAILED');
      expect(res.body.problems).to.deep.equal([
        {
          path: '/attachment/0/filename',
          message: "is not valid UTF-8 (send it in UTF-8, or as filename*=UTF-8''…)",
        },
        { path: '/attachment/0/purpose', message: 'is not valid UTF-8' },
      ]);
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('a file name in UTF-8, raw or as filename*, is kept as sent', async () => {
      const boundary = 'amtsbote-boundary';
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="application"\r\n\r\n`),
        Buffer.from(JSON.stringify(application())),
        Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="attachment"; filename="`),
        Buffer.from('Nachweis_Münster.pdf'),
        Buffer.from(`"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 a\r\n`),
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="attachment"; `),
        Buffer.from(
          `filename*=UTF-8''Grundri%C3%9F.pdf\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 b\r\n`,
        ),
        Buffer.from(`--${boundary}--\r\n`),
      ]);
      const res = await h.request('POST', '/api/v1/applications', {
        key: KEYS.muenster,
        body,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      });
      expect(res.status, res.text).to.equal(202);
      const stored = await h.store.getMessage(res.body.id);
      expect(stored!.attachments.map((a) => a.filename)).to.deep.equal([
        'Nachweis_Münster.pdf',
        'Grundriß.pdf',
      ]);
    });

    it('a body cut off before the closing boundary → 400', async () => {
      const boundary = 'amtsbote-boundary';
      const body = [
        `--${boundary}`,
        'Content-Disposition: form-data; name="application"',
        '',
        JSON.stringify(application()),
        `--${boundary}`,
        'Content-Disposition: form-data; name="attachment"; filename="a.txt"',
        '',
        'halb',
      ].join('\r\n');
      const res = await h.request('POST', '/api/v1/applications', {
        key: KEYS.muenster,
        body,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      });
      expectProblem(res, 400, 'AMT_BODY_MALFORMED');
      expect(await messageCount(h.store)).to.equal(0);
    });

    it('no boundary → 400', async () => {
      const res = await h.request('POST', '/api/v1/applications', {
        key: KEYS.muenster,
        body: 'x',
        headers: { 'content-type': 'multipart/form-data' },
      });
      expectProblem(res, 400, 'AMT_BODY_MALFORMED');
      expect(await messageCount(h.store)).to.equal(0);
    });
  });
});

describe('http: inline attachment limit', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ bodyLimit: '1mb', attachmentLimit: '1kb' });
  });
  after(async () => {
    await h.close();
  });

  it('an inline attachment over the attachment limit → 413 AMT_ATTACHMENT_TOO_LARGE, nothing stored', async () => {
    const res = await h.request('POST', '/api/v1/applications', {
      key: KEYS.muenster,
      json: application({
        attachments: [
          {
            filename: 'gross.bin',
            mediaType: 'application/octet-stream',
            contentBase64: Buffer.alloc(2048, 7).toString('base64'),
          },
        ],
      }),
    });
    expectProblem(res, 413, 'AMT_ATTACHMENT_TOO_LARGE');
    expect(res.body.problems[0].path).to.equal('/attachments/0/contentBase64');
    expect(await messageCount(h.store)).to.equal(0);
  });
});
