/**
 * RFC 7807 answers. Every error the HTTP layer sends is a problem document with the stable code
 * of the error catalog; internal errors say nothing about their cause beyond an incident id that
 * the log carries too.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorRequestHandler, Request } from 'express';
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

/**
 * Answers with the problem document of `err`; `instance` is the request's path (express' `req.path`,
 * relative to a mounted router, or the path of `req.url`).
 */
export function sendProblem(
  req: IncomingMessage & { readonly path?: string },
  res: ServerResponse,
  err: AmtError,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(problemOf(err, req.path ?? pathOf(req.url)));
  res.statusCode = err.status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (err.status === 503) res.setHeader('Retry-After', String(err.retryAfterSeconds ?? RETRY_AFTER_SECONDS));
  res.setHeader('Content-Type', `${PROBLEM_CONTENT_TYPE}; charset=utf-8`);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The path of a request target, without its query. */
function pathOf(url: string | undefined): string {
  const target = url ?? '/';
  const query = target.indexOf('?');
  return query === -1 ? target : target.slice(0, query);
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
  return (err: unknown, req, res, _next) => answerError(logger, req, res, err, routeOf(req));
}

/**
 * Answers a request that failed with `err`: a problem document, or a closed connection when the
 * answer had begun. Errors that are not the client's are logged with an incident id the answer
 * names; `route` is the route template for that log line.
 */
export function answerError(
  logger: Logger,
  req: IncomingMessage & { readonly path?: string },
  res: ServerResponse,
  err: unknown,
  route: string,
): void {
  let amt = isAmtError(err) ? err : foreignToAmtError(err);
  if (!amt || amt.status >= 500) {
    const incident = randomUUID();
    logger.error('request failed', {
      incident,
      method: req.method,
      route,
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
