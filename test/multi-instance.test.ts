/**
 * Three gateway processes share one PostgreSQL database under load from the portal, which sends
 * to all three; instances are killed with SIGKILL at random and restarted. Every application
 * acknowledged with 202 is delivered, none reaches the idempotent receiver under two delivery
 * ids, and every message the database holds ends delivered.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { testDatabaseOrSkip, type TestDatabase } from './store/pg-test-db.js';
import {
  freePort,
  spawnGateway,
  submit,
  writeGatewayConfig,
  type GatewayProcess,
} from './support/gateway-process.js';
import { startReceiver, type Receiver } from './support/receiver.js';

const INSTANCES = 3;
const KILL_ROUNDS = 6;
const CLIENTS = 9;
/** Three processes compiling TypeScript at once on a busy two-core machine take a while. */
const STARTUP_TIMEOUT_MS = 60_000;

interface Instance {
  readonly port: number;
  readonly config: string;
  process: GatewayProcess | undefined;
  acknowledged: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

describe('several gateway instances on one PostgreSQL (kill -9 under load)', function () {
  this.timeout(480_000);
  let db: TestDatabase;
  let receiver: Receiver;
  const dirs: string[] = [];
  const instances: Instance[] = [];

  before(async function () {
    db = await testDatabaseOrSkip(this);
    receiver = await startReceiver({ maxDelayMs: 15 });
  });

  after(async () => {
    for (const instance of instances) {
      if (instance.process && instance.process.child.exitCode === null) {
        instance.process.child.kill('SIGKILL');
        await instance.process.exited;
      }
    }
    await receiver?.close();
    await db?.drop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('loses no acknowledged application and delivers none twice while instances die and return', async () => {
    for (let i = 0; i < INSTANCES; i++) {
      // Each instance has its own data directory: these applications carry no attachments.
      const dir = mkdtempSync(path.join(os.tmpdir(), `amt-multi-${i}-`));
      dirs.push(dir);
      const port = await freePort();
      const config = writeGatewayConfig({ dir, receiverUrl: receiver.url, port, postgresUrl: db.url });
      instances.push({ port, config, process: undefined, acknowledged: 0 });
    }
    // Started together: their migrations run concurrently against the empty database.
    await Promise.all(
      instances.map(
        async (instance) =>
          (instance.process = await spawnGateway(instance.config, instance.port, STARTUP_TIMEOUT_MS)),
      ),
    );

    const acknowledged = new Set<string>();
    let sequence = 0;
    let loading = true;
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (loading) {
        const instance = pick(instances);
        const url = instance.process?.url;
        const id = url ? await submit(url, `multi-${sequence++}`) : undefined;
        if (id) {
          acknowledged.add(id);
          instance.acknowledged += 1;
        } else {
          await sleep(20); // that instance is down: the portal tries again elsewhere
        }
      }
    });

    const kills: number[] = [];
    for (let round = 0; round < KILL_ROUNDS; round++) {
      await sleep(400 + Math.random() * 900);
      // Mostly one instance, sometimes two at once, never all: the survivors take over leases.
      const victims =
        round % 3 === 2 ? [0, 1, 2].sort(() => Math.random() - 0.5).slice(0, 2) : [pick([0, 1, 2])];
      await Promise.all(
        victims.map(async (index) => {
          const instance = instances[index]!;
          const running = instance.process;
          instance.process = undefined;
          if (!running) return;
          running.child.kill('SIGKILL');
          await running.exited;
          kills.push(index);
        }),
      );
      await sleep(Math.random() * 500);
      await Promise.all(
        victims.map(async (index) => {
          const instance = instances[index]!;
          instance.process = await spawnGateway(instance.config, instance.port, STARTUP_TIMEOUT_MS);
        }),
      );
    }
    await sleep(500);
    loading = false;
    await Promise.all(clients);

    const missing = (): string[] => [...acknowledged].filter((id) => !receiver.deliveryIdsByMessage.has(id));
    const undelivered = async (): Promise<number> => {
      const [row] = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM messages WHERE status <> 'delivered'`,
      );
      return Number(row?.n);
    };
    const deadline = Date.now() + 90_000;
    while ((missing().length > 0 || (await undelivered()) > 0) && Date.now() < deadline) await sleep(200);

    for (const instance of instances) {
      const running = instance.process!;
      running.child.kill('SIGTERM');
      expect(await running.exited, running.output()).to.equal(0);
    }

    expect(kills.length, 'instances killed').to.be.at.least(KILL_ROUNDS);
    expect(acknowledged.size, 'applications acknowledged under load').to.be.greaterThan(100);
    for (const instance of instances)
      expect(instance.acknowledged, 'each instance took intake').to.be.greaterThan(0);
    expect(missing(), 'acknowledged but never delivered').to.deep.equal([]);
    expect(await undelivered(), 'messages in the database not delivered').to.equal(0);
    const twice = [...receiver.deliveryIdsByMessage].filter(([, ids]) => ids.size !== 1).map(([id]) => id);
    expect(twice, 'messages delivered under more than one delivery id').to.deep.equal([]);
    const owners = new Map<string, string>();
    for (const [deliveryId, delivery] of receiver.byDeliveryId) {
      expect(owners.get(deliveryId) ?? delivery.messageId).to.equal(delivery.messageId);
      owners.set(deliveryId, delivery.messageId);
    }
    // Deliveries were spread over the processes (each start is a new worker), not done by one.
    const [workers] = await db.query<{ n: string }>(
      `SELECT count(DISTINCT detail::json->>'owner') AS n FROM message_history WHERE event = 'delivered'
         OR event IN ('claimed', 'reclaimed')`,
    );
    expect(Number(workers?.n), 'workers that claimed messages').to.be.at.least(INSTANCES);
  });
});
