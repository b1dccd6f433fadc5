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
  const routed = await Promise.allSettled(
    routes.map(({ ars, leikaKey }) => deps.routing!.refreshRoute(ars, leikaKey, signal)),
  );
  const destinationIds = new Set<string>(deps.configuredDestinationId ? [deps.configuredDestinationId] : []);
  routed.forEach((result, i) => {
    if (result.status === 'fulfilled') destinationIds.add(result.value);
    else {
      failures.push(result.reason);
      deps.logger.warn('FIT-Connect route refresh failed', {
        ars: routes[i]!.ars,
        service: routes[i]!.leikaKey,
        error: (result.reason as Error).message,
      });
    }
  });
  for (const id of deps.destinations.cachedDestinationIds()) destinationIds.add(id);

  const ids = [...destinationIds];
  const refreshed = await Promise.allSettled(ids.map((id) => deps.destinations.refreshTarget(id, signal)));
  let items = 0;
  refreshed.forEach((result, i) => {
    if (result.status === 'fulfilled') items++;
    else {
      failures.push(result.reason);
      deps.logger.warn('FIT-Connect destination refresh failed; its cached key is dropped', {
        destinationId: ids[i],
        error: (result.reason as Error).message,
      });
    }
  });
  if (failures.length > 0) throw failures[0];
  return items;
}
