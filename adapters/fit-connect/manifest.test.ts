import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { isAmtError } from '../../src/errors.js';
import { fakeContext } from '../../test/peers/fit-connect/fake-context.js';
import { resolveConfig, type FitConnectConfig } from './config.js';
import { fitConnectAdapter } from './manifest.js';

const validate = new Ajv2020({ allErrors: true, useDefaults: true, strict: false }).compile(
  fitConnectAdapter.configSchema,
);
const example = fitConnectAdapter.example as FitConnectConfig;

describe('FIT-Connect manifest', () => {
  it('declares what it can do and documents an example that passes its own schema', () => {
    expect(fitConnectAdapter.type).to.equal('fit-connect');
    expect(fitConnectAdapter.capabilities).to.deep.equal({
      outbound: true,
      inbound: true,
      poll: true,
      refresh: true,
    });
    const copy = structuredClone(example);
    expect(validate(copy), JSON.stringify(validate.errors)).to.equal(true);
  });

  it('names secret fields that exist in the schema', () => {
    for (const pointer of fitConnectAdapter.secrets) {
      let node = fitConnectAdapter.configSchema as Record<string, unknown>;
      for (const part of pointer.split('/').slice(1)) {
        node = (node.properties as Record<string, Record<string, unknown>>)[part]!;
        expect(node, pointer).to.be.an('object');
      }
      expect(node.type, pointer).to.equal('string');
    }
  });

  it('rejects unknown keys, malformed destination ids and unquoted ARS', () => {
    expect(validate({ ...example, clientSecrets: 'x' })).to.equal(false);
    expect(validate({ ...example, sending: { destinationId: 'not-a-uuid' } })).to.equal(false);
    const receiving = example.receiving!;
    const unquotedArs = {
      ...example,
      receiving: { ...receiving, destinations: [{ ...receiving.destinations[0]!, ars: 59130000000 }] },
    };
    expect(validate(unquotedArs)).to.equal(false);
    const { clientSecret: _omitted, ...withoutSecret } = example;
    expect(validate(withoutSecret)).to.equal(false);
  });

  describe('key files', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-fit-manifest-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const withKeys = (decryptionKeyFile: string, signingKeyFile: string): FitConnectConfig => ({
      ...example,
      sending: {},
      receiving: {
        destinations: [{ ...example.receiving!.destinations[0]!, decryptionKeyFile, signingKeyFile }],
      },
    });

    it('refuses a missing key file and a public key where a private one is needed, naming only the file', () => {
      const publicOnly = path.join(dir, 'public.jwk.json');
      writeFileSync(publicOnly, JSON.stringify({ kty: 'RSA', kid: 'k1', n: 'AQAB', e: 'AQAB' }));
      for (const config of [
        withKeys(path.join(dir, 'missing.json'), publicOnly),
        withKeys(publicOnly, publicOnly),
      ]) {
        let failure: unknown;
        try {
          resolveConfig(config, (p) => path.resolve(dir, p));
        } catch (err) {
          failure = err;
        }
        expect(isAmtError(failure) && failure.code).to.equal('AMT_FIT_CONNECT_KEY_INVALID');
      }
    });

    it('creates an instance with the defaults applied and no callback entry without a secret', async () => {
      const config: FitConnectConfig = {
        submissionApiUrl: 'https://submission-api-testing.fit-connect.fitko.dev/',
        tokenUrl: 'https://auth-testing.fit-connect.fitko.dev/token',
        clientId: 'c',
        clientSecret: 's',
        sending: { destinationId: '3fa85f64-5717-4562-b3fc-2c963f66afa6' },
      };
      const resolved = resolveConfig(config, (p) => path.resolve(dir, p));
      expect(resolved.apiVersion).to.equal('v1');
      expect(resolved.jwksUrl).to.equal(
        'https://submission-api-testing.fit-connect.fitko.dev/.well-known/jwks.json',
      );
      expect(resolved.sending.metadataVersion).to.match(/^1\.\d+\.\d+$/);
      expect(resolved.status.enabled).to.equal(false);
      const instance = fitConnectAdapter.create(fakeContext(), config) as {
        handleCallback?: unknown;
        close(): Promise<void>;
      };
      expect(instance.handleCallback).to.equal(undefined);
      await instance.close();
    });
  });
});
