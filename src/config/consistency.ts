/**
 * Checks of a configuration that matched its schema: references between its parts and limits
 * the schema cannot express. Every problem is named by its path.
 */
import type { AdapterManifest } from '../adapter-contract.js';
import { isAmtError, type Problem } from '../errors.js';
import { compileTemplate } from '../status/model.js';
import type { GatewayConfig, RouteConfig } from './types.js';

/** A JSON body is read into memory and parsed whole: its limit is bounded. */
const MAX_BODY_LIMIT_BYTES = 100 * 1024 * 1024;

/**
 * What the schema cannot say about a valid configuration: ids that must be unique or must name
 * something configured, and settings that only make sense together.
 */
export function consistencyProblems(config: GatewayConfig, manifests: readonly AdapterManifest[]): Problem[] {
  const problems: Problem[] = [];
  for (const where of ['tenants', 'clients', 'routes'] as const) {
    const items: readonly { readonly id: string }[] = config[where];
    problems.push(
      ...repeated(
        items,
        (item) => item.id,
        (item, i) => ({ path: `/${where}/${i}/id`, message: `duplicate id ${item.id}` }),
      ),
    );
  }
  if (config.server.bodyLimitBytes > MAX_BODY_LIMIT_BYTES) {
    problems.push({
      path: '/server/bodyLimit',
      message: `at most 100mb: a JSON body is held in memory whole; send large files as multipart attachments, which stream to disk (server.attachmentLimit)`,
    });
  }
  problems.push(
    ...repeated(
      config.tenants,
      (t) => t.ars,
      (t, i, first) => ({
        path: `/tenants/${i}/ars`,
        message: `ARS ${t.ars} is already used by tenant ${first.id}`,
      }),
    ),
  );
  const tenantIds = new Set(config.tenants.map((t) => t.id));
  config.clients.forEach((c, i) =>
    c.tenants.forEach((t, j) => {
      if (!tenantIds.has(t))
        problems.push({ path: `/clients/${i}/tenants/${j}`, message: `no tenant has the id ${t}` });
    }),
  );
  problems.push(
    ...repeated(
      config.clients,
      (c) => c.keyHash,
      (_c, i, first) => ({
        path: `/clients/${i}/keyHash`,
        message: `the same key is already used by client ${first.id}`,
      }),
    ),
  );
  problems.push(...clientStatusProblems(config));
  problems.push(
    ...repeated(
      config.routes,
      (r) => `${r.ars}|${r.service}|${r.channel ?? ''}`,
      (_r, i, first) => ({
        path: `/routes/${i}`,
        message: `route ${first.id} already serves the same ARS, service and channel`,
      }),
    ),
  );
  config.routes.forEach((r, i) => {
    if (!(r.adapter in config.adapters)) {
      problems.push({ path: `/routes/${i}/adapter`, message: `no adapter instance has the id ${r.adapter}` });
    }
    problems.push(...statusProblems(r, i, config, manifests));
    if (r.minTrustLevel !== undefined && config.identity === undefined) {
      problems.push({
        path: `/routes/${i}/minTrustLevel`,
        message: 'a route that requires a trust level needs the identity section',
      });
    }
  });
  return problems;
}

/** A problem for every item whose key an earlier item (`first`) already has. */
function repeated<T>(
  items: readonly T[],
  keyOf: (item: T) => string,
  problem: (item: T, index: number, first: T) => Problem,
): Problem[] {
  const firsts = new Map<string, T>();
  const problems: Problem[] = [];
  items.forEach((item, i) => {
    const key = keyOf(item);
    const first = firsts.get(key);
    if (first === undefined) firsts.set(key, item);
    else problems.push(problem(item, i, first));
  });
  return problems;
}

/** Status back-channel references: postbox adapter instances and text templates (docs/status.md). */
function statusProblems(
  route: RouteConfig,
  i: number,
  config: GatewayConfig,
  manifests: readonly AdapterManifest[],
): Problem[] {
  const problems: Problem[] = [];
  const postbox = route.postbox;
  if (postbox === undefined) return problems;
  const instance = config.adapters[postbox.adapter];
  const manifest = instance && manifests.find((m) => m.type === instance.type);
  if (instance === undefined) {
    problems.push({
      path: `/routes/${i}/postbox/adapter`,
      message: `no adapter instance has the id ${postbox.adapter}`,
    });
  } else if (manifest?.statusNotices === undefined) {
    // Any other adapter would send the notice as if it were an application.
    const carriers = manifests.filter((m) => m.statusNotices !== undefined).map((m) => m.type);
    problems.push({
      path: `/routes/${i}/postbox/adapter`,
      message: `the instance ${postbox.adapter} has type ${instance.type}, which cannot carry postbox notices (${carriers.join(', ')})`,
    });
  } else {
    const reason = manifest.statusNotices(instance.config);
    if (reason !== undefined) {
      problems.push({
        path: `/routes/${i}/postbox/adapter`,
        message: `the ${instance.type} instance ${postbox.adapter} ${reason}`,
      });
    }
  }
  const templates = { subject: postbox.subject, ...postbox.templates };
  for (const [name, template] of Object.entries(templates)) {
    if (template === undefined) continue;
    const where = `/routes/${i}/postbox/${name === 'subject' ? 'subject' : `templates/${name}`}`;
    try {
      compileTemplate(template, where);
    } catch (err) {
      if (!isAmtError(err)) throw err;
      problems.push(...err.problems);
    }
  }
  return problems;
}

function clientStatusProblems(config: GatewayConfig): Problem[] {
  const problems: Problem[] = [];
  config.clients.forEach((c, i) => {
    if (!Array.isArray(c.statusReporter)) return;
    c.statusReporter.forEach((adapter: string, j: number) => {
      if (!(adapter in config.adapters)) {
        problems.push({
          path: `/clients/${i}/statusReporter/${j}`,
          message: `no adapter instance has the id ${adapter}`,
        });
      }
    });
  });
  return problems;
}
