/**
 * Reads `gateway.yaml`: YAML → secret substitution → JSON Schema (core + adapter manifests,
 * defaults applied, unknown keys rejected) → cross-reference checks → typed, frozen config.
 * Every problem is collected with its path so `amtsbote check` can print them all at once.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { parseDocument, LineCounter } from 'yaml';
import type { AdapterManifest } from '../adapter-contract.js';
import { AmtError, isAmtError, type Problem } from '../errors.js';
import { decodeStrictUtf8, firstNonUtf8Line } from '../utf8.js';
import { toIdentityConfig, type RawIdentityConfig } from './identity.js';
import { jobProblems, toJobConfig, type RawJob } from './jobs.js';
import { consistencyProblems } from './consistency.js';
import { composeSchema } from './schema.js';
import { readSubstitutedAsTyped, substituteSecrets } from './substitution.js';
import type { GatewayConfig, RetryPolicy, RouteConfig } from './types.js';
import { parseByteSize, parseDuration, parseTimerDuration } from './units.js';

export interface LoadOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly manifests: readonly AdapterManifest[];
}

/** Loads and validates a configuration file; throws AMT_CONFIG_* with every problem found. */
export function loadConfigFile(file: string, options: LoadOptions): GatewayConfig {
  const absolute = path.resolve(file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(absolute);
  } catch (cause) {
    throw new AmtError('AMT_CONFIG_UNREADABLE', `cannot read ${absolute}: ${(cause as Error).message}`, {
      cause,
    });
  }
  const text = decodeStrictUtf8(bytes);
  if (text === undefined) {
    throw new AmtError('AMT_CONFIG_INVALID', `${absolute} is not valid UTF-8`, {
      problems: [{ path: `line ${firstNonUtf8Line(bytes) ?? '?'}`, message: 'is not valid UTF-8' }],
    });
  }
  return parseConfig(text, { ...options, source: absolute });
}

export function parseConfig(text: string, options: LoadOptions & { source?: string }): GatewayConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new AmtError('AMT_CONFIG_INVALID', 'the configuration is not valid YAML', {
      problems: doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? '?'}`, message: e.message })),
    });
  }
  const secretProblems: Problem[] = [];
  const baseDir = options.source ? path.dirname(options.source) : process.cwd();
  const substituted = substituteSecrets(doc, options.env ?? process.env, baseDir, secretProblems);
  const raw = plainValue(doc);
  const unresolved = secretProblems.map((p) => p.path);
  const validate = (): GatewayConfig =>
    validateConfig(raw, {
      manifests: options.manifests,
      baseDir,
      source: options.source,
      substituted,
      unresolved,
    });
  if (secretProblems.length === 0) return validate();
  // Missing secrets are reported with whatever else is wrong, so one run of `check` shows it all
  // (a CI job checks a configuration without the production secrets); what the empty stand-ins
  // for the missing values cause at their own paths is left out.
  const others: Problem[] = [];
  let routes: GatewayConfig['routes'] | undefined;
  try {
    routes = validate().routes;
  } catch (err) {
    // A stand-in may trip code that expects a real value; the missing secret is the problem then.
    if (isAmtError(err)) others.push(...err.problems.filter((p) => !isUnder(p.path, unresolved)));
  }
  // What holds besides the secrets goes along, so `check` can compile the routes' mappings.
  throw missingSecretsError(secretProblems, others, routes === undefined ? undefined : { routes });
}

/** `AMT_CONFIG_SECRET_MISSING`: the missing secrets first, then whatever else is wrong. */
export function missingSecretsError(
  secretProblems: readonly Problem[],
  others: readonly Problem[],
  details?: MissingSecretsDetails,
): AmtError {
  return new AmtError(
    'AMT_CONFIG_SECRET_MISSING',
    others.length === 0
      ? 'the configuration references missing secrets'
      : 'the configuration references missing secrets and has other problems',
    { problems: [...secretProblems, ...others], ...(details === undefined ? {} : { details }) },
  );
}

/** `details` of `AMT_CONFIG_SECRET_MISSING` when nothing but the secrets is wrong. */
export interface MissingSecretsDetails {
  readonly routes: GatewayConfig['routes'];
}

interface ValidateOptions {
  readonly manifests: readonly AdapterManifest[];
  readonly baseDir: string;
  readonly source: string | undefined;
  /** Paths whose text came from one `${…}` and nothing else (see `substituteSecrets`). */
  readonly substituted?: ReadonlySet<string>;
  /**
   * Paths of `${…}` references that could not be resolved and hold empty stand-ins: what the
   * schema says about them does not keep the consistency checks from running.
   */
  readonly unresolved?: readonly string[];
}

/** True when `at` is one of `roots` or lies below one. */
function isUnder(at: string, roots: readonly string[]): boolean {
  return roots.some((root) => at === root || at.startsWith(`${root}/`));
}

const validatorCache = new WeakMap<readonly AdapterManifest[], ReturnType<Ajv2020['compile']>>();

function validatorFor(manifests: readonly AdapterManifest[]): ReturnType<Ajv2020['compile']> {
  let validate = validatorCache.get(manifests);
  if (!validate) {
    const ajv = new Ajv2020({ allErrors: true, useDefaults: true, strict: false });
    validate = ajv.compile(composeSchema(manifests));
    validatorCache.set(manifests, validate);
  }
  return validate;
}

/** Validates parsed configuration data (already substituted); fills defaults; freezes. */
export function validateConfig(raw: unknown, options: ValidateOptions): GatewayConfig {
  const data = structuredClone(raw) as Record<string, unknown>;
  const validate = validatorFor(options.manifests);
  let valid = validate(data);
  if (
    !valid &&
    options.substituted &&
    readSubstitutedAsTyped(data, validate.errors ?? [], options.substituted)
  ) {
    valid = validate(data);
  }
  if (!valid) {
    const problems = schemaProblems(validate.errors ?? []);
    const unresolved = options.unresolved ?? [];
    if (unresolved.length === 0 || problems.some((p) => !isUnder(p.path, unresolved))) {
      throw new AmtError('AMT_CONFIG_INVALID', 'the configuration does not match its schema', { problems });
    }
  }
  const config = toTyped(data as unknown as RawConfig, options);
  const problems = [
    ...consistencyProblems(config, options.manifests),
    ...jobProblems(config, options.manifests),
  ];
  if (problems.length > 0) {
    throw new AmtError('AMT_CONFIG_INVALID', 'the configuration is inconsistent', { problems });
  }
  return deepFreeze(config);
}

/** Turns ajv's errors into one readable problem each, dropping the noise of if/then/oneOf wrappers. */
export function schemaProblems(errors: readonly ErrorObject[]): Problem[] {
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const e of errors) {
    if (e.keyword === 'if' || e.keyword === 'oneOf' || e.keyword === 'allOf') continue;
    let where = e.instancePath || '/';
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      where = `${e.instancePath}/${extra}`;
      message = 'unknown key';
    } else if (e.keyword === 'required') {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      where = `${e.instancePath}/${missing}`;
      message = 'is required';
    } else if (e.keyword === 'enum') {
      message = `must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    }
    const key = `${where}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push({ path: where, message });
  }
  return problems;
}

type RawRetry = {
  maxAttempts: number;
  initialDelay: number | string;
  maxDelay: number | string;
  multiplier: number;
  jitter: number;
};
interface RawConfig {
  server?: {
    host: string;
    port: number;
    bodyLimit: number | string;
    attachmentLimit: number | string;
    requestTimeout: number | string;
  };
  dataDir: string;
  store?: { type: 'sqlite'; path?: string } | { type: 'postgres'; url: string; poolSize?: number };
  tenants: { id: string; name: string; ars: string }[];
  clients: {
    id: string;
    name?: string;
    keyHash: string;
    tenants?: string[];
    admin: boolean;
    statusReporter?: boolean | string[];
    webhook?: { url: string; secret: string };
  }[];
  adapters: Record<string, { type: string; config?: unknown }>;
  routes: {
    id: string;
    ars: string;
    service: string;
    channel?: string;
    adapter: string;
    mapping?: string;
    retry?: Partial<RawRetry>;
    minTrustLevel?: 'basis' | 'substantiell' | 'hoch';
    statusMapping?: string;
    postbox?: { adapter: string; subject?: string; templates?: Record<string, string> };
  }[];
  retry?: RawRetry;
  pipeline?: {
    concurrency: number;
    batchSize: number;
    lease: number | string;
    pollInterval: number | string;
    deliveryTimeout: number | string;
    drainTimeout: number | string;
    mappingThreads?: number;
  };
  logging?: { level: 'error' | 'warn' | 'info' | 'debug' };
  identity?: RawIdentityConfig;
  jobs?: RawJob[];
}

const RETRY_DEFAULTS: RawRetry = {
  maxAttempts: 12,
  initialDelay: '2s',
  maxDelay: '1h',
  multiplier: 2,
  jitter: 0.2,
};

function toRetry(raw: Partial<RawRetry> | undefined, base: RetryPolicy | undefined): RetryPolicy {
  const fallback = base ?? toRetryFull(RETRY_DEFAULTS);
  if (!raw) return fallback;
  return {
    maxAttempts: raw.maxAttempts ?? fallback.maxAttempts,
    initialDelayMs:
      raw.initialDelay !== undefined ? parseDuration(raw.initialDelay) : fallback.initialDelayMs,
    maxDelayMs: raw.maxDelay !== undefined ? parseDuration(raw.maxDelay) : fallback.maxDelayMs,
    multiplier: raw.multiplier ?? fallback.multiplier,
    jitter: raw.jitter ?? fallback.jitter,
  };
}

function toRetryFull(raw: RawRetry): RetryPolicy {
  return {
    maxAttempts: raw.maxAttempts,
    initialDelayMs: parseDuration(raw.initialDelay),
    maxDelayMs: parseDuration(raw.maxDelay),
    multiplier: raw.multiplier,
    jitter: raw.jitter,
  };
}

/** One core stays with intake, store and deliveries; mapping gets up to two more. */
function defaultMappingThreads(): number {
  return Math.max(0, Math.min(2, os.availableParallelism() - 1));
}

function toTyped(raw: RawConfig, options: ValidateOptions): GatewayConfig {
  // Defaults of nested objects are applied by ajv only when the object exists; fill them here.
  const server = raw.server ?? {
    host: '127.0.0.1',
    port: 8080,
    bodyLimit: '1mb',
    attachmentLimit: '50mb',
    requestTimeout: '60s',
  };
  const pipeline = raw.pipeline ?? {
    concurrency: 64,
    batchSize: 100,
    lease: '2m',
    pollInterval: '250ms',
    deliveryTimeout: '30s',
    drainTimeout: '30s',
  };
  const dataDir = path.resolve(options.baseDir, raw.dataDir);
  const storeRaw = raw.store ?? { type: 'sqlite' as const };
  const store =
    storeRaw.type === 'sqlite'
      ? { type: 'sqlite' as const, path: path.resolve(dataDir, storeRaw.path ?? 'amtsbote.db') }
      : { type: 'postgres' as const, url: storeRaw.url, poolSize: storeRaw.poolSize ?? 10 };
  const retry = toRetry(raw.retry, undefined);
  const routes: RouteConfig[] = raw.routes.map((r) => ({
    id: r.id,
    ars: r.ars,
    service: r.service,
    channel: r.channel,
    adapter: r.adapter,
    mapping: r.mapping === undefined ? undefined : path.resolve(options.baseDir, r.mapping),
    retry: toRetry(r.retry, retry),
    ...(r.minTrustLevel === undefined ? {} : { minTrustLevel: r.minTrustLevel }),
    ...(r.statusMapping === undefined
      ? {}
      : { statusMapping: path.resolve(options.baseDir, r.statusMapping) }),
    ...(r.postbox === undefined
      ? {}
      : {
          postbox: {
            adapter: r.postbox.adapter,
            subject: r.postbox.subject,
            templates: r.postbox.templates ?? {},
          },
        }),
  }));
  return {
    source: options.source,
    server: {
      host: server.host,
      port: server.port,
      bodyLimitBytes: parseByteSize(server.bodyLimit),
      attachmentLimitBytes: parseByteSize(server.attachmentLimit),
      requestTimeoutMs: parseDuration(server.requestTimeout),
    },
    dataDir,
    store,
    tenants: raw.tenants,
    clients: raw.clients.map((c) => ({
      id: c.id,
      name: c.name ?? c.id,
      keyHash: c.keyHash,
      tenants: c.tenants ?? [],
      admin: c.admin,
      ...(c.statusReporter === undefined || c.statusReporter === false
        ? {}
        : { statusReporter: c.statusReporter }),
      ...(c.webhook === undefined ? {} : { webhook: { url: c.webhook.url, secret: c.webhook.secret } }),
    })),
    adapters: Object.fromEntries(
      Object.entries(raw.adapters).map(([k, v]) => [k, { type: v.type, config: v.config ?? {} }]),
    ),
    routes,
    retry,
    pipeline: {
      concurrency: pipeline.concurrency,
      batchSize: pipeline.batchSize,
      leaseMs: parseDuration(pipeline.lease),
      pollIntervalMs: parseTimerDuration(pipeline.pollInterval),
      deliveryTimeoutMs: parseTimerDuration(pipeline.deliveryTimeout),
      drainTimeoutMs: parseTimerDuration(pipeline.drainTimeout),
      mappingThreads: pipeline.mappingThreads ?? defaultMappingThreads(),
    },
    logging: raw.logging ?? { level: 'info' },
    ...(raw.identity === undefined ? {} : { identity: toIdentityConfig(raw.identity, options.baseDir) }),
    jobs: (raw.jobs ?? []).map((job) => toJobConfig(job, options.baseDir)),
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** The document as plain data; aliases that expand too far (a "billion laughs") are refused. */
function plainValue(doc: ReturnType<typeof parseDocument>): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    throw new AmtError('AMT_CONFIG_INVALID', 'the configuration is not valid YAML', {
      problems: [
        {
          path: '/',
          message:
            'its aliases (*name) expand too far: each may be used a few times, not nested into thousands',
        },
      ],
      cause: err,
    });
  }
}
