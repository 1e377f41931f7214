// Wire types shared by the booking service and its client. Kept free of server dependencies
// (PGlite, node:http) so the operator can import the client without pulling in a database.

/** Lifecycle of a booking: active until cancelled; a cancelled booking never becomes active again. */
export type BookingState = 'active' | 'cancelled';

/** The body of `POST /v1/bookings`: a route and a seat count. */
export interface BookingRequest {
  /** IATA code of the departure airport, e.g. `ICN`. */
  from: string;
  /** IATA code of the arrival airport, e.g. `NRT`. */
  to: string;
  /** Seats to book, an integer in 1..10. */
  number: number;
}

/** A booking as the API returns it. */
export interface Booking {
  /** Service-assigned id, e.g. `bk_3f2a…`. */
  id: string;
  /** The `Idempotency-Key` the booking was created with; the operator's handle to find it again. */
  idempotencyKey: string;
  from: string;
  to: string;
  /** Current seat count (changes with PATCH). */
  number: number;
  state: BookingState;
  /** ISO 8601 timestamps. */
  createdAt: string;
  updatedAt: string;
  cancelledAt?: string;
}

/** The body of every non-2xx JSON response. */
export interface ApiErrorBody {
  /** Machine-readable code, one of {@link ErrorCode}. */
  error: ErrorCode;
  /** Human-readable message naming the field and the fix. */
  message: string;
}

/** Machine-readable error codes the service returns. */
export type ErrorCode =
  | 'unauthorized'
  | 'invalid_request'
  | 'missing_idempotency_key'
  | 'idempotency_key_reuse'
  | 'no_such_route'
  | 'invalid_number'
  | 'not_found'
  | 'booking_cancelled'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'rate_limited'
  | 'service_unavailable'
  | 'internal';

/** Fault injection settings; every rate is a probability in [0, 1], absent means 0. */
export interface FaultConfig {
  /** Fraction of requests answered 503 before they have any effect. */
  errorRate?: number;
  /** Milliseconds added to every request before it is handled. */
  latencyMs?: number;
  /** Fraction of requests answered 429 with `Retry-After` before they have any effect. */
  rateLimitRate?: number;
  /** Seconds announced in `Retry-After` on injected 429s (default 1). */
  retryAfterSeconds?: number;
  /** Fraction of requests whose socket is destroyed before they have any effect. */
  dropRate?: number;
  /** Fraction of requests whose socket is destroyed after the change committed: the lost-response case. */
  dropAfterCommitRate?: number;
  /** Seed for the fault dice, so a test sees the same sequence of faults every run. */
  seed?: number;
}

/** One airport pair the service flies, as `GET /v1/routes` lists it. */
export interface Route {
  /** IATA code of the departure airport. */
  from: string;
  /** IATA code of the arrival airport. */
  to: string;
}

/** The airport pairs the service flies; any other pair is a permanent `no_such_route` error. */
export const ROUTES: readonly (readonly [from: string, to: string])[] = [
  ['ICN', 'NRT'],
  ['NRT', 'ICN'],
  ['ICN', 'JFK'],
  ['JFK', 'ICN'],
  ['GMP', 'CJU'],
  ['CJU', 'GMP'],
  ['GMP', 'HND'],
  ['HND', 'GMP'],
  ['ICN', 'LAX'],
  ['LAX', 'ICN'],
];

/** Smallest seat count a booking may hold. */
export const MIN_SEATS = 1;
/** Largest seat count a booking may hold (matches the FlightTicket CRD's spec.number maximum). */
export const MAX_SEATS = 10;

/** Whether the service flies from `from` to `to`. */
export function isKnownRoute(from: string, to: string): boolean {
  return ROUTES.some(([f, t]) => f === from && t === to);
}
