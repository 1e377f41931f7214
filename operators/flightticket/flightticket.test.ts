// The FlightTicket operator against a real API server and a real booking service (PGlite).
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import { eventually, startTestEnv, type TestEnv } from 'bosun/envtest';
import { BookingClient } from './booking/client.js';
import { listBookings } from './booking/server.js';
import type { FlightTicketConfig } from './config.js';
import { bookingKey, ticketKeyPrefix } from './keys.js';
import { FINALIZER } from './reconciler.js';
import type { FlightTicket } from './resource.js';
import {
  getTicket,
  isBooked,
  secretYaml,
  startCountedBookingService,
  startOperator,
  ticketYaml,
  type CountedBookingService,
  type RunningOperator,
} from './testing.js';

const API_KEY = 'ft-test-key-5b7d1e';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('FlightTicket operator', () => {
  let env: TestEnv;
  let ns: string;
  let booking: CountedBookingService;
  let bc: BookingClient;
  let op: RunningOperator;
  let config: FlightTicketConfig;

  const bookingsOf = async (t: FlightTicket) =>
    (await listBookings(booking.service)).filter((b) => b.idempotencyKey.startsWith(ticketKeyPrefix(t.metadata.uid ?? '')));
  const booked = (name: string, inNs = ns) =>
    eventually(
      `${inNs}/${name} Booked`,
      async () => {
        const t = await getTicket(env, inNs, name);
        return isBooked(t) ? t : undefined;
      },
      30_000,
      100,
    );
  const readyReason = (t: FlightTicket | undefined) => t?.status?.conditions?.find((c) => c.type === 'Ready');
  const warnings = async (inNs: string, name: string) =>
    env.kubectlOk([
      'get',
      'events',
      '-n',
      inNs,
      '--field-selector',
      `involvedObject.name=${name},type=Warning`,
      '-o',
      'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}',
    ]);

  before(async () => {
    [env, booking] = await Promise.all([
      startTestEnv({ crds: ['config/crd/flighttickets.flights.com.yaml'] }),
      startCountedBookingService(API_KEY),
    ]);
    bc = new BookingClient({ baseUrl: booking.service.url, apiKey: API_KEY });
    ns = await env.namespace('ft');
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], secretYaml('booking-api', API_KEY));
    config = {
      bookingUrl: booking.service.url,
      apiKeySecret: { namespace: ns, name: 'booking-api' },
      credentialsRetryMs: 2000,
      apiKeyTtlMs: 500,
    };
    op = startOperator(env, ns, config);
  });
  after(async () => {
    await op?.stop();
    await env?.cleanup();
    await booking?.close();
  });

  test('a ticket is booked once, under a key derived from its uid, with a finalizer and a Booked status', async () => {
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], ticketYaml('seoul-tokyo', { from: 'ICN', to: 'NRT', number: 2 }));
    const t = await booked('seoul-tokyo');
    const bs = await bookingsOf(t);
    assert.equal(bs.length, 1);
    assert.equal(bs[0]!.idempotencyKey, bookingKey(t.metadata.uid!, 'ICN', 'NRT', 0));
    assert.equal(bs[0]!.state, 'active');
    assert.equal(bs[0]!.number, 2);
    assert.equal(t.status?.bookingId, bs[0]!.id);
    assert.equal(readyReason(t)?.status, 'True');
    assert.deepEqual(t.metadata.finalizers, [FINALIZER]);
    const events = await env.kubectlOk([
      'get',
      'events',
      '-n',
      ns,
      '--field-selector',
      'involvedObject.name=seoul-tokyo',
      '-o',
      'jsonpath={.items[*].reason}',
    ]);
    assert.match(events, /Booked/);
  });

  test('changing only number changes the same booking (PATCH)', async () => {
    const before = (await getTicket(env, ns, 'seoul-tokyo'))!;
    await env.kubectlOk(['patch', '-n', ns, 'flightticket', 'seoul-tokyo', '--type=merge', '-p', '{"spec":{"number":5}}']);
    const t = await booked('seoul-tokyo');
    assert.equal(t.status?.bookingId, before.status?.bookingId);
    const bs = await bookingsOf(t);
    assert.equal(bs.length, 1);
    assert.equal(bs[0]!.number, 5);
    assert.equal(bs[0]!.state, 'active');
  });

  test('changing from/to rebooks under a new key and cancels the old booking; going back books a fresh key', async () => {
    const first = (await getTicket(env, ns, 'seoul-tokyo'))!;
    await env.kubectlOk(['patch', '-n', ns, 'flightticket', 'seoul-tokyo', '--type=merge', '-p', '{"spec":{"to":"JFK"}}']);
    const t = await booked('seoul-tokyo');
    assert.notEqual(t.status?.bookingId, first.status?.bookingId);
    let bs = await bookingsOf(t);
    assert.deepEqual(
      bs.map((b) => [b.to, b.state]),
      [
        ['NRT', 'cancelled'],
        ['JFK', 'active'],
      ],
    );
    assert.equal(bs[1]!.number, 5);
    // Back to NRT: the first key is bound to the cancelled booking, so a new one is needed.
    await env.kubectlOk(['patch', '-n', ns, 'flightticket', 'seoul-tokyo', '--type=merge', '-p', '{"spec":{"to":"NRT"}}']);
    const back = await booked('seoul-tokyo');
    bs = await bookingsOf(back);
    assert.deepEqual(
      bs.map((b) => [b.to, b.state]),
      [
        ['NRT', 'cancelled'],
        ['JFK', 'cancelled'],
        ['NRT', 'active'],
      ],
    );
    assert.equal(bs[2]!.idempotencyKey, bookingKey(back.metadata.uid!, 'ICN', 'NRT', 1));
    assert.equal(back.status?.bookingId, bs[2]!.id);
  });

  test('deleting a ticket cancels its booking through the finalizer', async () => {
    const t = (await getTicket(env, ns, 'seoul-tokyo'))!;
    await env.kubectlOk(['delete', '-n', ns, 'flightticket', 'seoul-tokyo', '--timeout=30s']);
    assert.equal(await getTicket(env, ns, 'seoul-tokyo'), undefined);
    const bs = await bookingsOf(t);
    assert.ok(bs.length >= 1);
    assert.ok(
      bs.every((b) => b.state === 'cancelled'),
      'no booking outlives its ticket',
    );
  });

  test('lost responses (dropped after commit) and 503s never book twice', async () => {
    booking.service.setFaults({ dropAfterCommitRate: 0.4, errorRate: 0.3, seed: 7 });
    try {
      const docs = Array.from({ length: 8 }, (_, i) => ticketYaml(`lossy-${i}`, { from: 'GMP', to: 'CJU', number: 1 + (i % 3) })).join(
        '---\n',
      );
      await env.kubectlOk(['apply', '-n', ns, '-f', '-'], docs);
      for (let i = 0; i < 8; i++) {
        const t = await booked(`lossy-${i}`);
        const bs = await bookingsOf(t);
        assert.equal(bs.length, 1, `lossy-${i} has exactly one booking`);
        assert.equal(bs[0]!.state, 'active');
        assert.equal(bs[0]!.id, t.status?.bookingId);
      }
    } finally {
      booking.service.setFaults({});
    }
  });

  test('429 Retry-After is honoured: no retry before the server said', async () => {
    booking.service.setFaults({ rateLimitRate: 1, retryAfterSeconds: 2 });
    try {
      const n0 = booking.requests();
      await env.kubectlOk(['apply', '-n', ns, '-f', '-'], ticketYaml('limited', { from: 'ICN', to: 'LAX', number: 1 }));
      await eventually('a retry scheduled after 2000 ms', async () =>
        op.logs.some((l) => l.includes('"name":"limited"') && l.includes('"retryInMs":2000')) ? true : undefined,
      );
      await sleep(1500);
      assert.ok(booking.requests() - n0 <= 2, `at most one request per Retry-After window (${booking.requests() - n0} in 1.5 s)`);
    } finally {
      booking.service.setFaults({});
    }
    await booked('limited');
  });

  test('an unknown route is Ready=False NoSuchRoute with a Warning Event, not retried; fixing the spec books', async () => {
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], ticketYaml('nowhere', { from: 'ICN', to: 'CJU', number: 1 }));
    const t = await eventually('nowhere Failed', async () => {
      const x = await getTicket(env, ns, 'nowhere');
      return x?.status?.state === 'Failed' ? x : undefined;
    });
    const ready = readyReason(t);
    assert.equal(ready?.status, 'False');
    assert.equal(ready?.reason, 'NoSuchRoute');
    assert.match(ready?.message ?? '', /no route ICN→CJU; change spec\.from or spec\.to/);
    await eventually('a NoSuchRoute Warning', async () => ((await warnings(ns, 'nowhere')).includes('NoSuchRoute') ? true : undefined));
    const n0 = booking.requests();
    const r0 = op.logs.filter((l) => l.includes('"msg":"Reconciling FlightTicket"') && l.includes('"name":"nowhere"')).length;
    await sleep(3000);
    assert.equal(booking.requests() - n0, 0, 'no booking-service request while nothing changes');
    assert.ok(
      op.logs.filter((l) => l.includes('"msg":"Reconciling FlightTicket"') && l.includes('"name":"nowhere"')).length - r0 <= 1,
      'no reconcile loop',
    );
    assert.equal(
      (await listBookings(booking.service)).filter((b) => b.idempotencyKey.startsWith(ticketKeyPrefix(t.metadata.uid!))).length,
      0,
    );
    await env.kubectlOk(['patch', '-n', ns, 'flightticket', 'nowhere', '--type=merge', '-p', '{"spec":{"from":"GMP"}}']);
    const fixed = await booked('nowhere');
    assert.equal(readyReason(fixed)?.status, 'True');
  });

  test('a wrong API key is Ready=False BookingUnauthorized with a Warning Event, polled slowly, and heals when the Secret is fixed', async () => {
    const ns2 = await env.namespace('ft-badkey');
    await env.kubectlOk(['apply', '-n', ns2, '-f', '-'], secretYaml('booking-api', 'not-the-key'));
    const op2 = startOperator(env, ns2, { ...config, apiKeySecret: { namespace: ns2, name: 'booking-api' }, credentialsRetryMs: 4000 });
    try {
      await env.kubectlOk(
        ['apply', '-n', ns2, '-f', '-'],
        [1, 2, 3].map((i) => ticketYaml(`t${i}`, { from: 'ICN', to: 'NRT', number: i })).join('---\n'),
      );
      const t = await eventually('t1 Failed', async () => {
        const x = await getTicket(env, ns2, 't1');
        return readyReason(x)?.reason === 'BookingUnauthorized' ? x : undefined;
      });
      assert.equal(t.status?.state, 'Failed');
      assert.match(readyReason(t)?.message ?? '', new RegExp(`refused the API key in Secret ${ns2}/booking-api \\(key apiKey\\)`));
      await eventually('a BookingUnauthorized Warning', async () =>
        (await warnings(ns2, 't1')).includes('BookingUnauthorized') ? true : undefined,
      );
      const n0 = booking.requests();
      await sleep(3000);
      assert.ok(booking.requests() - n0 <= 1, `no retry storm: ${booking.requests() - n0} booking requests in 3 s for 3 tickets`);
      // The key must never reach logs or Events.
      const allEvents = await env.kubectlOk(['get', 'events', '-n', ns2, '-o', 'json']);
      assert.ok(
        !allEvents.includes('not-the-key') && !op2.logs.some((l) => l.includes('not-the-key')),
        'the API key is in no Event and no log line',
      );
      await env.kubectlOk(['apply', '-n', ns2, '-f', '-'], secretYaml('booking-api', API_KEY));
      for (const i of [1, 2, 3]) await booked(`t${i}`, ns2);
      assert.ok(!op2.logs.some((l) => l.includes(API_KEY)) && !op.logs.some((l) => l.includes(API_KEY)), 'the valid key is in no log line');
    } finally {
      await op2.stop();
    }
  });

  test('crash windows: a booking made before the status was written is adopted; a leftover old-route booking is cancelled', async () => {
    // A namespace the running operator does not watch, so the "crashed" operator's work can be staged.
    const ns3 = await env.namespace('ft-crash');
    await env.kubectlOk(['apply', '-n', ns3, '-f', '-'], secretYaml('booking-api', API_KEY));
    await env.kubectlOk(
      ['apply', '-n', ns3, '-f', '-'],
      [ticketYaml('adopt', { from: 'ICN', to: 'JFK', number: 3 }), ticketYaml('rebooked', { from: 'HND', to: 'GMP', number: 2 })].join(
        '---\n',
      ),
    );
    const adopt = (await getTicket(env, ns3, 'adopt'))!;
    const rebooked = (await getTicket(env, ns3, 'rebooked'))!;
    // The killed operator booked `adopt` (status never written), and for `rebooked` had booked the
    // old route, then the new one after a from/to change, and died before cancelling the old one.
    const earlier = await bc.book(bookingKey(adopt.metadata.uid!, 'ICN', 'JFK', 0), { from: 'ICN', to: 'JFK', number: 3 });
    const old = await bc.book(bookingKey(rebooked.metadata.uid!, 'GMP', 'HND', 0), { from: 'GMP', to: 'HND', number: 2 });
    const current = await bc.book(bookingKey(rebooked.metadata.uid!, 'HND', 'GMP', 0), { from: 'HND', to: 'GMP', number: 2 });
    const op3 = startOperator(env, ns3, { ...config, apiKeySecret: { namespace: ns3, name: 'booking-api' } });
    try {
      const a = await booked('adopt', ns3);
      assert.equal(a.status?.bookingId, earlier.id);
      assert.deepEqual(
        (await bookingsOf(a)).map((b) => [b.id, b.state]),
        [[earlier.id, 'active']],
      );
      const r = await booked('rebooked', ns3);
      assert.equal(r.status?.bookingId, current.id);
      assert.deepEqual(
        (await bookingsOf(r)).map((b) => [b.id, b.state]),
        [
          [old.id, 'cancelled'],
          [current.id, 'active'],
        ],
      );
    } finally {
      await op3.stop();
    }
  });

  test('a replica that may no longer act (its term ran out, as after a freeze) makes no booking call; once it may, it books', async () => {
    const ns2 = await env.namespace('ft-fence');
    await env.kubectlOk(['apply', '-n', ns2, '-f', '-'], secretYaml('booking-api', API_KEY));
    const fenced = startOperator(env, ns2, { ...config, apiKeySecret: { namespace: ns2, name: 'booking-api' } });
    // The gate a leader's client gets; here it refuses only the outside actions, so the status writes still show the attempt.
    let mayAct = false;
    fenced.manager.client.setWriteGate((t) =>
      mayAct || !['book', 'change booking', 'cancel booking'].includes(t.verb)
        ? undefined
        : new Error(`refused to ${t.verb}: the term ran out`),
    );
    try {
      await env.kubectlOk(['apply', '-n', ns2, '-f', '-'], ticketYaml('fenced', { from: 'ICN', to: 'NRT', number: 1 }));
      await eventually(
        'the booking refused by the fence',
        async () => fenced.logs.some((l) => l.includes('refused to book: the term ran out')) || undefined,
        30_000,
        100,
      );
      const t = (await getTicket(env, ns2, 'fenced'))!;
      assert.deepEqual(await bookingsOf(t), [], 'no booking made while the replica may not act');
      mayAct = true;
      const done = await booked('fenced', ns2);
      assert.equal((await bookingsOf(done)).length, 1);
    } finally {
      await fenced.stop();
    }
  });

  test('restarting the operator over booked tickets makes no writes and no booking requests', async () => {
    await booked('limited');
    await op.stop();
    await sleep(500);
    const snapshot = async () =>
      (JSON.parse(await env.kubectlOk(['get', 'flighttickets,events', '-n', ns, '-o', 'json'])) as { items: FlightTicket[] }).items
        .map((o) => `${o.kind}/${o.metadata.name}@${o.metadata.resourceVersion}`)
        .sort();
    const s1 = await snapshot();
    const n0 = booking.requests();
    op = startOperator(env, ns, config);
    await eventually('the restarted operator to reconcile', async () =>
      op.logs.filter((l) => l.includes('"msg":"Reconciling FlightTicket"')).length >= 5 ? true : undefined,
    );
    await sleep(1500);
    assert.deepEqual(await snapshot(), s1);
    assert.equal(booking.requests() - n0, 0);
  });

  test('bad input is refused by the API server naming the field', async () => {
    const cases: [string, string, RegExp][] = [
      [
        'number 11',
        ticketYaml('bad1', { from: 'ICN', to: 'NRT', number: 11 }),
        /spec\.number: Invalid value: 11: spec\.number in body should be less than or equal to 10/,
      ],
      [
        'number 0',
        ticketYaml('bad2', { from: 'ICN', to: 'NRT', number: 0 }),
        /spec\.number: Invalid value: 0: spec\.number in body should be greater than or equal to 1/,
      ],
      [
        'from == to',
        ticketYaml('bad3', { from: 'ICN', to: 'ICN', number: 1 }),
        /spec: Invalid value: .*spec\.from and spec\.to must differ/,
      ],
      ['missing to', ticketYaml('bad4', { from: 'ICN', number: 1 }), /spec\.to: Required value/],
      ['missing number', ticketYaml('bad5', { from: 'ICN', to: 'NRT' }), /spec\.number: Required value/],
    ];
    for (const [what, yaml, message] of cases) {
      const r = await env.kubectl(['apply', '-n', ns, '-f', '-'], yaml);
      assert.notEqual(r.code, 0, `${what} is refused`);
      assert.match(r.stderr, message, what);
    }
  });
});
