/** The response checker must bite: a check that accepts anything would make every test vacuous. */
import { expect } from 'chai';
import { assertMatchesOpenApi, type ObservedResponse } from './openapi-check.js';

const problem = {
  type: 'https://amtsbote.de/errors/AMT_NOT_FOUND',
  title: 'Not found',
  status: 404,
  detail: 'no such resource',
  code: 'AMT_NOT_FOUND',
};

function observed(
  overrides: Partial<Omit<ObservedResponse, 'headers'>> & { headers?: Record<string, string> },
): ObservedResponse {
  return {
    method: overrides.method ?? 'GET',
    path: overrides.path ?? '/api/v1/applications/0b6c1f9e-7f5a-4c1e-9d55-2f0f7e6a1b11',
    status: overrides.status ?? 404,
    headers: new Headers(overrides.headers ?? { 'content-type': 'application/problem+json; charset=utf-8' }),
    text: overrides.text ?? JSON.stringify(problem),
  };
}

describe('http: OpenAPI response check', () => {
  it('accepts a documented problem answer', () => {
    expect(() => assertMatchesOpenApi(observed({}))).to.not.throw();
  });

  it('rejects a status the operation does not document', () => {
    expect(() => assertMatchesOpenApi(observed({ status: 418 }))).to.throw(/does not document status 418/);
  });

  it('rejects a content type the document does not name', () => {
    expect(() =>
      assertMatchesOpenApi(observed({ headers: { 'content-type': 'application/json' } })),
    ).to.throw(/content type/);
  });

  it('rejects a body that does not match the schema', () => {
    const text = JSON.stringify({ ...problem, status: '404' });
    expect(() => assertMatchesOpenApi(observed({ text }))).to.throw(/does not match/);
    const accepted = JSON.stringify({ id: 'x', status: 'received', links: { self: '/x' }, payload: {} });
    expect(() =>
      assertMatchesOpenApi(
        observed({
          method: 'POST',
          path: '/api/v1/applications',
          status: 202,
          text: accepted,
          headers: { 'content-type': 'application/json', location: '/x' },
        }),
      ),
    ).to.throw(/does not match/);
  });

  it('rejects a missing required header', () => {
    const text = JSON.stringify({
      id: '0b6c1f9e-7f5a-4c1e-9d55-2f0f7e6a1b11',
      status: 'received',
      links: { self: '/x' },
    });
    expect(() =>
      assertMatchesOpenApi(
        observed({
          method: 'POST',
          path: '/api/v1/applications',
          status: 202,
          text,
          headers: { 'content-type': 'application/json' },
        }),
      ),
    ).to.throw(/header Location is missing/);
  });

  it('follows $ref into component schemas (a history event with a wrong status)', () => {
    const body = {
      id: '0b6c1f9e-7f5a-4c1e-9d55-2f0f7e6a1b11',
      tenant: '055150000000',
      service: '99058012104000',
      reference: null,
      status: 'received',
      remoteStatus: null,
      remoteReference: null,
      receivedAt: '2026-11-22T10:00:00.000Z',
      updatedAt: '2026-11-22T10:00:00.000Z',
      history: [{ seq: 1, at: '2026-11-22T10:00:00.000Z', status: 'received', event: 'received' }],
    };
    const ok = observed({
      status: 200,
      text: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
    expect(() => assertMatchesOpenApi(ok)).to.not.throw();
    const wrong = { ...body, history: [{ ...body.history[0], status: 'lost' }] };
    expect(() => assertMatchesOpenApi({ ...ok, text: JSON.stringify(wrong) })).to.throw(/does not match/);
  });

  it('unknown paths must answer 404 and unknown methods 405', () => {
    expect(() => assertMatchesOpenApi(observed({ path: '/nowhere', status: 200 }))).to.throw(
      /not in the document/,
    );
    expect(() => assertMatchesOpenApi(observed({ method: 'DELETE', status: 404 }))).to.throw(
      /not documented/,
    );
    const notAllowed = JSON.stringify({ ...problem, status: 405, code: 'AMT_METHOD_NOT_ALLOWED' });
    expect(() =>
      assertMatchesOpenApi(observed({ method: 'DELETE', status: 405, text: notAllowed })),
    ).to.throw(/header Allow is missing/);
  });
});
