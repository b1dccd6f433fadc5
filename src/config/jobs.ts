/**
 * The `jobs:` section: typed from the validated YAML, then checked against what the schema
 * cannot see — cron syntax (node-cron), time zones, adapter instances that can poll or refresh,
 * routes named in a job's options.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { AdapterManifest } from '../adapter-contract.js';
import type { Problem } from '../errors.js';
import type { BuiltinJobName, IdpMetadataRefreshOptions } from '../scheduler/builtin/options.js';
import { isValidCronExpression, isValidTimezone } from '../scheduler/cron.js';
import type { GatewayConfig, JobConfig } from './types.js';
import { parseDuration } from './units.js';

export interface RawJob {
  name: string;
  schedule: string;
  timezone?: string;
  run: { builtin: BuiltinJobName } | { adapter: string; task: 'poll' | 'refresh' };
  overlap?: 'skip' | 'queue';
  missed?: 'skip' | 'run-once';
  timeout?: number | string;
  options?: Record<string, unknown>;
}

export function toJobConfig(raw: RawJob, baseDir: string): JobConfig {
  let options = 'builtin' in raw.run ? (raw.options ?? {}) : undefined;
  if (options && 'builtin' in raw.run && raw.run.builtin === 'idp-metadata-refresh') {
    // File paths are relative to the configuration file, like every other path in it.
    const { signedBy, metadata } = options as { signedBy?: unknown; metadata?: unknown };
    options = {
      ...options,
      ...(Array.isArray(signedBy) ? { signedBy: signedBy.map((f) => path.resolve(baseDir, String(f))) } : {}),
      ...(typeof metadata === 'string' ? { metadata: path.resolve(baseDir, metadata) } : {}),
    };
  }
  return {
    name: raw.name,
    schedule: raw.schedule,
    timezone: raw.timezone ?? 'Europe/Berlin',
    run:
      'builtin' in raw.run ? { builtin: raw.run.builtin } : { adapter: raw.run.adapter, task: raw.run.task },
    overlap: raw.overlap ?? 'skip',
    missed: raw.missed ?? 'skip',
    timeoutMs: parseDuration(raw.timeout ?? '5m'),
    options,
  };
}

export function jobProblems(config: GatewayConfig, manifests: readonly AdapterManifest[]): Problem[] {
  const problems: Problem[] = [];
  const byType = new Map(manifests.map((m) => [m.type, m]));
  const routeIds = new Set(config.routes.map((r) => r.id));
  const names = new Set<string>();
  config.jobs.forEach((job, i) => {
    const at = `/jobs/${i}`;
    if (names.has(job.name)) problems.push({ path: `${at}/name`, message: `duplicate job name ${job.name}` });
    names.add(job.name);
    if (!isValidCronExpression(job.schedule)) {
      problems.push({ path: `${at}/schedule`, message: `not a cron expression: ${job.schedule}` });
    }
    if (!isValidTimezone(job.timezone)) {
      problems.push({ path: `${at}/timezone`, message: `unknown time zone ${job.timezone}` });
    }
    if ('adapter' in job.run) {
      const instance = config.adapters[job.run.adapter];
      if (!instance) {
        problems.push({
          path: `${at}/run/adapter`,
          message: `no adapter instance has the id ${job.run.adapter}`,
        });
      } else if (byType.get(instance.type)?.capabilities[job.run.task] !== true) {
        const what = `adapter instance ${job.run.adapter} (type ${instance.type})`;
        problems.push(
          job.run.task === 'poll'
            ? { path: `${at}/run/adapter`, message: `${what} cannot poll` }
            : { path: `${at}/run/task`, message: `${what} has no routing or destination data to refresh` },
        );
      }
    } else if (job.run.builtin === 'idp-metadata-refresh') {
      const { metadata, signedBy, timeout } = job.options as unknown as IdpMetadataRefreshOptions;
      const idpFiles = (config.identity?.idps ?? []).map((idp) => idp.metadata);
      if (!idpFiles.includes(metadata)) {
        problems.push({
          path: `${at}/options/metadata`,
          message:
            idpFiles.length === 0
              ? 'there is no identity section whose IdP metadata this job could refresh'
              : `${metadata} is not the metadata file of a configured IdP (identity.idps[].metadata)`,
        });
      }
      signedBy.forEach((file, j) => {
        try {
          accessSync(file, constants.R_OK);
        } catch {
          problems.push({ path: `${at}/options/signedBy/${j}`, message: `file ${file} cannot be read` });
        }
      });
      if (timeout !== undefined) {
        try {
          parseDuration(timeout);
        } catch {
          problems.push({ path: `${at}/options/timeout`, message: `not a duration: ${String(timeout)}` });
        }
      }
    } else if (job.run.builtin === 'retention-purge') {
      const routes = (job.options?.routes ?? []) as readonly string[];
      routes.forEach((route, j) => {
        if (!routeIds.has(route))
          problems.push({ path: `${at}/options/routes/${j}`, message: `no route has the id ${route}` });
      });
    }
  });
  return problems;
}
