import { bosunError } from '../errors.js';

/** The Kubernetes `Status` object the API server returns with failures (and some deletes). */
export interface Status {
  kind?: 'Status';
  apiVersion?: string;
  status?: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  code?: number;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    retryAfterSeconds?: number;
    causes?: { reason?: string; message?: string; field?: string }[];
  };
  [key: string]: unknown;
}

/** What a failed request was doing, for error messages that name the verb and object. */
export interface RequestTarget {
  /** The API verb: list, watch, get, create, apply, patch, update, delete, or the raw HTTP method. */
  verb: string;
  kind?: string;
  namespace?: string;
  name?: string;
}

/** A non-2xx answer from the API server, carrying the HTTP status, the Status reason and Retry-After. */
export class ApiError extends bosunError('BOSUN_API_STATUS') {
  override readonly name = 'ApiError';
  /** HTTP status code (404, 409, 410, 429, …). */
  readonly status: number;
  /** The Status `reason` (NotFound, AlreadyExists, Conflict, Expired, TooManyRequests, …), if any. */
  readonly reason: string | undefined;
  /** Seconds the server asked us to wait (Retry-After header or Status details), if any. */
  readonly retryAfterSeconds: number | undefined;
  /** The decoded Status body, if the server sent one. */
  readonly body: Status | undefined;
  /** The request that failed. */
  readonly target: RequestTarget;

  constructor(target: RequestTarget, status: number, body: Status | undefined, retryAfterSeconds?: number) {
    const obj = describeTarget(target);
    const serverMsg = body?.message ?? `HTTP ${status}`;
    super(`${target.verb} ${obj}: ${status}${body?.reason ? ` ${body.reason}` : ''}: ${serverMsg}`);
    this.status = status;
    this.reason = body?.reason;
    this.body = body;
    this.target = target;
    this.retryAfterSeconds = retryAfterSeconds ?? body?.details?.retryAfterSeconds;
  }
}

/** A transport failure (connection refused, reset, TLS, timeout, dead connection) before or while the answer was read. */
export class TransportError extends bosunError('BOSUN_TRANSPORT') {
  override readonly name = 'TransportError';
  /** The request that failed. */
  readonly target: RequestTarget;
  /** True when the server certainly did not process the request (refused stream, GOAWAY), so even a write may be resent. */
  readonly unprocessed: boolean;

  constructor(target: RequestTarget, cause: unknown, opts: { unprocessed?: boolean } = {}) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`${target.verb} ${describeTarget(target)}: ${why}`, { cause });
    this.target = target;
    this.unprocessed = opts.unprocessed ?? false;
  }
}

/** A request that did not complete within its deadline (the cause of the TransportError it is reported as). */
export class RequestTimeoutError extends bosunError('BOSUN_REQUEST_TIMEOUT') {
  override readonly name = 'RequestTimeoutError';
  /** The deadline in ms, counted from when the request was issued. */
  readonly timeoutMs: number;
  /** How the attempt before the one the deadline cut short failed, when one did. */
  readonly lastFailure: Error | undefined;

  constructor(timeoutMs: number, lastFailure?: Error) {
    super(
      `request timed out after ${timeoutMs} ms` +
        (lastFailure
          ? `; the attempt before failed: ${lastFailure.message}`
          : " (raise requestTimeoutMs or the request's timeoutMs if the server is just slow)"),
    );
    this.timeoutMs = timeoutMs;
    this.lastFailure = lastFailure;
  }
}

/** A connection the client declared dead: an HTTP/2 PING went unanswered, or a socket read nothing for too long. */
export class DeadConnectionError extends bosunError('BOSUN_DEAD_CONNECTION') {
  override readonly name = 'DeadConnectionError';
}

/** A kubeconfig that cannot be used: missing context, no cluster, unreadable file. */
export class KubeConfigError extends bosunError('BOSUN_KUBECONFIG') {
  override readonly name = 'KubeConfigError';
}

/** `$BOSUN_TRANSPORT` names no transport. */
export class TransportConfigError extends bosunError('BOSUN_TRANSPORT_CONFIG') {
  override readonly name = 'TransportConfigError';
}

/** A request was made through a client after its `close()`. */
export class ClientClosedError extends bosunError('BOSUN_CLIENT_CLOSED') {
  override readonly name = 'ClientClosedError';
}

/** The server did not agree to HTTP/2 on a client whose transport is 'h2'. */
export class Http2RefusedError extends bosunError('BOSUN_HTTP2_REFUSED') {
  override readonly name = 'Http2RefusedError';
}

/** A write that addresses its object by name was given an object without `metadata.name`. */
export class ObjectNameRequiredError extends bosunError('BOSUN_OBJECT_NAME_REQUIRED') {
  override readonly name = 'ObjectNameRequiredError';
}

function describeTarget(t: RequestTarget): string {
  const ref = t.namespace ? `${t.namespace}/${t.name ?? ''}` : (t.name ?? '');
  const s = [t.kind, ref].filter((x) => x).join(' ');
  return s || '(unnamed)';
}

/** The HTTP status of an error, if it is an ApiError. */
export function statusOf(err: unknown): number | undefined {
  return err instanceof ApiError ? err.status : undefined;
}

/** Whether the error is a 404 Not Found. */
export function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404;
}

/** Whether the error is a 409 Conflict (stale resourceVersion) or AlreadyExists. */
export function isConflict(err: unknown): boolean {
  return statusOf(err) === 409;
}

/** Whether the error is a 409 AlreadyExists from a create. */
export function isAlreadyExists(err: unknown): boolean {
  return err instanceof ApiError && err.status === 409 && err.reason === 'AlreadyExists';
}

/** Whether the error is 410 Gone: the resourceVersion is too old and the caller must relist. */
export function isGone(err: unknown): boolean {
  return statusOf(err) === 410;
}

/** Whether the error is 429 Too Many Requests (API Priority and Fairness throttling). */
export function isTooManyRequests(err: unknown): boolean {
  return statusOf(err) === 429;
}

/** Parses a Retry-After header (delta seconds or an HTTP date) into seconds. */
export function parseRetryAfter(value: string | undefined, nowMs = Date.now()): number | undefined {
  if (!value) return undefined;
  const n = Number(value);
  if (Number.isFinite(n) && n >= 0) return n;
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - nowMs) / 1000));
}
