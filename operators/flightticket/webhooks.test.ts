// FlightTicket's admission webhooks as functions: the route check against an in-memory route table and
// against the real booking service (up, then stopped), the normaliser, and the declarations.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AdmissionOperation, AdmissionRequest, AdmissionVerdict, AdmissionWebhook } from 'bosun';
import { BookingAuthError, BookingClient, BookingTransientError } from './booking/client.js';
import { startBookingService, type BookingService } from './booking/server.js';
import { ROUTES, type Route } from './booking/types.js';
import { V2_FIELDS_ANNOTATION } from './conversion.js';
import { FlightTicketV2, type FlightTicketV2Object, type FlightTicketV2Spec } from './v2.js';
import {
  CachedRoutes,
  NORMALIZE_WEBHOOK_NAME,
  ROUTE_WEBHOOK_NAME,
  flightTicketWebhooks,
  normalizeTicket,
  validateTicket,
  type RouteSource,
} from './webhooks.js';

const TABLE: Route[] = ROUTES.map(([from, to]) => ({ from, to }));

function ticket(spec: Partial<FlightTicketV2Spec> & { from?: string; to?: string }, metadata: FlightTicketV2Object['metadata'] = {}) {
  const { from = 'ICN', to = 'NRT', ...rest } = spec;
  return {
    apiVersion: 'flights.com/v2',
    kind: 'FlightTicket',
    metadata: { name: 't', namespace: 'ns', ...metadata },
    spec: { route: { from, to }, passengers: [{ name: 'Ada Lovelace' }], cabin: 'economy', ...rest },
  } satisfies FlightTicketV2Object as FlightTicketV2Object;
}

function review(
  object: FlightTicketV2Object | undefined,
  opts: { operation?: AdmissionOperation; oldObject?: FlightTicketV2Object; signal?: AbortSignal } = {},
): AdmissionRequest<FlightTicketV2Object> {
  return {
    uid: 'u1',
    operation: opts.operation ?? (opts.oldObject ? 'UPDATE' : 'CREATE'),
    ...(object ? { object } : {}),
    ...(opts.oldObject ? { oldObject: opts.oldObject } : {}),
    name: 't',
    namespace: 'ns',
    userInfo: { username: 'alice' },
    dryRun: false,
    signal: opts.signal ?? new AbortController().signal,
  };
}

/** A route source over a fixed table that counts its lookups. */
function table(routes: readonly Route[] = TABLE): RouteSource & { calls: number } {
  const source = {
    calls: 0,
    routes: () => {
      source.calls++;
      return Promise.resolve(routes);
    },
  };
  return source;
}
const failing = (err: unknown): RouteSource => ({ routes: () => Promise.reject(err) });

function denied(v: AdmissionVerdict): Extract<AdmissionVerdict, { allowed: false }> {
  assert.equal(v.allowed, false, `expected a denial, got ${JSON.stringify(v)}`);
  return v as Extract<AdmissionVerdict, { allowed: false }>;
}

void describe('validateTicket (the route check)', () => {
  void test('a route the booking service flies is admitted without warnings', async () => {
    assert.deepEqual(await validateTicket(review(ticket({ from: 'ICN', to: 'JFK' })), table()), { allowed: true });
  });

  void test('an unflown destination is refused on spec.route.to, naming the route and the destinations there are', async () => {
    const v = denied(await validateTicket(review(ticket({ from: 'ICN', to: 'XYZ' })), table()));
    assert.equal(v.field, 'spec.route.to');
    assert.equal(v.code, 422);
    assert.equal(
      v.message,
      'spec.route.to (v1: spec.to): the booking service does not fly ICN→XYZ; routes from ICN: JFK, LAX, NRT. Fix: set spec.route.to to one of those',
    );
  });

  void test('an airport nothing flies from is refused on spec.route.from, listing the departure airports', async () => {
    const v = denied(await validateTicket(review(ticket({ from: 'LHR', to: 'ICN' })), table()));
    assert.equal(v.field, 'spec.route.from');
    assert.equal(
      v.message,
      'spec.route.from (v1: spec.from): the booking service flies nothing from LHR; it flies from CJU, GMP, HND, ICN, JFK, LAX, NRT. Fix: set spec.route.from to one of those',
    );
  });

  void test('a lower-case code that got past the normaliser (a v1 client, normaliser down) is refused with the upper-case hint', async () => {
    const v = denied(await validateTicket(review(ticket({ from: 'ICN', to: 'nrt' })), table()));
    assert.match(v.message, /does not fly ICN→nrt \(airport codes are upper case: NRT\)/);
    const w = denied(await validateTicket(review(ticket({ from: 'icn', to: 'NRT' })), table()));
    assert.match(w.message, /flies nothing from icn \(airport codes are upper case: ICN\)/);
  });

  void test('booking service down, refusing the key, or the key unreadable: admitted, with a warning that the route was not checked', async () => {
    for (const [err, why] of [
      [new BookingTransientError('booking service GET /v1/routes failed without a response (ECONNREFUSED 10.0.0.7:8080)'), 'unavailable'],
      [new BookingAuthError('401'), "refused the operator's API key"],
    ] as const) {
      const v = await validateTicket(review(ticket({ from: 'ICN', to: 'XYZ' })), failing(err));
      assert.equal(v.allowed, true);
      assert.equal(v.warnings?.length, 1);
      assert.match(v.warnings![0]!, new RegExp(`^spec.route ICN→XYZ was not checked: the booking service (is )?${why}`));
      assert.match(v.warnings![0]!, /status to Failed \(NoSuchRoute\)/);
      // The user's terminal gets no internal address.
      assert.doesNotMatch(v.warnings![0]!, /10\.0\.0\.7/);
    }
  });

  void test('a booking service that does not answer: admitted with a warning once the lookup deadline passes', async () => {
    let seen: AbortSignal | undefined;
    const hanging: RouteSource = {
      routes: ({ signal } = {}) => {
        seen = signal;
        return new Promise(() => {});
      },
    };
    const v = await validateTicket(review(ticket({ from: 'ICN', to: 'XYZ' })), hanging, { lookupTimeoutMs: 50 });
    assert.equal(v.allowed, true);
    assert.match(v.warnings![0]!, /not checked: the booking service did not answer in time/);
    assert.equal(seen?.aborted, true, 'the source is told to stop');
  });

  void test('the request signal (the API server gave up) ends the lookup too', async () => {
    const gaveUp = new AbortController();
    gaveUp.abort();
    const v = await validateTicket(review(ticket({ to: 'XYZ' }), { signal: gaveUp.signal }), { routes: () => new Promise(() => {}) });
    assert.equal(v.allowed, true);
  });

  void test('an update that keeps the route is admitted without a lookup, even when the route is no longer flown', async () => {
    const source = table();
    const old = ticket({ from: 'ICN', to: 'XYZ' });
    const relabelled = ticket({ from: 'ICN', to: 'XYZ', cabin: 'first' }, { labels: { a: 'b' } });
    assert.deepEqual(await validateTicket(review(relabelled, { oldObject: old }), source), { allowed: true });
    assert.equal(source.calls, 0);
    // Changing the route is checked.
    denied(await validateTicket(review(ticket({ from: 'ICN', to: 'ABC' }), { oldObject: old }), source));
    assert.equal(source.calls, 1);
  });

  void test('a ticket being deleted is admitted without a lookup, so its finalizer can go', async () => {
    const source = table();
    const deleting = ticket({ to: 'XYZ' }, { deletionTimestamp: '2025-01-01T00:00:00Z' });
    assert.deepEqual(await validateTicket(review(deleting, { oldObject: ticket({ to: 'NRT' }) }), source), { allowed: true });
    assert.equal(source.calls, 0);
  });

  void test("the v1 conversion's annotation is refused on a v2 ticket, unless an update leaves it as it was", async () => {
    const annotated = ticket({}, { annotations: { [V2_FIELDS_ANNOTATION]: '{"passengers":[{"name":"A"}],"cabin":"first"}' } });
    const v = denied(await validateTicket(review(annotated), table()));
    assert.equal(v.field, `metadata.annotations[${V2_FIELDS_ANNOTATION}]`);
    assert.match(v.message, /reserved for the v1↔v2 conversion.*remove it and set spec.passengers and spec.cabin/);
    assert.deepEqual(await validateTicket(review(annotated, { oldObject: annotated }), table()), { allowed: true });
  });
});

void describe('CachedRoutes', () => {
  void test('one fetch for concurrent lookups, reused for the TTL, fetched again after it', async () => {
    let now = 0;
    let fetches = 0;
    let release: (r: readonly Route[]) => void = () => {};
    const cached = new CachedRoutes(
      () => {
        fetches++;
        return new Promise((r) => (release = r));
      },
      { ttlMs: 1000, now: () => now },
    );
    const all = Promise.all([cached.routes(), cached.routes(), cached.routes()]);
    release(TABLE);
    for (const r of await all) assert.equal(r, TABLE);
    assert.equal(fetches, 1);
    now = 999;
    assert.equal(await cached.routes(), TABLE);
    assert.equal(fetches, 1);
    now = 1000;
    const again = cached.routes();
    release([]);
    assert.deepEqual(await again, []);
    assert.equal(fetches, 2);
  });

  void test('a failed fetch is remembered for failureTtlMs: an outage costs one wait per interval, not one per admission', async () => {
    let now = 0;
    let fetches = 0;
    const down = new BookingTransientError('down');
    const cached = new CachedRoutes(
      () => {
        fetches++;
        return fetches === 1 ? Promise.reject(down) : Promise.resolve(TABLE);
      },
      { failureTtlMs: 5000, now: () => now },
    );
    await assert.rejects(cached.routes(), (e) => e === down);
    now = 4999;
    await assert.rejects(cached.routes(), (e) => e === down);
    assert.equal(fetches, 1);
    now = 5000;
    assert.equal(await cached.routes(), TABLE);
  });

  void test("one caller's aborted signal does not fail the shared fetch for the others", async () => {
    let release: (r: readonly Route[]) => void = () => {};
    const cached = new CachedRoutes(() => new Promise((r) => (release = r)));
    const impatient = new AbortController();
    const first = cached.routes({ signal: impatient.signal });
    const second = cached.routes();
    impatient.abort();
    await assert.rejects(first, /gave up/);
    release(TABLE);
    assert.equal(await second, TABLE);
  });
});

void describe('the route check against the real booking service', () => {
  const API_KEY = 'ft-webhook-key';
  let dataDir: string;
  let service: BookingService | undefined;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'bosun-ft-webhook-'));
    service = await startBookingService({ dataDir, apiKey: API_KEY });
  });
  after(async () => {
    await service?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  void test('admits a flown route, refuses another, and admits with a warning once the service is stopped', async () => {
    const client = new BookingClient({ baseUrl: service!.url, apiKey: API_KEY, timeoutMs: 1000 });
    // TTL 0: every lookup asks the service, so stopping it is seen by the next one.
    const routes = new CachedRoutes((signal) => client.routes({ signal }), { ttlMs: 0, failureTtlMs: 0 });
    assert.deepEqual(await validateTicket(review(ticket({ from: 'GMP', to: 'HND' })), routes), { allowed: true });
    assert.match(denied(await validateTicket(review(ticket({ from: 'GMP', to: 'NRT' })), routes)).message, /routes from GMP: CJU, HND\./);
    await service!.close();
    service = undefined;
    const v = await validateTicket(review(ticket({ from: 'GMP', to: 'NRT' })), routes);
    assert.equal(v.allowed, true);
    assert.match(v.warnings![0]!, /not checked: the booking service is unavailable/);
  });
});

void describe('normalizeTicket (the mutating webhook)', () => {
  void test('upper-cases and trims airport codes and tidies passenger names, so " lhr" books LHR', () => {
    const messy = ticket({ from: ' icn', to: 'nrt ', passengers: [{ name: '  Ada   Lovelace ' }, { name: 'Jose\u0301\tMari\u0301a' }] });
    const out = normalizeTicket(messy, review(messy));
    assert.deepEqual(out.spec?.route, { from: 'ICN', to: 'NRT' });
    assert.deepEqual(out.spec?.passengers, [{ name: 'Ada Lovelace' }, { name: 'José María' }]);
    assert.deepEqual(FlightTicketV2.validateSpec(out), []);
    // The input is not changed in place: the server diffs the two.
    assert.equal(messy.spec?.route.from, ' icn');
  });

  void test('idempotent: a second run (reinvocation) changes nothing, and a clean ticket comes back as the same object', () => {
    const messy = ticket({ from: 'gmp', to: 'cju', passengers: [{ name: ' Kim  Min-jun ' }] });
    const once = normalizeTicket(messy, review(messy));
    const twice = normalizeTicket(once, review(once));
    assert.deepEqual(twice, once);
    const clean = ticket({});
    assert.equal(normalizeTicket(clean, review(clean)), clean);
  });

  void test('an update normalises only what it changes: values left as stored are not rewritten', () => {
    const stored = ticket({ from: 'icn', to: 'NRT', passengers: [{ name: 'Ada  Lovelace' }] });
    const relabelled = { ...stored, metadata: { ...stored.metadata, labels: { x: 'y' } } };
    assert.equal(normalizeTicket(relabelled, review(relabelled, { oldObject: stored })), relabelled);
    const newDestination = ticket({ from: 'icn', to: 'jfk', passengers: [{ name: 'Ada  Lovelace' }, { name: ' Bo ' }] });
    const out = normalizeTicket(newDestination, review(newDestination, { oldObject: stored }));
    assert.deepEqual(out.spec?.route, { from: 'icn', to: 'JFK' });
    assert.deepEqual(out.spec?.passengers, [{ name: 'Ada  Lovelace' }, { name: 'Bo' }]);
  });

  void test('a ticket being deleted, and shapes the schema will refuse, are left alone without throwing', () => {
    const deleting = ticket({ from: 'icn' }, { deletionTimestamp: '2025-01-01T00:00:00Z' });
    assert.equal(normalizeTicket(deleting, review(deleting)), deleting);
    for (const spec of [{}, { route: 'ICN-NRT' }, { route: { from: 3 } }, { passengers: 'x' }, { passengers: [null, 'a', { name: 7 }] }]) {
      const odd = { ...ticket({}), spec } as unknown as FlightTicketV2Object;
      assert.doesNotThrow(() => normalizeTicket(odd, review(odd)), JSON.stringify(spec));
    }
  });
});

void describe('flightTicketWebhooks', () => {
  const config = { bookingUrl: 'http://booking.invalid:8080', apiKeySecret: { namespace: 'bosun-system', name: 'k' } };

  void test('declares the normaliser and the route check on v2, both failurePolicy Ignore with their reasons', () => {
    const [mutating, validating]: AdmissionWebhook[] = flightTicketWebhooks(config, { routes: table() });
    assert.equal(mutating?.type, 'mutating');
    assert.equal(mutating?.name, NORMALIZE_WEBHOOK_NAME);
    assert.equal(mutating?.path, `/mutate/${NORMALIZE_WEBHOOK_NAME}`);
    assert.equal(validating?.type, 'validating');
    assert.equal(validating?.name, ROUTE_WEBHOOK_NAME);
    for (const w of [mutating!, validating!]) {
      assert.equal(w.resource, FlightTicketV2);
      assert.equal(w.failurePolicy, 'Ignore');
      assert.ok(w.failurePolicyReason.length > 100);
      assert.deepEqual(w.operations, ['CREATE', 'UPDATE']);
    }
    assert.ok(validating!.timeoutSeconds * 1000 > 2000, 'the lookup deadline (2 s) is inside the webhook timeout');
  });

  void test('the declared functions are the tested ones, wired to the route source', async () => {
    const [mutating, validating] = flightTicketWebhooks(config, { routes: table() });
    const messy = ticket({ from: 'icn' });
    assert.equal((await mutating.mutate(messy, review(messy))).spec?.route.from, 'ICN');
    denied(await validating.validate(review(ticket({ to: 'XYZ' }))));
  });

  void test('without a reachable cluster for the API-key Secret, the route check admits with a warning', async () => {
    const [, validating] = flightTicketWebhooks(config, {
      kubeClient: { get: () => Promise.reject(new BookingTransientError('no cluster')) } as never,
    });
    const v = await validating.validate(review(ticket({ to: 'XYZ' })));
    assert.equal(v.allowed, true);
    assert.match(v.warnings![0]!, /not checked/);
  });
});
