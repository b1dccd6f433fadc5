/**
 * The status back-channel's one entry point. Adapters (through their context), the HTTP status
 * endpoint and nothing else record statuses through it: it checks who may report on which
 * application, maps the raw status to the citizen status with the route's status mapping, and
 * records both with the notifications of a change in one store commit.
 */
import type { AdapterContext, AdapterInstance } from '../adapter-contract.js';
import type { GatewayConfig } from '../config/types.js';
import { AmtError } from '../errors.js';
import type { Router } from '../routing.js';
import type { MessageLookup, MessageRecord, Store } from '../store/types.js';
import { DEFAULT_STATUS_MAPPING, loadStatusMapping, type StatusMapping } from './mapping.js';
import { isCitizenStatus, type CitizenStatus } from './model.js';
import { STATUS_NOTICE_CLIENT, StatusNotices } from './notify.js';
import { webhookNotifiers } from './webhook.js';

export { statusNoticeRoutes } from './notify.js';

/** Who reports a status; it limits which applications the report may be about. */
export type StatusReporter =
  | { readonly kind: 'adapter'; readonly instanceId: string }
  | {
      readonly kind: 'client';
      readonly id: string;
      readonly tenants: ReadonlySet<string>;
      /** Adapter instances whose applications it may report on; undefined: all of them. */
      readonly adapters: readonly string[] | undefined;
    };

export interface StatusReportInput {
  readonly messageId: string;
  /** The receiver's own status value or code, e.g. `IN_BEARBEITUNG`, `0100`, `accepted`. */
  readonly status: string;
  /** Kept in the history; a string `text` fills the `{text}` placeholder of citizen texts. */
  readonly detail?: Readonly<Record<string, unknown>> | undefined;
}

export interface RecordedStatus {
  readonly messageId: string;
  readonly remoteStatus: string;
  /** The application's citizen status after this report (unchanged when the status is not mapped). */
  readonly citizenStatus: CitizenStatus | undefined;
  readonly citizenText: string | undefined;
  /** True when the report equalled the latest one and changed nothing. */
  readonly repeated: boolean;
  /** Notifications (webhook, postbox) this report enqueued. */
  readonly notifications: number;
}

export type MessageLocator =
  { readonly messageId: string } | { readonly deliveryId: string } | { readonly remoteReference: string };

export interface StatusLogger {
  info(message: string, meta?: Record<string, unknown>): void;
}

export interface StatusServiceDeps {
  readonly config: GatewayConfig;
  readonly store: Store;
  readonly router: Router;
  readonly logger: StatusLogger;
  /** Called after notifications were enqueued, so the pipeline delivers them at once. */
  readonly onEnqueued: () => void;
  readonly now?: () => number;
}

export interface StatusService {
  /** Records a report; throws AMT_NOT_FOUND, AMT_STATUS_NOT_DELIVERED or AMT_VALIDATION_FAILED. */
  report(input: StatusReportInput, reporter: StatusReporter): Promise<RecordedStatus>;
  /** The application a reporter may report on; throws AMT_NOT_FOUND or AMT_STATUS_AMBIGUOUS. */
  locate(by: MessageLocator, reporter: StatusReporter): Promise<MessageRecord>;
  /** `reportStatus` and `findMessage` of one adapter instance's context. */
  adapterContext(instanceId: string): Pick<AdapterContext, 'reportStatus' | 'findMessage'>;
  /** The webhook notifiers by target id; the gateway adds them to the pipeline's adapters. */
  notifiers(): Map<string, AdapterInstance>;
}

const MAX_STATUS_LENGTH = 200;
/** More matches than this for one remote reference are not listed, only reported as ambiguous. */
const LOOKUP_LIMIT = 10;

/**
 * Creates the service once per process: every status mapping file and postbox template is
 * compiled here, so a broken file stops the start instead of the first report.
 */
export function createStatusService(deps: StatusServiceDeps): StatusService {
  const now = deps.now ?? Date.now;
  const mappings = compileMappings(deps.config);
  const notices = new StatusNotices(deps.config);

  const mayReportOn = (message: MessageRecord, reporter: StatusReporter): boolean => {
    if (message.clientId === STATUS_NOTICE_CLIENT) return false; // notices have no status of their own
    if (reporter.kind === 'adapter') return message.target === reporter.instanceId;
    return (
      reporter.tenants.has(message.tenantId) &&
      (reporter.adapters === undefined || reporter.adapters.includes(message.target))
    );
  };

  const notFound = (): AmtError =>
    new AmtError('AMT_NOT_FOUND', 'no application this reporter may report on has this id');

  const locate = async (by: MessageLocator, reporter: StatusReporter): Promise<MessageRecord> => {
    if ('messageId' in by) {
      const message = await deps.store.getMessage(by.messageId);
      if (!message || !mayReportOn(message, reporter)) throw notFound();
      return message;
    }
    const target = reporter.kind === 'adapter' ? reporter.instanceId : undefined;
    const lookup: MessageLookup =
      'deliveryId' in by
        ? { deliveryId: by.deliveryId, target }
        : { remoteReference: by.remoteReference, target };
    const found = (await deps.store.findMessages(lookup, LOOKUP_LIMIT)).filter((m) =>
      mayReportOn(m, reporter),
    );
    if (found.length > 1) {
      throw new AmtError(
        'AMT_STATUS_AMBIGUOUS',
        `${found.length} applications have this remote reference; send the deliveryId`,
      );
    }
    if (!found[0]) throw notFound();
    return found[0];
  };

  const report = async (input: StatusReportInput, reporter: StatusReporter): Promise<RecordedStatus> => {
    checkStatus(input.status);
    const message = await locate({ messageId: input.messageId }, reporter);
    const route = deps.router.routeById(message.routeId);
    const mapping = (route && mappings.get(route.id)) ?? DEFAULT_STATUS_MAPPING;
    const text = input.detail?.text;
    const values = {
      reference: message.reference,
      remoteReference: message.remoteReference,
      tenant: deps.router.tenantById(message.tenantId)?.name,
      text: typeof text === 'string' ? text : undefined,
    };
    const remoteStatus = input.status.trim();
    const citizen = mapping.map(remoteStatus, values);
    const at = now();
    const result = await deps.store.recordStatus(
      { messageId: message.id, remoteStatus, detail: input.detail, citizen },
      (change) =>
        citizen === undefined
          ? []
          : notices.followUps(
              {
                message,
                route,
                mapping,
                values,
                citizenStatus: citizen.status,
                citizenText: citizen.text,
                remoteStatus,
                at,
              },
              change,
            ),
      at,
    );
    if (result.kind === 'unknown') throw notFound();
    if (result.kind === 'not-delivered') {
      throw new AmtError(
        'AMT_STATUS_NOT_DELIVERED',
        `application ${message.id} is ${message.status}, not delivered yet`,
      );
    }
    if (result.followUpsCreated > 0) deps.onEnqueued();
    const current = citizen ?? (await deps.store.citizenStatus(message.id));
    const citizenStatus = current && isCitizenStatus(current.status) ? current.status : undefined;
    const repeated = result.kind === 'repeated';
    deps.logger.info(repeated ? 'status report repeated' : 'status recorded', {
      messageId: message.id,
      remoteStatus,
      // Unmapped statuses are normal for transports (XTA, FIT-Connect `submitted`); the mapping file says which count.
      citizenStatus: citizen?.status ?? 'unmapped',
      mapping: mapping.file ?? 'built-in',
      notifications: result.followUpsCreated,
      reporter: reporter.kind === 'adapter' ? `adapter:${reporter.instanceId}` : reporter.id,
    });
    return {
      messageId: message.id,
      remoteStatus,
      citizenStatus,
      citizenText: citizenStatus === undefined ? undefined : current?.text,
      repeated,
      notifications: result.followUpsCreated,
    };
  };

  return {
    report,
    locate,
    adapterContext(instanceId) {
      const reporter: StatusReporter = { kind: 'adapter', instanceId };
      return {
        reportStatus: async (update) => {
          await report(update, reporter);
        },
        findMessage: async (by) => {
          try {
            return { messageId: (await locate(by, reporter)).id };
          } catch (err) {
            if (err instanceof AmtError && err.code === 'AMT_NOT_FOUND') return undefined;
            throw err;
          }
        },
      };
    },
    notifiers: () => webhookNotifiers(deps.config.clients, { now }),
  };
}

function compileMappings(config: GatewayConfig): Map<string, StatusMapping> {
  const byFile = new Map<string, StatusMapping>();
  const byRoute = new Map<string, StatusMapping>();
  for (const route of config.routes) {
    if (route.statusMapping === undefined) continue;
    let mapping = byFile.get(route.statusMapping);
    if (!mapping) {
      mapping = loadStatusMapping(route.statusMapping);
      byFile.set(route.statusMapping, mapping);
    }
    byRoute.set(route.id, mapping);
  }
  return byRoute;
}

function checkStatus(status: unknown): void {
  const text = typeof status === 'string' ? status.trim() : '';
  if (text === '' || text.length > MAX_STATUS_LENGTH || /[\u0000-\u001f\u007f]/.test(text)) {
    throw new AmtError(
      'AMT_VALIDATION_FAILED',
      `a status is 1 to ${MAX_STATUS_LENGTH} printable characters`,
      {
        problems: [{ path: '/status', message: `must be 1 to ${MAX_STATUS_LENGTH} printable characters` }],
      },
    );
  }
}
