/**
 * The `refresh` task: re-reads the routes and destinations the instance has cached (and the
 * configured fixed destination), with the same checks as at delivery, so a rotated key is used
 * from the next delivery on and a revoked or unusable one is dropped before anything is
 * encrypted for it. The run fails with the first error, after every destination was tried.
 */
import type { AdapterLogger } from '../../src/adapter-contract.js';
import type { DestinationDirectory } from './destinations.js';
import type { RoutingDirectory } from './routing.js';

export interface RefreshDeps {
  readonly destinations: DestinationDirectory;
  readonly routing: RoutingDirectory | undefined;
  /** `sending.destinationId`, when deliveries go to one fixed destination. */
  readonly configuredDestinationId: string | undefined;
  readonly logger: AdapterLogger;
}

/** Resolves to the number of destinations refreshed; rejects with the first failure. */
export async function refreshDestinations(deps: RefreshDeps, signal: AbortSignal): Promise<number> {
  const failures: unknown[] = [];
  const routes = deps.routing?.cachedRoutes() ?? [];
  const routed = await eachSettled(
    routes,
    ({ ars, leikaKey }) => deps.routing!.refreshRoute(ars, leikaKey, signal),
    ({ ars, leikaKey }, err) => {
      failures.push(err);
      deps.logger.warn('FIT-Connect route refresh failed', {
        ars,
        service: leikaKey,
        error: (err as Error).message,
      });
    },
  );
  const destinationIds = new Set<string>([
    ...(deps.configuredDestinationId ? [deps.configuredDestinationId] : []),
    ...routed,
    ...deps.destinations.cachedDestinationIds(),
  ]);
  const refreshed = await eachSettled(
    [...destinationIds],
    (id) => deps.destinations.refreshTarget(id, signal),
    (destinationId, err) => {
      failures.push(err);
      deps.logger.warn('FIT-Connect destination refresh failed; its cached key is dropped', {
        destinationId,
        error: (err as Error).message,
      });
    },
  );
  if (failures.length > 0) throw failures[0];
  return refreshed.length;
}

/** Runs `work` for every item at once; hands each failure to `failed`, resolves with the rest. */
async function eachSettled<T, R>(
  items: readonly T[],
  work: (item: T) => Promise<R>,
  failed: (item: T, err: unknown) => void,
): Promise<R[]> {
  const results = await Promise.allSettled(items.map(work));
  const values: R[] = [];
  results.forEach((result, i) => {
    if (result.status === 'fulfilled') values.push(result.value);
    else failed(items[i]!, result.reason);
  });
  return values;
}
