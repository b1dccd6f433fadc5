/** Health for orchestrators and metrics for Prometheus; neither needs an API key. */
import type { RequestHandler } from 'express';
import type { Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { MessageStatus, Store } from '../store/types.js';
import type { RouteMappingHealth } from './app.js';

export const live: RequestHandler = (_req, res) => {
  res.json({ status: 'live' });
};

export function ready(
  readiness: () => Promise<{ ready: boolean; checks: Record<string, string> }>,
  logger: Logger,
): RequestHandler {
  return async (_req, res) => {
    let result: { ready: boolean; checks: Record<string, string> };
    try {
      result = await readiness();
    } catch (err) {
      logger.warn('readiness check failed', { error: err });
      result = { ready: false, checks: { readiness: 'the check itself failed' } };
    }
    res
      .status(result.ready ? 200 : 503)
      .json({ status: result.ready ? 'ready' : 'not-ready', checks: result.checks });
  };
}

/** Samples the queue depth and the routes' mappings at scrape time, so the gauges cost nothing between scrapes. */
export function metricsEndpoint(
  store: Store,
  metrics: Metrics,
  logger: Logger,
  mappingHealth?: () => Promise<readonly RouteMappingHealth[]>,
): RequestHandler {
  return async (_req, res) => {
    for (const { route, compiles } of (await mappingHealth?.()) ?? []) {
      metrics.routeMappingBroken.set({ route }, compiles ? 0 : 1);
    }
    try {
      const stats = await store.stats();
      for (const [status, count] of Object.entries(stats.byStatus) as [MessageStatus, number][]) {
        metrics.queueDepth.set({ status }, count);
      }
    } catch (err) {
      // The other metrics are still worth serving; the stale gauge is the visible symptom.
      logger.warn('queue depth could not be sampled', { error: err });
    }
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  };
}
