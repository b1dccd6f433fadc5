/**
 * The admin API (clients with `admin: true`): listings across all tenants, one message with its
 * history and delivery attempts, dead letters, and replay.
 */
import type { Request, RequestHandler } from 'express';
import type { GatewayConfig } from '../config/types.js';
import { isLeistungsschluessel } from '../domain.js';
import { AmtError, type Problem } from '../errors.js';
import type { MessageFilter, MessageStatus, Store } from '../store/types.js';
import { clientOf } from './auth.js';
import { bodyKind, readJsonBody } from './body.js';
import { validationProblems, type RequestValidators } from './openapi.js';
import { deadLetterView, messageDetailView, messageSummaryView } from './views.js';

export interface AdminDeps {
  readonly config: GatewayConfig;
  readonly store: Store;
  readonly validators: RequestValidators;
  readonly onAccepted: () => void;
  readonly now: () => number;
}

const STATUSES: readonly MessageStatus[] = ['received', 'delivering', 'retrying', 'delivered', 'dead'];
const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 500;
/**
 * Most messages one `{deadLetters: true}` or `{retrying: true}` replay moves; the operator
 * repeats the call for more.
 */
export const MAX_REPLAY = 10_000;
/** An ISO 8601 date, or date and time with a zone offset (a time without one would be ambiguous). */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

export interface AdminHandlers {
  readonly listMessages: RequestHandler;
  readonly getMessage: RequestHandler;
  readonly listDeadLetters: RequestHandler;
  readonly replay: RequestHandler;
}

/** Handlers that run behind `requireClient` and `requireAdmin`. */
export function adminHandlers(deps: AdminDeps): AdminHandlers {
  const listMessages: RequestHandler = async (req, res) => {
    const filter = messageFilter(req, deps.config, ['status', 'reference']);
    const page = await deps.store.listMessages(filter);
    res.json({ items: page.items.map(messageSummaryView), nextCursor: page.nextCursor ?? null });
  };

  const getMessage: RequestHandler = async (req, res) => {
    const query = queryParams(req, ['payload']);
    const payload = query.get('payload');
    if (payload !== undefined && payload !== 'true' && payload !== 'false') {
      throw queryProblem([{ path: 'payload', message: 'must be true or false' }]);
    }
    const id = String(req.params.id);
    const message = await deps.store.getMessage(id);
    if (!message) throw new AmtError('AMT_NOT_FOUND', 'no message has this id');
    const [history, attempts] = await Promise.all([deps.store.history(id), deps.store.attempts(id)]);
    res.json(messageDetailView(message, history, attempts, payload === 'true'));
  };

  const listDeadLetters: RequestHandler = async (req, res) => {
    const page = await deps.store.deadLetters(messageFilter(req, deps.config, []));
    res.json({ items: page.items.map(deadLetterView), nextCursor: page.nextCursor ?? null });
  };

  const replay: RequestHandler = async (req, res) => {
    bodyKind(req, ['json']);
    const body = await readJsonBody(req, deps.config.server.bodyLimitBytes);
    const validate = deps.validators.replayRequest;
    if (!validate(body)) {
      throw new AmtError('AMT_VALIDATION_FAILED', 'the replay request does not match its schema', {
        problems: validationProblems(validate.errors),
      });
    }
    const request = body as
      | { ids: string[] }
      | { deadLetters: true; tenant?: string; service?: string }
      | { retrying: true; tenant?: string; service?: string };
    const ids =
      'ids' in request
        ? request.ids
        : await replayCandidates(
            deps,
            'deadLetters' in request ? 'dead' : 'retrying',
            request.tenant,
            request.service,
          );
    const result =
      ids.length === 0
        ? { replayed: [], notReplayable: [] }
        : await deps.store.replay(ids, deps.now(), clientOf(res).id);
    res.json({ replayed: result.replayed, notReplayable: result.notReplayable });
    if (result.replayed.length > 0) deps.onAccepted();
  };

  return { listMessages, getMessage, listDeadLetters, replay };
}

/** Ids of dead letters, or of messages waiting for their next retry, up to `MAX_REPLAY`. */
async function replayCandidates(
  deps: AdminDeps,
  status: 'dead' | 'retrying',
  tenant: string | undefined,
  service: string | undefined,
): Promise<string[]> {
  if (tenant !== undefined && !deps.config.tenants.some((t) => t.id === tenant)) {
    throw new AmtError('AMT_VALIDATION_FAILED', `no tenant has the id ${tenant}`, {
      problems: [{ path: '/tenant', message: 'no tenant has this id' }],
    });
  }
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const filter = {
      tenantIds: tenant === undefined ? undefined : [tenant],
      service,
      limit: Math.min(MAX_LIMIT, MAX_REPLAY - ids.length),
      cursor,
    };
    const page =
      status === 'dead'
        ? await deps.store.deadLetters(filter).then((p) => ({ ...p, items: p.items.map((d) => d.message) }))
        : await deps.store.listMessages({ ...filter, status });
    ids.push(...page.items.map((m) => m.id));
    cursor = page.nextCursor;
  } while (cursor !== undefined && ids.length < MAX_REPLAY);
  return ids;
}

/** Query parameters as single strings; unknown or repeated parameters are errors, not ignored. */
function queryParams(req: Request, allowed: readonly string[]): Map<string, string> {
  const params = new Map<string, string>();
  const problems: Problem[] = [];
  for (const [name, value] of Object.entries(req.query as Record<string, unknown>)) {
    if (!allowed.includes(name)) problems.push({ path: name, message: 'is not a known query parameter' });
    else if (typeof value !== 'string') problems.push({ path: name, message: 'must be given once' });
    else params.set(name, value);
  }
  if (problems.length > 0) throw queryProblem(problems);
  return params;
}

function messageFilter(
  req: Request,
  config: GatewayConfig,
  extra: readonly ('status' | 'reference')[],
): MessageFilter {
  const query = queryParams(req, ['tenant', 'service', 'since', 'until', 'limit', 'cursor', ...extra]);
  const problems: Problem[] = [];
  const tenant = query.get('tenant');
  if (tenant !== undefined && !config.tenants.some((t) => t.id === tenant)) {
    problems.push({ path: 'tenant', message: 'no tenant has this id' });
  }
  const service = query.get('service');
  if (service !== undefined && !isLeistungsschluessel(service)) {
    problems.push({ path: 'service', message: 'must be a Leistungsschlüssel (14 digits starting with 99)' });
  }
  const status = query.get('status');
  if (status !== undefined && !STATUSES.includes(status as MessageStatus)) {
    problems.push({ path: 'status', message: `must be one of: ${STATUSES.join(', ')}` });
  }
  const instant = (name: 'since' | 'until'): number | undefined => {
    const value = query.get(name);
    if (value === undefined) return undefined;
    const at = ISO_INSTANT.test(value) ? Date.parse(value) : Number.NaN;
    if (Number.isNaN(at))
      problems.push({ path: name, message: 'must be an ISO 8601 date, or date-time with a zone offset' });
    return at;
  };
  const since = instant('since');
  const until = instant('until');
  const limitText = query.get('limit');
  const limit =
    limitText === undefined ? DEFAULT_LIMIT : /^\d{1,4}$/.test(limitText) ? Number(limitText) : Number.NaN;
  if (!(limit >= 1 && limit <= MAX_LIMIT))
    problems.push({ path: 'limit', message: `must be an integer from 1 to ${MAX_LIMIT}` });
  if (problems.length > 0) throw queryProblem(problems);
  return {
    tenantIds: tenant === undefined ? undefined : [tenant],
    service,
    status: status as MessageStatus | undefined,
    reference: query.get('reference'),
    since,
    until,
    limit,
    cursor: query.get('cursor'),
  };
}

function queryProblem(problems: readonly Problem[]): AmtError {
  return new AmtError('AMT_VALIDATION_FAILED', 'a query parameter is not valid', { problems });
}
