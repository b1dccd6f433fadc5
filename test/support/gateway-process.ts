/** Runs the real gateway as a child process (`amtsbote start`), for crash and multi-instance tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const PORTAL_KEY = 'test-portal-key';
export const ADMIN_KEY = 'test-admin-key';
export const ARS = '055150000000';
export const SERVICE = '99058012104000';

const hash = (key: string): string => 'sha256:' + createHash('sha256').update(key).digest('hex');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export interface GatewayConfigOptions {
  readonly dir: string;
  readonly receiverUrl: string;
  readonly port: number;
  /** `sqlite` (default, file in dir) or a postgres URL. */
  readonly postgresUrl?: string;
  readonly extra?: string;
}

/** Writes a gateway.yaml delivering every application by `http` to the receiver; returns its path. */
export function writeGatewayConfig(options: GatewayConfigOptions): string {
  const store = options.postgresUrl
    ? `{ type: postgres, url: '${options.postgresUrl}', poolSize: 8 }`
    : '{ type: sqlite }';
  const file = path.join(options.dir, `gateway-${options.port}.yaml`);
  writeFileSync(
    file,
    `server: { host: 127.0.0.1, port: ${options.port} }
dataDir: ./data
store: ${store}
tenants:
  - { id: muenster, name: Stadt Münster, ars: '${ARS}' }
clients:
  - { id: portal, keyHash: '${hash(PORTAL_KEY)}', tenants: [muenster] }
  - { id: ops, keyHash: '${hash(ADMIN_KEY)}', admin: true }
adapters:
  fachverfahren:
    type: http
    config: { url: '${options.receiverUrl}/import', timeout: 5s }
routes:
  - { id: parken, ars: '05515', service: '${SERVICE}', adapter: fachverfahren }
retry: { maxAttempts: 50, initialDelay: 50ms, maxDelay: 1s }
pipeline: { lease: 3s, pollInterval: 50ms, drainTimeout: 2s }
logging: { level: warn }
${options.extra ?? ''}`,
  );
  return file;
}

export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<number | null>;
  output(): string;
}

/**
 * Starts `amtsbote start -c FILE` and resolves once /health/ready answers 200. `nodeArgs`: Node
 * flags for the gateway process (e.g. `--v8-pool-size=1`).
 */
export async function spawnGateway(
  configFile: string,
  port: number,
  timeoutMs = 20_000,
  nodeArgs: readonly string[] = [],
): Promise<GatewayProcess> {
  const child = spawn(
    process.execPath,
    [...nodeArgs, '--import', 'tsx', path.join(ROOT, 'src/main.ts'), 'start', '-c', configFile],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_ENV: 'test' },
    },
  );
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/health/ready`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway did not become ready:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, url, exited, output: () => output };
}

export function application(reference: string): Record<string, unknown> {
  return {
    tenant: ARS,
    service: SERVICE,
    reference,
    applicant: { givenName: 'Erika', familyName: 'Mustermann', birthDate: '1964-08-12' },
    data: { vehicle: { licensePlate: 'MS-EM 123' }, zone: 'A' },
  };
}

/** Posts one application; resolves to the message id on 202, undefined on any failure. */
export async function submit(
  baseUrl: string,
  reference: string,
  idempotencyKey?: string,
): Promise<string | undefined> {
  try {
    const res = await fetch(`${baseUrl}/api/v1/applications`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${PORTAL_KEY}`,
        'content-type': 'application/json',
        ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      },
      body: JSON.stringify(application(reference)),
    });
    if (res.status !== 202) {
      await res.arrayBuffer();
      return undefined;
    }
    return ((await res.json()) as { id: string }).id;
  } catch {
    return undefined;
  }
}
