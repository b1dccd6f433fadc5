/**
 * A FIT-Connect world on 127.0.0.1 for trying the `fit-connect` adapter without a FITKO account:
 * the emulated Zustelldienst of test/peers/fit-connect (token endpoint, Submission API, signed
 * event log, Routing API with signed routes), one destination for the Bewohnerparkausweis of
 * Stadt Dortmund with a 4096-bit encryption key certified by a test CA, and the EfA service behind
 * that destination: it holds the private keys, fetches what arrives, decrypts it, checks the
 * metadata hashes and the attachment list, and answers with a signed accept-submission (or
 * reject-submission with the problems found).
 *
 * Writes the API client's secret and the trust anchor under data/fit-connect-demo/, the files
 * examples/gateway.fit-connect.yaml refers to. Run from the repository root:
 *
 *   node --import tsx scripts/fit-connect-demo.ts [--port 8091] [--data data/fit-connect-demo]
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CompactSign, compactDecrypt, importJWK, type JWK } from 'jose';
import { startFitConnectEmulator, type FitConnectEmulator } from '../test/peers/fit-connect/emulator.js';
import {
  decryptionJwk,
  encryptionJwk,
  fitConnectTestKeys,
  privateSigningJwk,
  signingJwk,
} from '../test/peers/fit-connect/keys.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The values examples/gateway.fit-connect.yaml is written for. */
export const DEMO = {
  port: 8091,
  ars: '059130000000',
  service: '99058013001000',
  serviceName: 'Bewohnerparkausweis',
  clientId: '55eed71e-0c12-423c-acf9-0bfc71c14331',
  destinationId: 'eb53e641-88dd-43ef-8dcb-9d6ebbeaf073',
  schemaUri: 'https://schema.example.org/fachdaten/bewohnerparkausweis.schema.json',
  dataDir: path.join(ROOT, 'data', 'fit-connect-demo'),
  clientSecretFile: 'client-secret',
  trustAnchorFile: 'root-ca.pem',
} as const;

const EVENTS = 'https://schema.fitko.de/fit-connect/events/';
const PROBLEMS = 'https://schema.fitko.de/fit-connect/events/problems/';
const METADATA_SCHEMA =
  /^https:\/\/schema\.fitko\.de\/fit-connect\/metadata\/1\.\d+\.\d+\/metadata\.schema\.json$/;

export interface SubmissionProblem {
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly instance: string;
}

/** What the EfA service made of one submission. */
export interface ReceivedSubmission {
  readonly submissionId: string;
  readonly caseId: string;
  readonly destinationId: string;
  readonly serviceType: { readonly identifier: string; readonly name: string };
  readonly dataMimeType: string | undefined;
  readonly schemaUri: string | undefined;
  readonly attachmentCount: number;
  /** Hashes compared with the metadata (Fachdaten and each attachment) that matched. */
  readonly hashesMatched: number;
  /** Empty when everything checked out and the submission was accepted. */
  readonly problems: readonly SubmissionProblem[];
  readonly outcome: 'accepted' | 'rejected';
  /** The decrypted Fachdaten, kept in memory for inspection; never printed. */
  readonly fachdaten: Buffer | undefined;
}

export interface FitConnectDemoOptions {
  readonly port?: number;
  readonly dataDir?: string;
  /** How often the EfA service looks for new submissions. */
  readonly pollIntervalMs?: number;
  readonly log?: (line: string) => void;
  readonly warn?: (line: string) => void;
}

export interface FitConnectDemo {
  /** The Zustelldienst as the gateway reaches it: http://127.0.0.1:<port>. */
  readonly url: string;
  readonly emulator: FitConnectEmulator;
  readonly clientSecretFile: string;
  readonly trustAnchorFile: string;
  readonly received: readonly ReceivedSubmission[];
  close(): Promise<void>;
}

export async function startFitConnectDemo(options: FitConnectDemoOptions = {}): Promise<FitConnectDemo> {
  const log = options.log ?? ((line: string) => console.log(line));
  const warn = options.warn ?? ((line: string) => console.error(line));
  const dataDir = path.resolve(options.dataDir ?? DEMO.dataDir);
  const port = options.port ?? DEMO.port;
  let emulator: FitConnectEmulator | undefined;
  try {
    const keys = await fitConnectTestKeys();
    emulator = await startFitConnectEmulator({ port }).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'EADDRINUSE'
        ? new Error(`port ${port} on 127.0.0.1 is in use (another demo running?); choose one with --port`)
        : err;
    });
    const url = emulator.url;

    mkdirSync(dataDir, { recursive: true });
    const clientSecretFile = path.join(dataDir, DEMO.clientSecretFile);
    const trustAnchorFile = path.join(dataDir, DEMO.trustAnchorFile);
    // The secret survives restarts of the demo; the CA and all keys are new every run.
    const clientSecret = existsSync(clientSecretFile)
      ? readFileSync(clientSecretFile, 'utf8').trim()
      : randomBytes(24).toString('hex');
    writeFileSync(clientSecretFile, clientSecret + '\n', { mode: 0o600 });
    chmodSync(clientSecretFile, 0o600);
    writeFileSync(trustAnchorFile, keys.trustedCa.pem);

    emulator.state.addClient(DEMO.clientId, clientSecret);
    const x5c = keys.trustedCa.issue(keys.destinationEncryption, 'Bewohnerparkausweis Zustellpunkt (Demo)');
    emulator.state.addDestination({
      destinationId: DEMO.destinationId,
      encryptionKey: encryptionJwk(keys.destinationEncryption, x5c),
      signingKeys: [signingJwk(keys.destinationSigning)],
      services: [DEMO.service],
      schemaUri: DEMO.schemaUri,
      mimeType: 'application/json',
    });
    await emulator.addRoute({
      ars: DEMO.ars,
      leikaKey: DEMO.service,
      destinationId: DEMO.destinationId,
      submissionHost: new URL(url).host,
    });

    const efa = await efaService({
      apiUrl: `${url}/v1`,
      tokenUrl: `${url}/token`,
      client: emulator.state.addClient(),
      decryptionKey: decryptionJwk(keys.destinationEncryption),
      signingKey: privateSigningJwk(keys.destinationSigning),
      log,
    });
    let stopped = false;
    let pass: Promise<void> = Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const next = (): void => {
      timer = setTimeout(() => {
        pass = efa
          .poll()
          .catch((err: unknown) => warn(`EfA service: ${(err as Error).message}`))
          .then(() => (stopped ? undefined : next()));
      }, options.pollIntervalMs ?? 1000);
    };
    next();

    const running = emulator;
    return {
      url,
      emulator: running,
      clientSecretFile,
      trustAnchorFile,
      received: efa.received,
      async close() {
        stopped = true;
        clearTimeout(timer);
        await pass;
        await running.close();
      },
    };
  } catch (err) {
    await emulator?.close();
    throw err;
  }
}

interface EfaServiceOptions {
  readonly apiUrl: string;
  readonly tokenUrl: string;
  readonly client: { clientId: string; clientSecret: string };
  readonly decryptionKey: JWK;
  readonly signingKey: JWK & { kid: string };
  readonly log: (line: string) => void;
}

interface FetchedSubmission {
  submissionId: string;
  caseId: string;
  destinationId: string;
  serviceType: { identifier: string; name: string };
  attachments?: string[];
  encryptedMetadata: string;
  encryptedData?: string;
}

interface Metadata {
  $schema?: unknown;
  contentStructure?: {
    data?: { hash?: { content?: unknown }; submissionSchema?: { schemaUri?: unknown; mimeType?: unknown } };
    attachments?: { attachmentId?: unknown; hash?: { content?: unknown } }[];
  };
}

const sha512 = (bytes: Uint8Array): string => createHash('sha512').update(bytes).digest('hex');
const tagOf = (jwe: string): string => jwe.slice(jwe.lastIndexOf('.') + 1);
const problem = (kind: string, title: string, instance: string, detail: string): SubmissionProblem => ({
  type: PROBLEMS + kind,
  title,
  detail,
  instance,
});

/**
 * The receiving side, written straight against the Submission API with jose — the way an EfA
 * service's own FIT-Connect client works, independent of the gateway's adapter.
 */
async function efaService(options: EfaServiceOptions): Promise<{
  readonly received: ReceivedSubmission[];
  poll(): Promise<void>;
}> {
  const { key_ops: _d, use: _du, ...decryption } = options.decryptionKey;
  const decryptionKey = await importJWK({ ...decryption, alg: 'RSA-OAEP-256' }, 'RSA-OAEP-256');
  const { key_ops: _s, use: _su, ...signing } = options.signingKey;
  const signingKey = await importJWK({ ...signing, alg: 'PS512' }, 'PS512');
  const received: ReceivedSubmission[] = [];
  let token: { value: string; expiresAt: number } | undefined;

  const accessToken = async (): Promise<string> => {
    if (token && token.expiresAt > Date.now() + 60_000) return token.value;
    const response = await fetch(options.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: options.client.clientId,
        client_secret: options.client.clientSecret,
      }),
    });
    if (!response.ok) throw new Error(`token endpoint answered ${response.status}`);
    const body = (await response.json()) as { access_token: string; expires_in: number };
    token = { value: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
    return token.value;
  };

  const call = async (method: string, apiPath: string, jose?: string): Promise<string> => {
    const response = await fetch(options.apiUrl + apiPath, {
      method,
      headers: {
        authorization: `Bearer ${await accessToken()}`,
        ...(jose === undefined ? {} : { 'content-type': 'application/jose' }),
      },
      ...(jose === undefined ? {} : { body: jose }),
    });
    const text = await response.text();
    if (response.status === 401) token = undefined;
    if (!response.ok) throw new Error(`${method} ${apiPath} answered ${response.status} ${text}`);
    return text;
  };

  const decrypt = async (jwe: string): Promise<Buffer> => {
    const { plaintext } = await compactDecrypt(jwe, decryptionKey, {
      keyManagementAlgorithms: ['RSA-OAEP-256'],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    return Buffer.from(plaintext);
  };

  const sendEvent = async (s: FetchedSubmission, event: string, payload: Record<string, unknown>) => {
    const claims = {
      $schema: 'https://schema.fitko.de/fit-connect/set-payload/1.0.0/set-payload.schema.json',
      jti: randomUUID(),
      iss: s.destinationId,
      iat: Math.floor(Date.now() / 1000),
      sub: `submission:${s.submissionId}`,
      txn: `case:${s.caseId}`,
      events: { [EVENTS + event]: payload },
    };
    const set = await new CompactSign(Buffer.from(JSON.stringify(claims)))
      .setProtectedHeader({ alg: 'PS512', typ: 'secevent+jwt', kid: options.signingKey.kid })
      .sign(signingKey);
    await call('POST', `/cases/${s.caseId}/events`, set);
  };

  const handle = async (submissionId: string): Promise<void> => {
    const s = JSON.parse(await call('GET', `/submissions/${submissionId}`)) as FetchedSubmission;
    const problems: SubmissionProblem[] = [];
    let metadata: Metadata = {};
    try {
      metadata = JSON.parse((await decrypt(s.encryptedMetadata)).toString('utf8')) as Metadata;
    } catch {
      problems.push(
        problem('encryption-issue', 'Entschlüsselungs-Fehler', 'metadata', 'cannot be decrypted'),
      );
    }
    if (
      problems.length === 0 &&
      (typeof metadata.$schema !== 'string' || !METADATA_SCHEMA.test(metadata.$schema))
    ) {
      problems.push(
        problem('invalid-metadata-schema', 'Metadatenschema ungültig', 'metadata', 'no metadata schema 1.x'),
      );
    }
    if (s.serviceType.identifier !== `urn:de:fim:leika:leistung:${DEMO.service}`) {
      problems.push(
        problem('service-mismatch', 'Leistung stimmt nicht überein', 'submission', s.serviceType.identifier),
      );
    }
    let hashesMatched = 0;
    let fachdaten: Buffer | undefined;
    const dataInfo = metadata.contentStructure?.data;
    if (s.encryptedData !== undefined) {
      try {
        fachdaten = await decrypt(s.encryptedData);
        if (dataInfo?.hash?.content === sha512(fachdaten)) hashesMatched++;
        else problems.push(problem('hash-mismatch', 'Prüfsumme stimmt nicht', 'data', 'SHA-512 differs'));
      } catch {
        problems.push(problem('encryption-issue', 'Entschlüsselungs-Fehler', 'data', 'cannot be decrypted'));
      }
    }
    const announced = s.attachments ?? [];
    const described = metadata.contentStructure?.attachments ?? [];
    const describedIds = described.map((a) => String(a.attachmentId));
    if (announced.length !== describedIds.length || announced.some((id) => !describedIds.includes(id))) {
      problems.push(
        problem('attachments-mismatch', 'Fehlerhafte Anlagen-Liste', 'metadata', 'announced ≠ described'),
      );
    }
    const attachmentTags: Record<string, string> = {};
    for (const attachment of described) {
      const id = String(attachment.attachmentId);
      if (!announced.includes(id)) continue;
      const jwe = await call('GET', `/submissions/${s.submissionId}/attachments/${id}`);
      attachmentTags[id] = tagOf(jwe);
      try {
        if (attachment.hash?.content === sha512(await decrypt(jwe))) hashesMatched++;
        else
          problems.push(
            problem('hash-mismatch', 'Prüfsumme stimmt nicht', `attachment:${id}`, 'SHA-512 differs'),
          );
      } catch {
        problems.push(
          problem('encryption-issue', 'Entschlüsselungs-Fehler', `attachment:${id}`, 'cannot be decrypted'),
        );
      }
    }

    const outcome = problems.length === 0 ? 'accepted' : 'rejected';
    if (outcome === 'accepted') {
      await sendEvent(s, 'accept-submission', {
        authenticationTags: {
          metadata: tagOf(s.encryptedMetadata),
          ...(s.encryptedData === undefined ? {} : { data: tagOf(s.encryptedData) }),
          attachments: attachmentTags,
        },
      });
    } else {
      await sendEvent(s, 'reject-submission', { problems });
    }
    const schemaUri = dataInfo?.submissionSchema?.schemaUri;
    const dataMimeType = dataInfo?.submissionSchema?.mimeType;
    const record: ReceivedSubmission = {
      submissionId: s.submissionId,
      caseId: s.caseId,
      destinationId: s.destinationId,
      serviceType: s.serviceType,
      dataMimeType: typeof dataMimeType === 'string' ? dataMimeType : undefined,
      schemaUri: typeof schemaUri === 'string' ? schemaUri : undefined,
      attachmentCount: announced.length,
      hashesMatched,
      problems,
      outcome,
      fachdaten,
    };
    received.push(record);
    report(record, options.log);
  };

  return {
    received,
    async poll() {
      const list = JSON.parse(
        await call('GET', `/submissions?destinationId=${DEMO.destinationId}&limit=100`),
      ) as { submissions: { submissionId: string }[] };
      for (const { submissionId } of list.submissions) await handle(submissionId);
    },
  };
}

/** What the EfA side got — identifiers, sizes and checks, never the content. */
function report(r: ReceivedSubmission, log: (line: string) => void): void {
  const hashes = r.attachmentCount + (r.fachdaten === undefined ? 0 : 1);
  log(`submission ${r.submissionId} (case ${r.caseId}) for destination ${r.destinationId}`);
  log(`  service      ${r.serviceType.identifier} (${r.serviceType.name})`);
  log(
    `  Fachdaten    ${r.dataMimeType ?? '–'}, ${r.fachdaten?.length ?? 0} bytes decrypted, schema ${r.schemaUri ?? '–'}`,
  );
  log(`  attachments  ${r.attachmentCount}`);
  log(`  hashes       ${r.hashesMatched} of ${hashes} SHA-512 hashes in the metadata match`);
  if (r.outcome === 'accepted') {
    log('  → accept-submission sent');
  } else {
    for (const p of r.problems) log(`  problem      ${p.instance}: ${p.title} (${p.detail})`);
    log('  → reject-submission sent');
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: String(DEMO.port) },
      data: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: node --import tsx scripts/fit-connect-demo.ts [--port 8091] [--data DIR]');
    return;
  }
  const port = Number.parseInt(values.port, 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port ${values.port} is not a port`);
  console.log('FIT-Connect demo: generating 4096-bit keys and a test CA …');
  const demo = await startFitConnectDemo({
    port,
    ...(values.data === undefined ? {} : { dataDir: path.resolve(values.data) }),
  });
  const shown = (file: string): string => {
    const relative = path.relative(process.cwd(), file);
    return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
  };
  console.log(`Zustelldienst      ${demo.url} (Submission API ${demo.url}/v1, token ${demo.url}/token)`);
  console.log(`Routing API        ${demo.url}/routing/v1/routes?leikaKey=${DEMO.service}&ars=${DEMO.ars}`);
  console.log(
    `destination        ${DEMO.destinationId}: ${DEMO.serviceName} (${DEMO.service}) for ARS ${DEMO.ars}, ` +
      'RSA-4096 encryption key certified by the test CA',
  );
  console.log(`API client         ${DEMO.clientId}, secret in ${shown(demo.clientSecretFile)}`);
  console.log(`trust anchor       ${shown(demo.trustAnchorFile)}`);
  console.log('Start the gateway in another terminal (restart it whenever this demo restarts):');
  console.log('  node --import tsx src/main.ts start -c examples/gateway.fit-connect.yaml');
  console.log('Waiting for submissions; Ctrl-C stops.');
  let stopping = false;
  const stop = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    demo.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error((err as Error).message);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`FIT-Connect demo: ${(err as Error).message}`);
    process.exit(1);
  });
}
