/**
 * Runs every case of every `mappings/**\/*.test.yaml` as a mocha test, so `npm test` checks
 * all shipped mappings (output, canonical XML, XSD validity, expected failures).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { discoverMappingTests, loadMappingTestSuite, runMappingTestCase } from '../src/mapping/testing.js';
import type { MappingTestSuite } from '../src/mapping/testing.js';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('shipped mappings', () => {
  const files = discoverMappingTests([here]);

  it('has test files', () => {
    if (files.length === 0) throw new Error(`no *.test.yaml below ${here}`);
  });

  for (const file of files) {
    let suite: MappingTestSuite;
    try {
      suite = loadMappingTestSuite(file);
    } catch (err) {
      it(`${path.relative(here, file)} can be read`, () => {
        throw err;
      });
      continue;
    }
    describe(path.relative(here, file), () => {
      for (const testCase of suite.cases) {
        it(testCase.name, async () => {
          const result = await runMappingTestCase(suite, testCase);
          if (!result.passed) {
            throw new Error(
              `${path.relative(process.cwd(), file)}:${testCase.line}\n${result.failures.join('\n')}`,
            );
          }
        });
      }
    });
  }
});
