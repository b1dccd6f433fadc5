/**
 * Admin API of the scheduler, mounted under `/api/v1/admin` behind admin authentication:
 * `GET /jobs` (schedule, next run, last run), `GET /jobs/:name/runs` (history, newest first,
 * `limit` and `cursor`), `POST /jobs/:name/run` (one occurrence now, through the same claim:
 * 202 with the run; 409 AMT_JOB_OVERLAP when the overlap policy skipped it).
 */
import express, { type Request, type RequestHandler, type Router } from 'express';
import { AmtError, type Problem } from '../errors.js';
import { sendProblem } from '../http/problem.js';
import type { Store } from '../store/types.js';
import type { Scheduler } from './scheduler.js';
import { jobRunView, jobView } from './views.js';

export interface JobsRouterDeps {
  readonly scheduler: Scheduler;
  readonly store: Store;
  /** Run before every handler of this router (authentication, admin check). */
  readonly guards?: readonly RequestHandler[];
}

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 500;

type Method = 'get' | 'post';

export function jobsRouter(deps: JobsRouterDeps): Router {
  const router = express.Router();
  const guards = [...(deps.guards ?? [])];

  const resource = (path: string, handlers: Partial<Record<Method, RequestHandler>>): void => {
    const route = router.route(path);
    const allowed: string[] = [];
    for (const [method, handler] of Object.entries(handlers) as [Method, RequestHandler][]) {
      route[method](...guards, handler);
      allowed.push(method.toUpperCase(), ...(method === 'get' ? ['HEAD'] : []));
    }
    route.all((req, res) =>
      sendProblem(req, res, new AmtError('AMT_METHOD_NOT_ALLOWED', `${req.method} is not allowed here`), {
        Allow: allowed.join(', '),
      }),
    );
  };

  const jobNamed = (req: Request): string => {
    const name = String(req.params.name);
    if (!deps.scheduler.has(name)) throw new AmtError('AMT_JOB_UNKNOWN', `no job is named ${name}`);
    return name;
  };

  resource('/jobs', {
    get: async (req, res) => {
      queryParams(req, []);
      const items = await Promise.all(
        deps.scheduler
          .list()
          .map(async (job) => jobView(job, (await deps.store.jobRuns(job.name, 1)).items[0])),
      );
      res.json({ items });
    },
  });

  resource('/jobs/:name/runs', {
    get: async (req, res) => {
      const name = jobNamed(req);
      const query = queryParams(req, ['limit', 'cursor']);
      const limitText = query.get('limit');
      const limit = limitText === undefined ? DEFAULT_LIMIT : Number(limitText);
      if (!/^\d+$/.test(limitText ?? '1') || limit < 1 || limit > MAX_LIMIT) {
        throw queryProblem([{ path: 'limit', message: `must be an integer from 1 to ${MAX_LIMIT}` }]);
      }
      const page = await deps.store.jobRuns(name, limit, query.get('cursor'));
      res.json({ items: page.items.map(jobRunView), nextCursor: page.nextCursor ?? null });
    },
  });

  resource('/jobs/:name/run', {
    post: async (req, res) => {
      const name = jobNamed(req);
      queryParams(req, []);
      const started = await deps.scheduler.trigger(name);
      if (started.run.status === 'skipped') {
        throw new AmtError(
          'AMT_JOB_OVERLAP',
          'an earlier run of the job is still running; this run was skipped',
          {
            details: { runId: started.run.id },
          },
        );
      }
      res
        .status(202)
        .location(`${req.baseUrl}/jobs/${encodeURIComponent(name)}/runs`)
        .json({ run: jobRunView(started.run) });
    },
  });

  return router;
}

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

function queryProblem(problems: readonly Problem[]): AmtError {
  return new AmtError('AMT_VALIDATION_FAILED', 'a query parameter is not valid', { problems });
}
