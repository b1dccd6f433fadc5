import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { renderErrorsDoc } from '../src/errors-doc.js';
import { AmtError, ERROR_CATALOG } from '../src/errors.js';

describe('error catalog', () => {
  it('docs/errors.md lists exactly the catalog (run `npm run docs:errors` after adding a code)', () => {
    const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
    expect(doc).to.equal(renderErrorsDoc());
    for (const code of Object.keys(ERROR_CATALOG)) expect(doc).to.include(`\`${code}\``);
  });

  it('codes are stable identifiers with a sane status', () => {
    for (const [code, spec] of Object.entries(ERROR_CATALOG)) {
      expect(code).to.match(/^AMT_[A-Z0-9_]+$/);
      expect(spec.status).to.be.within(400, 599);
      expect(spec.title.length).to.be.greaterThan(5);
    }
  });

  it('AmtError carries code, status, retryability and located problems', () => {
    const err = new AmtError('AMT_VALIDATION_FAILED', 'bad', {
      problems: [{ path: '/tenant', message: 'must be a string' }],
    });
    expect(err.status).to.equal(422);
    expect(err.retryable).to.equal(false);
    expect(err.problems[0]?.path).to.equal('/tenant');
    expect(new AmtError('AMT_DELIVERY_RETRYABLE', 'x', { retryAfterSeconds: 7 }).retryAfterSeconds).to.equal(
      7,
    );
  });
});
