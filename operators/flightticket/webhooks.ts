// FlightTicket's admission webhooks, on v2 (v1 requests reach them converted: matchPolicy Equivalent).
// One normalises what clients write (airport codes, passenger names) so `lhr` books LHR; one refuses a
// route the booking service does not fly, which only the booking service knows and CEL cannot ask.
// The decisions are plain functions of the request and a route source, so they are tested without a server.
import {
  KubeClient,
  allow,
  deny,
  mutatingWebhook,
  validatingWebhook,
  type AdmissionRequest,
  type AdmissionVerdict,
  type MutatingWebhook,
  type ValidatingWebhook,
} from 'bosun';
import { BookingAuthError, BookingClient, BookingTransientError } from './booking/client.js';
import type { Route } from './booking/types.js';
import { ApiKeySource, ApiKeyUnavailableError, type FlightTicketConfig } from './config.js';
import { V2_FIELDS_ANNOTATION } from './conversion.js';
import { FlightTicketV2, type FlightTicketV2Object } from './v2.js';

/** Name of the validating webhook that refuses routes the booking service does not fly. */
export const ROUTE_WEBHOOK_NAME = 'route.flighttickets.flights.com';
/** Name of the mutating webhook that normalises airport codes and passenger names. */
export const NORMALIZE_WEBHOOK_NAME = 'normalize.flighttickets.flights.com';

/** Where the route check gets the booking service's route table from; `signal` ends a lookup that is too late. */
export interface RouteSource {
  routes(opts?: { signal?: AbortSignal }): Promise<readonly Route[]>;
}

/** Options of validateTicket(). */
export interface ValidateTicketOptions {
  /**
   * How long the route lookup may take before the ticket is admitted unchecked (default 2 s): well inside
   * the webhook's 5 s timeout, so the answer (with its warning) reaches the API server before it gives up.
   */
  lookupTimeoutMs?: number;
}

const DEFAULT_LOOKUP_TIMEOUT_MS = 2000;

/** The route lookup did not finish within its deadline. */
class RouteLookupTimeout extends Error {
  override name = 'RouteLookupTimeout';
}

function sameRoute(a: FlightTicketV2Object | undefined, b: FlightTicketV2Object | undefined): boolean {
  return a?.spec?.route?.from === b?.spec?.route?.from && a?.spec?.route?.to === b?.spec?.route?.to;
}

/** Why the route could not be checked, in words fit for the user's terminal: no addresses, no keys. */
function whyUnchecked(err: unknown): string {
  if (err instanceof RouteLookupTimeout) return 'the booking service did not answer in time';
  if (err instanceof BookingAuthError) return "the booking service refused the operator's API key";
  if (err instanceof ApiKeyUnavailableError) return 'the operator cannot read its booking API key';
  if (err instanceof BookingTransientError) return 'the booking service is unavailable';
  return 'the route lookup failed';
}

async function lookup(routes: RouteSource, signal: AbortSignal, timeoutMs: number): Promise<readonly Route[]> {
  const expired = new AbortController();
  // A timer, not AbortSignal.timeout (whose timer does not keep the process alive): the deadline must fire
  // even when nothing else is pending, and the race, not only the signal, bounds the wait, since a source may
  // spend time the signal does not reach (reading the API-key Secret).
  const timer = setTimeout(() => expired.abort(), timeoutMs);
  const deadline = AbortSignal.any([signal, expired.signal]);
  let onAbort = () => {};
  const late = new Promise<never>((_, reject) => {
    onAbort = () => reject(new RouteLookupTimeout(`route lookup took longer than ${timeoutMs} ms`));
    if (deadline.aborted) onAbort();
    else deadline.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([routes.routes({ signal: deadline }), late]);
  } finally {
    clearTimeout(timer);
    deadline.removeEventListener('abort', onAbort);
  }
}

/**
 * The validating webhook's decision. Refuses (422, naming the field and the routes there are) a ticket whose
 * route the booking service does not fly, and a v2 ticket carrying the v1 conversion's annotation. Checks only
 * what this request changes: an update that keeps the route, or a ticket being deleted (its finalizer must be
 * able to go), is admitted without asking, so tickets stored before this check, or whose route was withdrawn
 * since, stay editable. When the booking service cannot answer, the ticket is admitted with a warning: the
 * operator refuses an unflown route itself (state Failed, reason NoSuchRoute), so the check is early feedback,
 * and writes of FlightTickets do not depend on the booking service being up.
 */
export async function validateTicket(
  request: AdmissionRequest<FlightTicketV2Object>,
  routes: RouteSource,
  opts: ValidateTicketOptions = {},
): Promise<AdmissionVerdict> {
  const ticket = request.object;
  const old = request.operation === 'UPDATE' ? request.oldObject : undefined;
  if (!ticket?.spec || ticket.metadata.deletionTimestamp) return allow();

  const reserved = ticket.metadata.annotations?.[V2_FIELDS_ANNOTATION];
  if (reserved !== undefined && reserved !== old?.metadata.annotations?.[V2_FIELDS_ANNOTATION]) {
    const field = `metadata.annotations[${V2_FIELDS_ANNOTATION}]`;
    return deny(
      `${field}: is reserved for the v1↔v2 conversion and has no place on a v2 ticket; remove it and set spec.passengers and spec.cabin instead` +
        ` (a v1 client: leave it as the conversion wrote it, or remove it)`,
      { code: 422, field },
    );
  }

  // Schema validation ran before this webhook; a spec without a route here is not one to judge.
  if (!ticket.spec.route || (old && sameRoute(old, ticket))) return allow();
  const { from, to } = ticket.spec.route;
  let table: readonly Route[];
  try {
    table = await lookup(routes, request.signal, opts.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS);
  } catch (err) {
    return allow(
      `spec.route ${from}→${to} was not checked: ${whyUnchecked(err)}. The ticket is admitted; if the route is not flown, ` +
        `the operator sets its status to Failed (NoSuchRoute) with the routes there are`,
    );
  }
  if (table.some((r) => r.from === from && r.to === to)) return allow();

  const list = (codes: Iterable<string>) => [...new Set(codes)].sort().join(', ');
  // Webhook down (failurePolicy Ignore) means a v1 client's lower case reaches this check unnormalised.
  const upper = (code: string) => code.trim().toUpperCase();
  const hint = (code: string, known: (c: string) => boolean) =>
    code !== upper(code) && known(upper(code)) ? ` (airport codes are upper case: ${upper(code)})` : '';
  const destinations = table.filter((r) => r.from === from).map((r) => r.to);
  if (destinations.length === 0) {
    return deny(
      `spec.route.from (v1: spec.from): the booking service flies nothing from ${from}${hint(from, (c) => table.some((r) => r.from === c))}; ` +
        `it flies from ${list(table.map((r) => r.from))}. Fix: set spec.route.from to one of those`,
      { code: 422, field: 'spec.route.from' },
    );
  }
  return deny(
    `spec.route.to (v1: spec.to): the booking service does not fly ${from}→${to}${hint(to, (c) => destinations.includes(c))}; ` +
      `routes from ${from}: ${list(destinations)}. Fix: set spec.route.to to one of those`,
    { code: 422, field: 'spec.route.to' },
  );
}

/** An airport code as the booking service knows it: no blanks around it, ASCII letters upper case. */
export function normalizeAirportCode(code: string): string {
  return code.trim().replace(/[a-z]/g, (c) => c.toUpperCase());
}

/** A passenger name as it goes on the ticket: Unicode NFC (one spelling for é), no blanks around it, single spaces inside. */
export function normalizePassengerName(name: string): string {
  return name.normalize('NFC').trim().replace(/\s+/g, ' ');
}

/**
 * The mutating webhook's change: normalises the airport codes and passenger names this request writes, so
 * ` lhr` books LHR and "Ada  Lovelace " is stored as "Ada Lovelace". Values an update leaves as they were are
 * not rewritten (a label change must not turn into a spec change and a rebooking), nor is a ticket being
 * deleted. Idempotent; runs before schema validation, so it touches only what has the expected shape.
 */
export function normalizeTicket(ticket: FlightTicketV2Object, request: AdmissionRequest<FlightTicketV2Object>): FlightTicketV2Object {
  const spec = ticket.spec as Partial<NonNullable<FlightTicketV2Object['spec']>> | undefined;
  if (!spec || typeof spec !== 'object' || ticket.metadata.deletionTimestamp) return ticket;
  const old = request.operation === 'UPDATE' ? request.oldObject?.spec : undefined;
  let changed = false;
  const fix = <T>(value: T, before: unknown, normalize: (s: string) => string): T => {
    if (typeof value !== 'string' || value === before) return value;
    const out = normalize(value);
    if (out !== value) changed = true;
    return out as T;
  };
  const route =
    spec.route && typeof spec.route === 'object'
      ? {
          ...spec.route,
          from: fix(spec.route.from, old?.route?.from, normalizeAirportCode),
          to: fix(spec.route.to, old?.route?.to, normalizeAirportCode),
        }
      : spec.route;
  const passengers = Array.isArray(spec.passengers)
    ? spec.passengers.map((p, i) =>
        p && typeof p === 'object' ? { ...p, name: fix(p.name, old?.passengers?.[i]?.name, normalizePassengerName) } : p,
      )
    : spec.passengers;
  if (!changed) return ticket;
  return { ...ticket, spec: { ...spec, route, passengers } as FlightTicketV2Object['spec'] };
}

/** Options of CachedRoutes. */
export interface CachedRoutesOptions {
  /** How long a fetched route table is used before it is fetched again (default 60 s). */
  ttlMs?: number;
  /** How long a failed fetch is remembered, so an outage costs one wait per interval, not one per admission (default 5 s). */
  failureTtlMs?: number;
  now?: () => number;
}

/**
 * The booking service's route table, fetched once for every admission that needs it at the same moment and
 * reused for a minute: routes change rarely, and admission must not cost a booking-service call per write.
 */
export class CachedRoutes implements RouteSource {
  private table: { routes: readonly Route[]; at: number } | undefined;
  private failure: { err: unknown; at: number } | undefined;
  private fetching: Promise<readonly Route[]> | undefined;

  constructor(
    private readonly fetchRoutes: (signal: AbortSignal) => Promise<readonly Route[]>,
    private readonly opts: CachedRoutesOptions = {},
  ) {}

  /** The route table: cached, or fetched (one call shared by concurrent callers); rejects while a recent fetch failed. */
  async routes(opts: { signal?: AbortSignal } = {}): Promise<readonly Route[]> {
    const now = (this.opts.now ?? Date.now)();
    if (this.table && now - this.table.at < (this.opts.ttlMs ?? 60_000)) return this.table.routes;
    if (this.failure && now - this.failure.at < (this.opts.failureTtlMs ?? 5_000)) throw this.failure.err;
    // The shared call is not tied to the first caller's signal: one impatient request must not fail the others.
    this.fetching ??= this.fetchRoutes(AbortSignal.timeout(DEFAULT_LOOKUP_TIMEOUT_MS))
      .then(
        (routes) => {
          this.table = { routes, at: (this.opts.now ?? Date.now)() };
          this.failure = undefined;
          return routes;
        },
        (err: unknown) => {
          this.failure = { err, at: (this.opts.now ?? Date.now)() };
          throw err;
        },
      )
      .finally(() => (this.fetching = undefined));
    const fetching = this.fetching;
    if (!opts.signal) return fetching;
    const signal = opts.signal;
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new RouteLookupTimeout('the caller gave up waiting for the route table'));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      fetching.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }
}

/** Options of flightTicketWebhooks(). */
export interface FlightTicketWebhooksOptions {
  /** The client the API-key Secret is read with (default: the default kubeconfig chain, built at the first lookup). */
  kubeClient?: KubeClient;
  /** The route table to check against, instead of the booking service (tests). */
  routes?: RouteSource;
}

/**
 * FlightTicket's admission webhooks for a booking service and API-key Secret (the controller's configuration):
 * the mutating normaliser and the validating route check, both on v2. A function for `config` is called at the
 * first route lookup, so a project module can declare the webhooks before the environment is read.
 */
export function flightTicketWebhooks(
  config: FlightTicketConfig | (() => FlightTicketConfig),
  opts: FlightTicketWebhooksOptions = {},
): [MutatingWebhook<typeof FlightTicketV2>, ValidatingWebhook<typeof FlightTicketV2>] {
  let routes = opts.routes;
  const source = (): RouteSource => {
    if (routes) return routes;
    const resolved = typeof config === 'function' ? config() : config;
    const apiKeys = new ApiKeySource(resolved);
    let kube = opts.kubeClient;
    routes = new CachedRoutes(async (signal) => {
      kube ??= KubeClient.fromConfig();
      const apiKey = await apiKeys.get(kube);
      const timeoutMs = Math.min(resolved.requestTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS, DEFAULT_LOOKUP_TIMEOUT_MS);
      return new BookingClient({ baseUrl: resolved.bookingUrl, apiKey, timeoutMs }).routes({ signal });
    });
    return routes;
  };
  return [
    mutatingWebhook({
      name: NORMALIZE_WEBHOOK_NAME,
      resource: FlightTicketV2,
      failurePolicy: 'Ignore',
      failurePolicyReason:
        'Skipping it stores nothing wrong: the v2 schema refuses what it would have fixed (airport codes must be ' +
        '^[A-Z]{3}$, names without blanks around them) with a message naming the field, so an outage of the operator ' +
        'costs v2 clients the convenience, not correctness, and never blocks FlightTicket writes; v1 clients get ' +
        'what v1 always stored, and the operator reports a route written in lower case as NoSuchRoute.',
      timeoutSeconds: 2,
      mutate: (ticket, request) => normalizeTicket(ticket, request),
    }),
    validatingWebhook({
      name: ROUTE_WEBHOOK_NAME,
      resource: FlightTicketV2,
      failurePolicy: 'Ignore',
      failurePolicyReason:
        'The route check is early feedback, not the last line: the operator refuses an unflown route itself ' +
        '(state Failed, reason NoSuchRoute, a Warning Event, not retried until the spec changes). With Fail, an ' +
        'operator outage would refuse every FlightTicket create and update, while with Ignore tickets are admitted ' +
        'and judged by the operator once it is back. The webhook answers the same way when the booking service is ' +
        'down: admitted with a warning saying the route was not checked.',
      timeoutSeconds: 5,
      validate: (request) => validateTicket(request, source()),
    }),
  ];
}
