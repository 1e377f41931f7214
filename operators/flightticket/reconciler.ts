// The FlightTicket operator in the controller-runtime style. The booking service, not the ticket's
// status, is the record of what was booked: every booking carries an idempotency key derived from
// the ticket's uid, so each reconcile lists the ticket's bookings and converges them (book, change
// seats, cancel extras) whatever a crash, a lost response or a lost status write left behind.
import {
  PermanentError,
  Secret,
  TemporaryError,
  controller,
  generationChanged,
  withFinalizer,
  type ControllerSpec,
  type ReconcileContext,
  type Result,
} from 'bosun';
import { BookingAuthError, BookingClient, BookingNotFoundError, BookingPermanentError, BookingTransientError } from './booking/client.js';
import type { Booking } from './booking/types.js';
import { ApiKeySource, ApiKeyUnavailableError, type FlightTicketConfig } from './config.js';
import { bookingKey, routeKeyPrefix, ticketKeyPrefix } from './keys.js';
import { FlightTicketResource, type FlightTicket } from './resource.js';

/** The finalizer that keeps a deleted ticket until its bookings are cancelled. */
export const FINALIZER = 'flights.com/cancel-booking';

/** Booking-service error codes that mean the ticket's spec cannot be booked: only a spec change helps. */
const SPEC_REASONS: Record<string, string> = { no_such_route: 'NoSuchRoute', invalid_number: 'InvalidNumber' };

/** The booking service refused the API key: the Secret (or the service's key) must change, not the ticket. */
class CredentialsRefusedError extends Error {
  override name = 'CredentialsRefusedError';
}

type Ready = { status: 'True' | 'False'; reason: string; message: string };

/** Shortest and longest wait after a booking call nobody answered. */
const OUTAGE_RETRY_MIN_MS = 500;
const OUTAGE_RETRY_MAX_MS = 30_000;

/**
 * How long a ticket waits after a booking call the service did not answer (connection refused,
 * reset, closed before the response). The controller's per-ticket backoff doubles on every failure
 * and keeps the count until a success, so the refused calls of an outage, failing at once, would
 * leave every ticket some ten doublings deep after a few seconds: its first 503 once the service is
 * back would wait 5 s, the next 10 s, then 20 s. Such a call is retried instead as a timed requeue,
 * which clears that count, after a delay shared by every ticket that grows with the outage itself:
 * as long as it has lasted so far, 0.5 s to 30 s, jittered so the tickets do not retry in step.
 */
export class BookingOutage {
  private since: number | undefined;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  /** The service answered a call (with anything, an error included): the outage, if any, is over. */
  answered(): void {
    this.since = undefined;
  }

  /** Records a call the service did not answer; returns the ms the ticket should wait before it tries again. */
  retryDelayMs(): number {
    const now = this.now();
    this.since ??= now;
    const base = Math.min(OUTAGE_RETRY_MAX_MS, Math.max(OUTAGE_RETRY_MIN_MS, now - this.since));
    return Math.round(base * (0.5 + this.random() * 0.5));
  }
}

/** Whether the service gave no answer at all; a timeout is not counted, as the service may be working on the call. */
function unanswered(err: BookingTransientError): boolean {
  if (err.status !== undefined) return false;
  const cause: unknown = err.cause;
  return !(cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError'));
}

function routeOf(t: { from: string; to: string }): string {
  return `${t.from}→${t.to}`;
}

function describeBooking(b: Booking): string {
  return `booking ${b.id}: ${b.number} seat${b.number === 1 ? '' : 's'} ${routeOf(b)}`;
}

/** Whether the ticket's status already says its current spec is booked: then nothing needs the booking service. */
function isConverged(t: FlightTicket): boolean {
  const s = t.status;
  const spec = t.spec;
  return (
    s?.state === 'Booked' &&
    !!s.bookingId &&
    s.observedGeneration === t.metadata.generation &&
    s.bookedFrom === spec?.from &&
    s.bookedTo === spec?.to &&
    s.bookedNumber === spec?.number
  );
}

/** Whether this generation of the spec already failed for a reason only a spec change fixes. */
function failedForThisSpec(t: FlightTicket): boolean {
  const ready = t.status?.conditions?.find((c) => c.type === 'Ready');
  return (
    t.status?.state === 'Failed' &&
    t.status.observedGeneration === t.metadata.generation &&
    Object.values(SPEC_REASONS).includes(ready?.reason ?? '')
  );
}

/** Builds the FlightTicket controller for a booking service and API-key Secret. */
export function flightTicketController(config: FlightTicketConfig): ControllerSpec {
  const apiKeys = new ApiKeySource(config);
  const outage = new BookingOutage();
  let client: { key: string; client: BookingClient } | undefined;

  async function bookingClient(ctx: ReconcileContext): Promise<BookingClient> {
    const key = await apiKeys.get(ctx.client);
    if (apiKeys.isRefused(key))
      throw new CredentialsRefusedError(`the booking service refused the API key in ${apiKeys.describe()}; put a valid key there`);
    if (client?.key !== key)
      client = { key, client: new BookingClient({ baseUrl: config.bookingUrl, apiKey: key, timeoutMs: config.requestTimeoutMs ?? 5000 }) };
    return client.client;
  }

  async function setReady(ctx: ReconcileContext, t: FlightTicket, fields: Record<string, unknown>, ready: Ready): Promise<boolean> {
    return ctx.updateStatus(FlightTicketResource, t, { fields, conditions: [{ type: 'Ready', ...ready }] });
  }

  /** Books, changes or rebooks so that exactly one active booking matches the spec, then records it; runs with the finalizer on. */
  async function ensureBooked(t: FlightTicket, ctx: ReconcileContext): Promise<void> {
    if (isConverged(t) || failedForThisSpec(t)) return;
    const spec = t.spec!;
    const uid = t.metadata.uid ?? '';
    // Not after Failed: a Failed ticket whose retry fails again would flip between the two forever.
    if (!t.status?.state || t.status.state === 'Booked') {
      const what = t.status?.state
        ? `Changing the booking to ${spec.number} seats ${routeOf(spec)}`
        : `Booking ${spec.number} seats ${routeOf(spec)}`;
      await setReady(ctx, t, { state: 'Pending' }, { status: 'False', reason: 'Booking', message: what });
    }
    const bookings = await bookingClient(ctx);
    const all = await bookings.listByKeyPrefix(ticketKeyPrefix(uid));
    outage.answered();
    const active = all.filter((b) => b.state === 'active');
    const sameRoute = active.filter((b) => b.from === spec.from && b.to === spec.to);
    // Normally at most one; prefer the one the status names, else the newest.
    let keep = sameRoute.find((b) => b.id === t.status?.bookingId) ?? sameRoute.at(-1);
    let event: [string, string] | undefined;
    if (!keep) {
      const prefix = routeKeyPrefix(uid, spec.from, spec.to);
      const key = bookingKey(uid, spec.from, spec.to, all.filter((b) => b.idempotencyKey.startsWith(prefix)).length);
      ctx.assertMayAct('book');
      keep = await bookings.book(key, { from: spec.from, to: spec.to, number: spec.number });
      ctx.log.info({ bookingId: keep.id, idempotencyKey: key }, 'booked');
      event = active.length ? ['Rebooked', `Rebooked as ${describeBooking(keep)}`] : ['Booked', `Booked ${describeBooking(keep)}`];
    } else if (keep.number !== spec.number) {
      ctx.assertMayAct('change booking');
      keep = await bookings.change(keep.id, spec.number);
      ctx.log.info({ bookingId: keep.id, number: keep.number }, 'changed booking');
      event = ['ChangedBooking', `Changed ${describeBooking(keep)}`];
    }
    // The new booking exists before the old one goes, and the status says Booked only after both:
    // a crash in between leaves the status unconverged, so the next run cancels what is left.
    for (const old of active) {
      if (old.id === keep.id) continue;
      await cancel(ctx, bookings, old);
      ctx.log.info({ bookingId: old.id }, 'cancelled replaced booking');
      ctx.events.normal(t, 'CancelledBooking', `Cancelled ${describeBooking(old)}, replaced by ${keep.id}`);
    }
    await setReady(
      ctx,
      t,
      { state: 'Booked', bookingId: keep.id, bookedFrom: keep.from, bookedTo: keep.to, bookedNumber: keep.number },
      { status: 'True', reason: 'Booked', message: describeBooking(keep) },
    );
    if (event) ctx.events.normal(t, event[0], event[1]);
  }

  /** Cancels every active booking of a deleted ticket; the finalizer goes once this returns. */
  async function finalize(t: FlightTicket, ctx: ReconcileContext): Promise<void> {
    // Once only: a failure's condition must not be flipped back on every retry, which would loop on our own writes.
    if (t.status?.state !== 'Cancelling')
      await setReady(
        ctx,
        t,
        { state: 'Cancelling' },
        { status: 'False', reason: 'Cancelling', message: 'Cancelling the bookings of the deleted ticket' },
      );
    const bookings = await bookingClient(ctx);
    const active = await bookings.listByKeyPrefix(ticketKeyPrefix(t.metadata.uid ?? ''), { state: 'active' });
    outage.answered();
    for (const b of active) {
      await cancel(ctx, bookings, b);
      ctx.log.info({ bookingId: b.id }, 'cancelled booking of deleted ticket');
      ctx.events.normal(t, 'CancelledBooking', `Cancelled ${describeBooking(b)}`);
    }
  }

  async function cancel(ctx: ReconcileContext, bookings: BookingClient, b: Booking): Promise<void> {
    ctx.assertMayAct('cancel booking');
    try {
      await bookings.cancel(b.id);
    } catch (err) {
      if (!(err instanceof BookingNotFoundError)) throw err; // gone is as good as cancelled
    }
  }

  /** Sorts a failure into: record and stop (spec problem), record and poll slowly (credentials), or retry with backoff. */
  async function handleFailure(t: FlightTicket, ctx: ReconcileContext, err: unknown): Promise<Result> {
    if (err instanceof BookingTransientError && unanswered(err)) {
      const retryInMs = outage.retryDelayMs();
      ctx.log.warn({ err: err.message, retryInMs }, 'the booking service did not answer; retrying after the outage backoff');
      return { requeueAfterMs: retryInMs };
    }
    if (err instanceof BookingTransientError || err instanceof BookingPermanentError || err instanceof BookingAuthError) outage.answered();
    if (err instanceof BookingTransientError) {
      // 429 says when; other transient failures take the controller's per-ticket exponential backoff.
      if (err.retryAfterSeconds !== undefined) throw new TemporaryError(err.message, err.retryAfterSeconds * 1000, { cause: err });
      throw err;
    }
    if (err instanceof BookingPermanentError && (err.code === 'idempotency_key_reuse' || err.code === 'booking_cancelled')) {
      // A race with a booking that changed under us (a request of a killed process landing late,
      // a booking cancelled elsewhere): the next run lists the bookings again and converges.
      throw err;
    }
    const failed = !t.metadata.deletionTimestamp;
    if (err instanceof BookingPermanentError) {
      const reason =
        SPEC_REASONS[err.code] ?? `Booking${err.code.replace(/(^|_)([a-z])/g, (_m, _s: string, c: string) => c.toUpperCase())}`;
      const message =
        err.code === 'no_such_route'
          ? `The booking service flies no route ${routeOf(t.spec!)}; change spec.from or spec.to (${err.message})`
          : `The booking service refused ${t.spec?.number ?? '?'} seats ${t.spec ? routeOf(t.spec) : ''}: ${err.message}`;
      if (await setReady(ctx, t, failed ? { state: 'Failed' } : {}, { status: 'False', reason, message }))
        ctx.events.warning(t, reason, message);
      throw new PermanentError(reason, message, { cause: err });
    }
    if (err instanceof BookingAuthError || err instanceof CredentialsRefusedError || err instanceof ApiKeyUnavailableError) {
      if (err instanceof BookingAuthError && client) apiKeys.markRefused(client.key);
      const reason = err instanceof ApiKeyUnavailableError ? 'ApiKeyUnavailable' : 'BookingUnauthorized';
      const message =
        err instanceof ApiKeyUnavailableError
          ? err.message
          : `The booking service refused the API key in ${apiKeys.describe()}; put a valid key there`;
      if (await setReady(ctx, t, failed ? { state: 'Failed' } : {}, { status: 'False', reason, message }))
        ctx.events.warning(t, reason, message);
      // Not the ticket's fault and not fixed by retrying soon: poll slowly so a fixed Secret heals every ticket.
      ctx.log.warn({ reason, retryInMs: config.credentialsRetryMs ?? 30_000 }, message);
      return { requeueAfterMs: config.credentialsRetryMs ?? 30_000 };
    }
    throw err;
  }

  // Spec changes and deletions only: its own status and finalizer writes must not run it again at
  // once, which would call the booking service before the Retry-After a 429 asked for.
  return controller('flightticket')
    .for(FlightTicketResource, { predicates: [generationChanged()] })
    .reads(Secret)
    .reconcile(async (req, ctx) => {
      const t = ctx.cache.get<FlightTicket>(FlightTicketResource, req.namespace, req.name);
      if (!t) return;
      ctx.log.info('Reconciling FlightTicket');
      try {
        // The finalizer goes on before the first booking exists, so no booking can outlive its ticket.
        return await withFinalizer(ctx, FlightTicketResource, t, FINALIZER, {
          apply: (live) => ensureBooked(live, ctx),
          cleanup: (deleted) => finalize(deleted, ctx),
        });
      } catch (err) {
        return handleFailure(t, ctx, err);
      }
    });
}
