// Idempotency keys, derived from the ticket so that the booking service itself remembers which
// bookings a ticket made: a lost response, a lost status write or a killed operator never books twice,
// and every booking of a deleted ticket can be found and cancelled by listing its key prefix.
import { createHash } from 'node:crypto';

/** The prefix every booking key of one ticket starts with: the ticket's uid never repeats, even for a re-created name. */
export function ticketKeyPrefix(uid: string): string {
  return `ft.${uid}.`;
}

/**
 * The prefix of a ticket's bookings for one route. A key stays bound to its booking after
 * cancellation, so booking the same route again (after A→B→A) needs a fresh key: the suffix.
 */
export function routeKeyPrefix(uid: string, from: string, to: string): string {
  const route = createHash('sha256')
    .update(JSON.stringify([from, to]))
    .digest('hex')
    .slice(0, 12);
  return `${ticketKeyPrefix(uid)}${route}.`;
}

/**
 * The key for the next booking of a route: numbered by how many bookings of that route the
 * ticket already has (all cancelled when we book again). Deterministic, so a retry after a lost
 * response, or another operator process after a crash, sends the same key and gets the same booking.
 */
export function bookingKey(uid: string, from: string, to: string, previousOfRoute: number): string {
  return `${routeKeyPrefix(uid, from, to)}${previousOfRoute}`;
}
