/**
 * Routing: (tenant ARS, Leistungsschlüssel, optional channel) → route. A route's ARS may be a
 * prefix (Land, Regierungsbezirk, Kreis, Gemeindeverband); the longest matching prefix wins, and
 * a route naming the request's channel beats one without a channel.
 */
import type { GatewayConfig, RouteConfig, TenantConfig } from './config/types.js';

export interface Router {
  tenantByArs(ars: string): TenantConfig | undefined;
  tenantById(id: string): TenantConfig | undefined;
  resolve(ars: string, service: string, channel?: string): RouteConfig | undefined;
  routeById(id: string): RouteConfig | undefined;
}

export function createRouter(config: Pick<GatewayConfig, 'tenants' | 'routes'>): Router {
  const tenantsByArs = new Map(config.tenants.map((t) => [t.ars, t]));
  const tenantsById = new Map(config.tenants.map((t) => [t.id, t]));
  const routesById = new Map(config.routes.map((r) => [r.id, r]));
  const byService = new Map<string, RouteConfig[]>();
  for (const route of config.routes) {
    const list = byService.get(route.service) ?? [];
    list.push(route);
    byService.set(route.service, list);
  }
  // Most specific first: longer ARS prefix, then channel-specific before channel-less.
  for (const list of byService.values()) {
    list.sort(
      (a, b) =>
        b.ars.length - a.ars.length || Number(b.channel !== undefined) - Number(a.channel !== undefined),
    );
  }
  return {
    tenantByArs: (ars) => tenantsByArs.get(ars),
    tenantById: (id) => tenantsById.get(id),
    routeById: (id) => routesById.get(id),
    resolve(ars, service, channel) {
      const candidates = byService.get(service);
      if (!candidates) return undefined;
      return candidates.find(
        (r) =>
          ars.startsWith(r.ars) &&
          (r.channel === undefined || (channel !== undefined && r.channel === channel)),
      );
    },
  };
}
