/**
 * A ready FIT-Connect world for adapter tests: a running emulator, an API client, one destination
 * of the city (encryption key certified by the test CA, a signing key), its private key files on
 * disk, and an adapter configuration pointing at all of it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FitConnectConfig } from '../../../adapters/fit-connect/config.js';
import {
  startFitConnectEmulator,
  type FitConnectEmulator,
  type FitConnectEmulatorOptions,
} from './emulator.js';
import {
  decryptionJwk,
  encryptionJwk,
  fitConnectTestKeys,
  privateSigningJwk,
  signingJwk,
  type FitConnectTestKeys,
} from './keys.js';
import type { EmulatedDestination } from './state.js';

export const SERVICE_KEY = '99123456760610';
export const CITY_ARS = '055150000000';
export const SCHEMA_URI = 'https://schema.example.org/fachdaten/wohnsitz-anmeldung.schema.json';

export interface FitConnectFixture {
  readonly emulator: FitConnectEmulator;
  readonly keys: FitConnectTestKeys;
  readonly client: { clientId: string; clientSecret: string };
  readonly destination: EmulatedDestination;
  readonly dir: string;
  readonly decryptionKeyFile: string;
  readonly signingKeyFile: string;
  readonly trustAnchorFile: string;
  /** Adapter config for sending to `destination` (fixed destination id) with status polling. */
  sendingConfig(overrides?: Partial<FitConnectConfig>): FitConnectConfig;
  /** Adapter config for receiving on `destination`. */
  receivingConfig(overrides?: Partial<NonNullable<FitConnectConfig['receiving']>>): FitConnectConfig;
  close(): Promise<void>;
}

export async function fitConnectFixture(options: FitConnectEmulatorOptions = {}): Promise<FitConnectFixture> {
  const keys = await fitConnectTestKeys();
  const emulator = await startFitConnectEmulator(options);
  const client = emulator.state.addClient();
  const x5c = keys.trustedCa.issue(keys.destinationEncryption, 'Stadt Münster Zustellpunkt');
  const destination = emulator.state.addDestination({
    encryptionKey: encryptionJwk(keys.destinationEncryption, x5c),
    signingKeys: [signingJwk(keys.destinationSigning)],
    services: [SERVICE_KEY],
    schemaUri: SCHEMA_URI,
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'amtsbote-fit-'));
  const decryptionKeyFile = path.join(dir, 'decryption.jwk.json');
  const signingKeyFile = path.join(dir, 'signing.jwk.json');
  const trustAnchorFile = path.join(dir, 'root-ca.pem');
  writeFileSync(decryptionKeyFile, JSON.stringify(decryptionJwk(keys.destinationEncryption)));
  writeFileSync(signingKeyFile, JSON.stringify(privateSigningJwk(keys.destinationSigning)));
  writeFileSync(trustAnchorFile, keys.trustedCa.pem);
  const base = {
    submissionApiUrl: emulator.url,
    tokenUrl: emulator.tokenUrl,
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    jwksUrl: emulator.jwksUrl,
    requestTimeout: '10s',
  };
  return {
    emulator,
    keys,
    client,
    destination,
    dir,
    decryptionKeyFile,
    signingKeyFile,
    trustAnchorFile,
    sendingConfig: (overrides = {}) => ({
      ...base,
      sending: { destinationId: destination.destinationId, trustAnchorFile },
      status: { enabled: true },
      ...overrides,
    }),
    receivingConfig: (overrides = {}) => ({
      ...base,
      receiving: {
        destinations: [
          { destinationId: destination.destinationId, ars: CITY_ARS, decryptionKeyFile, signingKeyFile },
        ],
        ...overrides,
      },
    }),
    async close() {
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
