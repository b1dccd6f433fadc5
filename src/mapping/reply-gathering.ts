/**
 * How a mapping worker gathers its answers into messages to the main thread. A message costs a
 * wake-up of the other thread and an event dispatch on each side (together about as much as a
 * fifth of a quick mapping), so quick answers travel together; but an answer must not wait long,
 * for the main thread delivers it while the worker maps the rest.
 *
 * - The first answer of a turn of the event loop is posted at once.
 * - The next ones are gathered and posted once the first of them has waited `holdMs`, or at the
 *   end of the turn at the latest.
 * - An answer that came `holdMs` or more after the one before is posted at once, with whatever
 *   waits: mappings that slow gain nothing from gathering, and a held answer would wait as long
 *   as the next mapping takes.
 */
export interface GatheringClock {
  now(): number;
  /** Runs `callback` once the current turn of the event loop has ended. */
  afterTurn(callback: () => void): void;
}

const realClock: GatheringClock = {
  now: () => performance.now(),
  afterTurn: (callback) => void setImmediate(callback),
};

export class ReplyGatherer<T> {
  private items: T[] = [];
  private transfers: ArrayBuffer[] = [];
  private firstHeldAt = 0;
  private lastAt = Number.NEGATIVE_INFINITY;
  private answeredThisTurn = false;

  constructor(
    private readonly post: (items: T[], transfers: ArrayBuffer[]) => void,
    private readonly holdMs: number,
    private readonly clock: GatheringClock = realClock,
  ) {}

  add(item: T, transfer?: ArrayBuffer): void {
    this.items.push(item);
    if (transfer !== undefined) this.transfers.push(transfer);
    const now = this.clock.now();
    const sinceLast = now - this.lastAt;
    this.lastAt = now;
    if (!this.answeredThisTurn) {
      this.answeredThisTurn = true;
      this.clock.afterTurn(() => {
        this.answeredThisTurn = false;
        this.flush();
      });
      this.flush();
    } else if (sinceLast >= this.holdMs) {
      this.flush();
    } else if (this.items.length === 1) {
      this.firstHeldAt = now;
    } else if (now - this.firstHeldAt >= this.holdMs) {
      this.flush();
    }
  }

  private flush(): void {
    if (this.items.length === 0) return;
    const items = this.items;
    const transfers = this.transfers;
    this.items = [];
    this.transfers = [];
    this.post(items, transfers);
  }
}
