// Typed client for the booking service. Every failure is sorted into one of three classes so a
// reconciler can decide with one instanceof: retry (transient), give up and report (permanent),
// or fix the credentials (auth).
import type { ApiErrorBody, Booking, BookingRequest, FaultConfig, Route } from './types.js';

/** Base of every error the client throws. */
export class BookingError extends Error {
  override name = 'BookingError';
}

/** A failure that may succeed on retry: 5xx, 429, network errors, timeouts. Retry with the same Idempotency-Key. */
export class BookingTransientError extends BookingError {
  override name = 'BookingTransientError';
  constructor(
    message: string,
    /** HTTP status, or undefined when no response arrived (network error, timeout). */
    readonly status?: number,
    /** Seconds the server asked to wait (429 `Retry-After`), if it said. */
    readonly retryAfterSeconds?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A failure retrying cannot fix (unknown route, invalid seat count, key reuse, cancelled booking); `code` says which. */
export class BookingPermanentError extends BookingError {
  override name = 'BookingPermanentError';
  constructor(
    message: string,
    /** HTTP status of the response. */
    readonly status: number,
    /** The service's error code, e.g. `no_such_route`, `invalid_number`, `idempotency_key_reuse`. */
    readonly code: string,
  ) {
    super(message);
  }
}

/** The booking id does not exist (404); a permanent error, singled out because deletion flows treat it as done. */
export class BookingNotFoundError extends BookingPermanentError {
  override name = 'BookingNotFoundError';
}

/** The service rejected the API key (401); fix the key rather than retrying. */
export class BookingAuthError extends BookingError {
  override name = 'BookingAuthError';
  constructor(
    message: string,
    readonly status = 401,
  ) {
    super(message);
  }
}

/** Options for {@link BookingClient}. */
export interface BookingClientOptions {
  /** Base URL of the service, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** API key sent as `Authorization: Bearer <key>`. */
  apiKey: string;
  /** Per-request timeout in milliseconds (default 10 000); a timeout is a BookingTransientError. */
  timeoutMs?: number;
  /** fetch implementation, for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

/** Typed client for the booking service API. */
export class BookingClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly opts: BookingClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.fetchImpl = opts.fetch ?? fetch;
  }

  /** Books `req` under `key`; the same key again returns the same booking instead of booking twice. */
  async book(key: string, req: BookingRequest): Promise<Booking> {
    return this.request<Booking>('POST', '/v1/bookings', req, { 'idempotency-key': key });
  }

  /** The booking with this id, or undefined if the service has none. */
  async get(id: string): Promise<Booking | undefined> {
    try {
      return await this.request<Booking>('GET', `/v1/bookings/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err instanceof BookingNotFoundError) return undefined;
      throw err;
    }
  }

  /** The booking made with this Idempotency-Key (any state), or undefined if none was. */
  async findByKey(key: string): Promise<Booking | undefined> {
    const { items } = await this.request<{ items: Booking[] }>('GET', `/v1/bookings?key=${encodeURIComponent(key)}`);
    return items[0];
  }

  /** Bookings whose idempotency key starts with `prefix` (any state, oldest first): all a client object made. */
  async listByKeyPrefix(prefix: string, filter: { state?: 'active' | 'cancelled' } = {}): Promise<Booking[]> {
    const q = `keyPrefix=${encodeURIComponent(prefix)}${filter.state ? `&state=${filter.state}` : ''}`;
    return (await this.request<{ items: Booking[] }>('GET', `/v1/bookings?${q}`)).items;
  }

  /** Bookings, optionally only those in one state. */
  async list(filter: { state?: 'active' | 'cancelled' } = {}): Promise<Booking[]> {
    const q = filter.state ? `?state=${filter.state}` : '';
    return (await this.request<{ items: Booking[] }>('GET', `/v1/bookings${q}`)).items;
  }

  /** Sets the seat count of an active booking (idempotent: the same number again is a no-op). */
  async change(id: string, number: number): Promise<Booking> {
    return this.request<Booking>('PATCH', `/v1/bookings/${encodeURIComponent(id)}`, { number });
  }

  /** Cancels a booking; cancelling an already cancelled booking succeeds. Throws BookingNotFoundError for unknown ids. */
  async cancel(id: string): Promise<Booking> {
    return this.request<Booking>('DELETE', `/v1/bookings/${encodeURIComponent(id)}`);
  }

  /** The airport pairs the service flies (`GET /v1/routes`); `signal` abandons the call early (e.g. an admission deadline). */
  async routes(opts: { signal?: AbortSignal } = {}): Promise<Route[]> {
    return (await this.request<{ items: Route[] }>('GET', '/v1/routes', undefined, {}, opts.signal)).items;
  }

  /** Every booking, via `GET /admin/bookings`: exempt from faults and latency, for tests that judge the database. */
  async allBookings(): Promise<Booking[]> {
    return (await this.request<{ items: Booking[] }>('GET', '/admin/bookings')).items;
  }

  /** Replaces the service's fault configuration via `PUT /admin/faults` (for tests and demos). */
  async setFaults(faults: FaultConfig): Promise<FaultConfig> {
    return this.request<FaultConfig>('PUT', '/admin/faults', faults);
  }

  private async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<T> {
    const what = `${method} ${path}`;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.opts.apiKey}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        // One signal covers both the headers and the body: a stall mid-body is a timeout too.
        signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
      });
      text = await res.text();
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      throw new BookingTransientError(
        timedOut && !timeout.aborted && signal?.aborted
          ? `booking service ${what} abandoned: the caller gave up`
          : timedOut
            ? `booking service ${what} timed out after ${this.timeoutMs}ms`
            : `booking service ${what} failed without a response (${describeCause(err)})`,
        undefined,
        undefined,
        { cause: err },
      );
    }

    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.ok) {
      if (parsed === undefined) {
        throw new BookingTransientError(`booking service ${what} returned ${res.status} with a body that is not JSON`, res.status);
      }
      return parsed as T;
    }

    const errBody = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Partial<ApiErrorBody>;
    const code = typeof errBody.error === 'string' ? errBody.error : `http_${res.status}`;
    const message = `booking service ${what}: ${res.status} ${code}${errBody.message ? `: ${errBody.message}` : ''}`;
    if (res.status === 401 || res.status === 403) throw new BookingAuthError(message, res.status);
    if (res.status === 429 || res.status === 408 || res.status >= 500) {
      throw new BookingTransientError(message, res.status, parseRetryAfter(res.headers.get('retry-after')));
    }
    if (res.status === 404) throw new BookingNotFoundError(message, res.status, code);
    throw new BookingPermanentError(message, res.status, code);
  }
}
