/**
 * Cross-instance wake-ups for the PostgreSQL store: instances announce due work on a
 * LISTEN/NOTIFY channel, and each listens on a connection of its own.
 */
import pg from 'pg';
import { toStoreError } from './postgres-errors.js';

/** LISTEN/NOTIFY channel on which intake, release and replay announce work that is due now. */
export const WORK_CHANNEL = 'amtsbote_work';

/**
 * One LISTEN connection outside the pool. When it breaks it reconnects with backoff and wakes
 * the listener once, because notifications sent meanwhile are lost.
 */
export class WorkSubscription {
  private client: pg.Client | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs = 500;

  constructor(
    private readonly connection: pg.ClientConfig,
    private readonly listener: () => void,
    private readonly onStop: () => void,
  ) {}

  async start(): Promise<void> {
    // Its own application name, so operators can tell the long-lived LISTEN session apart.
    const client = new pg.Client({ ...this.connection, application_name: 'amtsbote-work-listener' });
    const broken = (): void => {
      if (this.client !== client) return;
      this.client = undefined;
      client.end().catch(() => undefined);
      this.scheduleReconnect();
    };
    client.on('error', broken);
    client.on('end', broken);
    client.on('notification', (n) => {
      if (n.channel === WORK_CHANNEL) this.listener();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${WORK_CHANNEL}`);
    } catch (err) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw toStoreError(err);
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.backoffMs = 500;
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.start().then(
        () => {
          if (!this.stopped) this.listener();
        },
        () => {
          this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
          this.scheduleReconnect();
        },
      );
    }, this.backoffMs);
    this.retryTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.onStop();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(() => undefined);
  }
}
