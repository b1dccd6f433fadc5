/**
 * Kill -9 under load, repeatedly: every application acknowledged with 202 is delivered, and no
 * message reaches the idempotent receiver under two delivery ids.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startReceiver, type Receiver } from './support/receiver.js';
import { freePort, spawnGateway, submit, writeGatewayConfig } from './support/gateway-process.js';

describe('crash safety (kill -9 under load)', function () {
  this.timeout(180_000);
  let dir: string;
  let receiver: Receiver;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'amt-crash-'));
    receiver = await startReceiver({ maxDelayMs: 15 });
  });
  after(async () => {
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loses no acknowledged application and delivers none twice across five kills', async () => {
    const port = await freePort();
    const config = writeGatewayConfig({ dir, receiverUrl: receiver.url, port });
    const acknowledged = new Set<string>();
    let sequence = 0;

    for (let round = 0; round < 5; round++) {
      const gateway = await spawnGateway(config, port);
      let loading = true;
      const clients = Array.from({ length: 8 }, async () => {
        while (loading) {
          const id = await submit(gateway.url, `crash-${round}-${sequence++}`);
          if (id) acknowledged.add(id);
        }
      });
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
      gateway.child.kill('SIGKILL');
      await gateway.exited;
      loading = false;
      await Promise.all(clients);
    }

    // Restart once more and let everything drain.
    const gateway = await spawnGateway(config, port);
    const deadline = Date.now() + 60_000;
    const missing = (): string[] => [...acknowledged].filter((id) => !receiver.deliveryIdsByMessage.has(id));
    while (missing().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    gateway.child.kill('SIGTERM');
    expect(await gateway.exited).to.equal(0);

    expect(acknowledged.size, 'applications acknowledged under load').to.be.greaterThan(30);
    expect(missing(), 'acknowledged but never delivered').to.deep.equal([]);
    const twice = [...receiver.deliveryIdsByMessage].filter(([, ids]) => ids.size !== 1).map(([id]) => id);
    expect(twice, 'messages delivered under more than one delivery id').to.deep.equal([]);
    // Every delivery id belongs to exactly one message.
    const owners = new Map<string, string>();
    for (const [deliveryId, delivery] of receiver.byDeliveryId) {
      expect(owners.get(deliveryId) ?? delivery.messageId).to.equal(delivery.messageId);
      owners.set(deliveryId, delivery.messageId);
    }
  });
});
