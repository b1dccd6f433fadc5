/**
 * RFC 7807 answers. Every error the HTTP layer sends is a problem document with the stable code
 * of the error catalog; internal errors say nothing about their cause beyond an incident id that
 * the log carries too.
 */
import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, Request, Response } from 'express';
import { AmtError, isAmtError, type ErrorCode } from '../errors.js';
import type { Logger } from '../observability/log.js';

export const PROBLEM_TYPE_BASE = 'https://amtsbote.de/errors/';
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** How long a client should wait before retrying a 503 (another instance usually serves sooner). */
const RETRY_AFTER_SECONDS = 5;

export interface ProblemDocument {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: ErrorCode;
  readonly instance?: string;
  readonly problems?: readonly { readonly path: string; readonly message: string }[];
}

export function problemOf(err: AmtError, instance: string | undefined): ProblemDocument {
  return {
    type: PROBLEM_TYPE_BASE + err.code,
    title: err.title,
    status: err.status,
    detail: err.message,
    code: err.code,
    ...(instance === undefined ? {} : { instance }),
    ...(err.problems.length > 0
      ? { problems: err.problems.map((p) => ({ path: p.path, message: p.message })) }
      : {}),
  };
}

export function sendProblem(
  req: Request,
  res: Response,
  err: AmtError,
  headers: Record<string, string> = {},
): void {
  res.status(err.status);
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (err.status === 503) res.setHeader('Retry-After', String(err.retryAfterSeconds ?? RETRY_AFTER_SECONDS));
  res.type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problemOf(err, req.path)));
}

/** Maps errors that did not come from us (express' router, Node) onto the catalog. */
function foreignToAmtError(err: unknown): AmtError | undefined {
  const status =
    (err as { status?: unknown; statusCode?: unknown } | undefined)?.status ??
    (err as { statusCode?: unknown })?.statusCode;
  // The router answers 400 for a path segment that is not valid percent-encoding: no such resource.
  if (err instanceof URIError || status === 400 || status === 404)
    return new AmtError('AMT_NOT_FOUND', 'no such resource');
  if (status === 413) return new AmtError('AMT_BODY_TOO_LARGE');
  if (status === 415) return new AmtError('AMT_UNSUPPORTED_MEDIA_TYPE');
  return undefined;
}

/** The last middleware: turns whatever was thrown into a problem answer and logs what is internal. */
export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    let amt = isAmtError(err) ? err : foreignToAmtError(err);
    if (!amt || amt.status >= 500) {
      const incident = randomUUID();
      logger.error('request failed', {
        incident,
        method: req.method,
        route: routeOf(req),
        code: amt?.code ?? 'AMT_INTERNAL',
        error: err,
        stack: stackFrames(err),
      });
      if (!amt || amt.code === 'AMT_INTERNAL') {
        amt = new AmtError('AMT_INTERNAL', `an internal error occurred; incident ${incident}`);
      }
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendProblem(req, res, amt);
  };
}

/** The route template (`/api/v1/applications/:id`) rather than the path, for logs and metrics. */
export function routeOf(req: Request): string {
  const template = (req.route as { path?: unknown } | undefined)?.path;
  return typeof template === 'string' ? req.baseUrl + template : 'unmatched';
}

/** Stack frames without the first line, which repeats the message (already redacted in `error`). */
function stackFrames(err: unknown): string | undefined {
  const stack = err instanceof Error ? err.stack : undefined;
  if (!stack) return undefined;
  return stack
    .split('\n')
    .filter((line) => line.trimStart().startsWith('at '))
    .slice(0, 12)
    .join('\n');
}
