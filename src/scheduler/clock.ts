/**
 * The scheduler's sense of time. Production runs on the system clock; tests move a manual clock
 * and so control cron occurrences, leases, heartbeats and timeouts without waiting.
 */

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Calls `fire` once at `at` (epoch ms) or soon after; returns a function that cancels it. */
  setTimer(at: number, fire: () => void): () => void;
}

/**
 * Longest single wait: timers measure elapsed time, cron speaks wall time. Re-arming every
 * minute keeps a wall-clock correction (NTP step, resumed VM) from shifting a run for long.
 */
const MAX_WAIT_MS = 60_000;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(at, fire) {
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      const wait = at - Date.now();
      if (wait <= 0) {
        timer = undefined;
        fire();
        return;
      }
      timer = setTimeout(arm, Math.min(wait, MAX_WAIT_MS));
    };
    arm();
    return () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
    };
  },
};

/** Waits `ms` on `clock`; rejects with the signal's reason when it aborts first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      cancel();
      reject(signal?.reason);
    };
    const cancel = clock.setTimer(clock.now() + ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface PendingTimer {
  readonly at: number;
  readonly seq: number;
  readonly fire: () => void;
}

/**
 * A clock that moves only when told to. `advanceTo` fires due timers in time order and lets the
 * promise chains they start run (store calls included) before moving on.
 */
export class ManualClock implements Clock {
  private current: number;
  private timers: PendingTimer[] = [];
  private seq = 0;

  constructor(start: number) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimer(at: number, fire: () => void): () => void {
    const timer = { at, seq: this.seq++, fire };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /** Moves time to `to` (never backwards), firing every timer due on the way. */
  async advanceTo(to: number): Promise<void> {
    await settle();
    for (;;) {
      const due = this.timers.filter((t) => t.at <= to).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.current = Math.max(this.current, due.at);
      due.fire();
      await settle();
    }
    this.current = Math.max(this.current, to);
    await settle();
  }

  /** Moves time forward without firing anything, as a stalled event loop would; timers fire late on the next advance. */
  stall(ms: number): void {
    this.current += ms;
  }

  advance(ms: number): Promise<void> {
    return this.advanceTo(this.current + ms);
  }

  /** Timers still waiting (for assertions about what the scheduler armed). */
  pending(): number[] {
    return this.timers.map((t) => t.at).sort((a, b) => a - b);
  }
}

/** Lets queued callbacks and promise chains run: several turns of the event loop. */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
