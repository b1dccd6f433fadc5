/** The configuration after validation, defaults and unit parsing; deeply frozen. */
import type { TrustLevel } from '../identity/identity.js';
import type { BuiltinJobName } from '../scheduler/builtin/options.js';

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly multiplier: number;
  readonly jitter: number;
}

export interface TenantConfig {
  readonly id: string;
  readonly name: string;
  readonly ars: string;
}

export interface ClientConfig {
  readonly id: string;
  readonly name: string;
  readonly keyHash: string;
  readonly tenants: readonly string[];
  readonly admin: boolean;
  /** May report statuses at `POST /api/v1/status`: of every adapter instance (`true`) or of the listed ones. */
  readonly statusReporter?: boolean | readonly string[] | undefined;
  /** Where citizen-status changes of this client's applications are POSTed, signed with `secret`. */
  readonly webhook?: { readonly url: string; readonly secret: string } | undefined;
}

export interface AdapterInstanceConfig {
  readonly type: string;
  readonly config: unknown;
}

export interface RouteConfig {
  readonly id: string;
  readonly ars: string;
  readonly service: string;
  readonly channel: string | undefined;
  readonly adapter: string;
  /** Absolute path of the mapping file, when the route maps. */
  readonly mapping: string | undefined;
  readonly retry: RetryPolicy;
  /** The trust level of the citizen login the route requires; needs the `identity` section. */
  readonly minTrustLevel?: TrustLevel | undefined;
  /** Absolute path of the status mapping file (raw receiver statuses → citizen status). */
  readonly statusMapping?: string | undefined;
  /** Postbox notices on citizen-status changes. */
  readonly postbox?: PostboxNoticeConfig | undefined;
}

export interface PostboxNoticeConfig {
  /** The `postbox` adapter instance the notices go to. */
  readonly adapter: string;
  /** Subject template; the built-in one when undefined. */
  readonly subject: string | undefined;
  /** Text template per citizen status; the citizen text when a status has none. */
  readonly templates: Readonly<Partial<Record<string, string>>>;
}

export type StoreConfig =
  | { readonly type: 'sqlite'; readonly path: string }
  | { readonly type: 'postgres'; readonly url: string; readonly poolSize: number };

/** Verified citizen identity: which IdPs are trusted and what assertions must be addressed to. */
export interface IdentityConfig {
  /** Absolute paths of the IdPs' SAML metadata files. */
  readonly idps: readonly { readonly metadata: string }[];
  /** Our SP entity ID. */
  readonly audience: string;
  /** The portal's ACS URL, when assertions must name it. */
  readonly recipient: string | undefined;
  readonly clockSkewMs: number;
  /** PEM text of the SP decryption key(s), read from their files at load (secret: never print it). */
  readonly spDecryptionKeys: readonly string[];
}

export interface GatewayConfig {
  /** Absolute path of the file this came from, or undefined when built in code. */
  readonly source: string | undefined;
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly bodyLimitBytes: number;
    readonly attachmentLimitBytes: number;
    readonly requestTimeoutMs: number;
  };
  readonly dataDir: string;
  readonly store: StoreConfig;
  readonly tenants: readonly TenantConfig[];
  readonly clients: readonly ClientConfig[];
  readonly adapters: Readonly<Record<string, AdapterInstanceConfig>>;
  readonly routes: readonly RouteConfig[];
  readonly retry: RetryPolicy;
  readonly pipeline: {
    readonly concurrency: number;
    readonly batchSize: number;
    readonly leaseMs: number;
    readonly pollIntervalMs: number;
    readonly deliveryTimeoutMs: number;
    readonly drainTimeoutMs: number;
    /** Worker threads for the mapping step; 0 maps on the main thread. */
    readonly mappingThreads: number;
  };
  readonly logging: { readonly level: 'error' | 'warn' | 'info' | 'debug' };
  /** Absent when the gateway verifies no citizen identities. */
  readonly identity?: IdentityConfig | undefined;
  /** Scheduled jobs; empty when none are configured. */
  readonly jobs: readonly JobConfig[];
}

/** What a job runs: a built-in job, or one task of an adapter instance (poll: inbox, status; refresh). */
export type JobRunConfig =
  { readonly builtin: BuiltinJobName } | { readonly adapter: string; readonly task: 'poll' | 'refresh' };

export interface JobConfig {
  readonly name: string;
  /** Cron expression as written (validated with node-cron). */
  readonly schedule: string;
  readonly timezone: string;
  readonly run: JobRunConfig;
  readonly overlap: 'skip' | 'queue';
  readonly missed: 'skip' | 'run-once';
  readonly timeoutMs: number;
  /** Options of a built-in job, checked against its schema; undefined for adapter jobs. */
  readonly options: Readonly<Record<string, unknown>> | undefined;
}
