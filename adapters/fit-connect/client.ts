/**
 * Transport to the Submission API: bearer token, versioned paths, timeouts and RFC 7807 answers
 * turned into the contract's error classes — 429, 5xx and network failures may pass
 * (`retryLater`, honouring `Retry-After`), any other 4xx will not (`rejectPermanently`).
 */
import { parseRetryAfter, quotePeerText, rejectPermanently, retryLater } from '../../src/adapter-contract.js';
import type { ClientCredentialsTokens } from './token.js';

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

export interface RequestOptions {
  readonly json?: unknown;
  /** A raw body (e.g. a JWE compact string); needs `contentType`. */
  readonly body?: string;
  readonly contentType?: string;
  readonly query?: Readonly<Record<string, string | number>>;
  readonly signal?: AbortSignal;
  /** Operator-facing name of the step, e.g. `create submission`. */
  readonly step: string;
}

export interface ProblemDetails {
  readonly type?: string;
  readonly title?: string;
  readonly status?: number;
  readonly detail?: string;
}

export class SubmissionApiClient {
  constructor(
    private readonly options: {
      readonly baseUrl: string;
      readonly apiVersion: string;
      readonly tokens: ClientCredentialsTokens;
      readonly timeoutMs: number;
    },
  ) {}

  /** `path` is below the version prefix, e.g. `/submissions`. */
  url(path: string): string {
    return `${this.options.baseUrl}/${this.options.apiVersion}${path}`;
  }

  async request(method: string, path: string, options: RequestOptions): Promise<ApiResponse> {
    const url = new URL(this.url(path));
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, String(v));
    let response = await this.send(method, url, options, await this.options.tokens.get(options.signal));
    if (response.status === 401) {
      // The token may have been revoked or have expired early: one fresh token, one more try.
      response = await this.send(method, url, options, await this.options.tokens.get(options.signal));
    }
    if (response.status >= 200 && response.status < 300) return response;
    throw classifyFailure(options.step, response);
  }

  async json<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const response = await this.request(method, path, options);
    try {
      return JSON.parse(response.text) as T;
    } catch (cause) {
      throw retryLater(`FIT-Connect ${options.step}: the answer is not JSON`, { cause });
    }
  }

  private async send(method: string, url: URL, options: RequestOptions, token: string): Promise<ApiResponse> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    let body: string | undefined;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      headers['content-type'] = options.contentType ?? 'application/octet-stream';
      body = options.body;
    }
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body,
        signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
      });
    } catch (cause) {
      throw retryLater(`FIT-Connect ${options.step}: ${networkReason(cause)}`, { cause });
    }
    const text = await response.text();
    if (response.status === 401) this.options.tokens.invalidate(token);
    return { status: response.status, headers: response.headers, text };
  }
}

/** Maps a failed answer to `retryLater` or `rejectPermanently`, quoting the problem's title. */
export function classifyFailure(step: string, response: ApiResponse): Error {
  const problem = parseProblem(response.text);
  const what = problem?.title ?? `HTTP ${response.status}`;
  const detail = problem?.detail ? `: ${quotePeerText(problem.detail)}` : '';
  const message = `FIT-Connect ${step} failed with HTTP ${response.status} (${what})${detail}`;
  if (
    response.status === 429 ||
    response.status >= 500 ||
    response.status === 401 ||
    response.status === 408
  ) {
    return retryLater(message, {
      retryAfterSeconds: parseRetryAfter(response.headers.get('retry-after')),
      details: { status: response.status, ...(problem?.type ? { problemType: problem.type } : {}) },
    });
  }
  return rejectPermanently(message);
}

export function parseProblem(text: string): ProblemDetails | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const p = value as Record<string, unknown>;
    return {
      type: typeof p.type === 'string' ? p.type : undefined,
      title: typeof p.title === 'string' ? p.title : undefined,
      status: typeof p.status === 'number' ? p.status : undefined,
      detail: typeof p.detail === 'string' ? p.detail : undefined,
    };
  } catch {
    return undefined;
  }
}

function networkReason(cause: unknown): string {
  const err = cause as Error & { cause?: { code?: string } };
  if (err.name === 'TimeoutError') return 'no answer in time';
  if (err.name === 'AbortError') return 'aborted';
  return err.cause?.code ? `network error ${err.cause.code}` : `network error (${err.message})`;
}
