/**
 * A digest of the dead letters: counts per route (no message content, no personal data) as a
 * log line, a gauge per route and, when configured, a JSON POST to a webhook (chat, ticketing).
 * "New" counts dead letters since the job's previous successful run (the last day, the first
 * time).
 */
import { AmtError } from '../../errors.js';
import type { Store } from '../../store/types.js';
import type { JobMetrics } from '../metrics.js';
import type { JobTask, SchedulerLogger } from '../types.js';
import type { DeadLetterDigestOptions } from './options.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface DeadLetterDigestDeps {
  readonly store: Store;
  readonly logger: SchedulerLogger;
  readonly metrics?: JobMetrics | undefined;
  readonly now?: () => number;
  readonly fetch?: typeof fetch;
}

export interface DeadLetterDigest {
  readonly job: string;
  readonly generatedAt: string;
  readonly since: string;
  readonly dead: number;
  readonly deadSince: number;
  readonly routes: readonly { readonly route: string; readonly dead: number; readonly deadSince: number }[];
}

export function deadLetterDigestTask(options: DeadLetterDigestOptions, deps: DeadLetterDigestDeps): JobTask {
  const now = deps.now ?? Date.now;
  const post = deps.fetch ?? fetch;
  return async ({ signal, run }) => {
    const previous = (await deps.store.jobRuns(run.job, 50)).items.find(
      (r) => r.status === 'succeeded' && r.id !== run.id,
    );
    const since = previous?.startedAt ?? now() - DAY_MS;
    const counts = await deps.store.deadLetterCounts(since);
    const digest: DeadLetterDigest = {
      job: run.job,
      generatedAt: new Date(now()).toISOString(),
      since: new Date(since).toISOString(),
      dead: counts.reduce((sum, c) => sum + c.dead, 0),
      deadSince: counts.reduce((sum, c) => sum + c.deadSince, 0),
      routes: counts.map((c) => ({ route: c.routeId, dead: c.dead, deadSince: c.deadSince })),
    };
    if (deps.metrics) {
      deps.metrics.deadLetters.reset();
      for (const c of counts) deps.metrics.deadLetters.set({ route: c.routeId }, c.dead);
    }
    deps.logger[digest.deadSince > 0 ? 'warn' : 'info']('dead-letter digest', { ...digest });
    if (options.webhook) {
      let response: Response;
      try {
        response = await post(options.webhook.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...options.webhook.headers },
          body: JSON.stringify(digest),
          signal,
        });
      } catch (cause) {
        if (signal.aborted) throw signal.reason;
        throw new AmtError('AMT_DELIVERY_RETRYABLE', 'the digest webhook cannot be reached', { cause });
      }
      await response.body?.cancel();
      if (!response.ok) {
        throw new AmtError('AMT_DELIVERY_RETRYABLE', `the digest webhook answered ${response.status}`, {
          details: { status: response.status },
        });
      }
    }
    return { items: digest.dead };
  };
}
