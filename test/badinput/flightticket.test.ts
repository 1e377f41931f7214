// FlightTickets the CRD accepts but the booking service cannot serve (a route it does not fly), and
// operator configuration that is wrong (a missing API-key Secret, a key the service refuses): the
// ticket says so with the field or Secret to fix, a Warning Event, no booking, and no request storm.
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import type { KubeObject } from 'bosun';
import { eventually, startTestEnv, type TestEnv } from 'bosun/envtest';
import { listBookings } from '../../operators/flightticket/booking/server.js';
import { ROUTES } from '../../operators/flightticket/booking/types.js';
import { ticketKeyPrefix } from '../../operators/flightticket/keys.js';
import type { FlightTicket } from '../../operators/flightticket/resource.js';
import {
  getTicket,
  isBooked,
  secretYaml,
  startCountedBookingService,
  startOperator,
  ticketYaml,
  type CountedBookingService,
  type RunningOperator,
} from '../../operators/flightticket/testing.js';
import { recordCase } from './lib/cli.js';

const API_KEY = 'badinput-key-7f3a';
type EventObject = KubeObject & { reason?: string; type?: string; message?: string; involvedObject?: { name?: string } };
const COMMAND = 'node --import tsx --test test/badinput/flightticket.test.ts';

describe('FlightTickets the booking service cannot serve, and wrong operator configuration', () => {
  let env: TestEnv;
  let booking: CountedBookingService;
  const ops: RunningOperator[] = [];

  const ready = (t: FlightTicket | undefined) => t?.status?.conditions?.find((c) => c.type === 'Ready');
  const warning = (ns: string, name: string, reason: string) =>
    eventually(
      `a ${reason} Warning Event on ${name}`,
      async () => {
        const r = await env.kubectlOk(['get', 'events', '-n', ns, '-o', 'json']);
        return (JSON.parse(r) as { items: EventObject[] }).items.find(
          (e) => e.type === 'Warning' && e.reason === reason && e.involvedObject?.name === name,
        );
      },
      10_000,
    );
  const bookingsOf = async (t: FlightTicket) =>
    (await listBookings(booking.service)).filter((b) => b.idempotencyKey.startsWith(ticketKeyPrefix(t.metadata.uid ?? '')));
  /** The ticket once its Ready condition has this reason. */
  const failedWith = (ns: string, name: string, reason: string) =>
    eventually(
      `${name} Ready=False ${reason}`,
      async () => {
        const t = await getTicket(env, ns, name);
        const r = ready(t);
        return r?.status === 'False' && r.reason === reason ? { t: t!, r } : undefined;
      },
      20_000,
    );
  /** Booking-service requests made in `ms` while nothing changes. */
  const requestsDuring = async (ms: number) => {
    const r0 = booking.requests();
    await new Promise((r) => setTimeout(r, ms));
    return booking.requests() - r0;
  };

  before(async () => {
    [env, booking] = await Promise.all([
      startTestEnv({ crds: ['config/crd/flighttickets.flights.com.yaml'] }),
      startCountedBookingService(API_KEY),
    ]);
  });
  after(async () => {
    await Promise.all(ops.map((o) => o.stop()));
    await env?.cleanup();
    await booking?.close();
  });

  test('a route the booking service does not fly: Failed, NoSuchRoute naming spec.from/spec.to and the routes flown, no booking, no retries; a known route then books', async () => {
    const ns = await env.namespace('badinput-ft-route');
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], secretYaml('booking-api', API_KEY));
    ops.push(startOperator(env, ns, { bookingUrl: booking.service.url, apiKeySecret: { namespace: ns, name: 'booking-api' } }));
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], ticketYaml('to-nowhere', { from: 'ICN', to: 'XYZ', number: 2 }));
    const { t, r } = await failedWith(ns, 'to-nowhere', 'NoSuchRoute');
    const event = await warning(ns, 'to-nowhere', 'NoSuchRoute');
    recordCase({
      id: 'flightticket: unknown route',
      input: '{"spec":{"from":"ICN","to":"XYZ","number":2}}',
      message: r.message,
      names: 'spec.from, spec.to (and the routes flown)',
      fix: 'change spec.from or spec.to',
      parent: `state Failed, Ready=False NoSuchRoute; Warning Event NoSuchRoute`,
      command: COMMAND,
    });
    const flown = ROUTES.map(([f, to]) => `${f}-${to}`).join(', ');
    assert.equal(
      r.message,
      `The booking service flies no route ICN→XYZ; change spec.from or spec.to (booking service POST /v1/bookings: 422 no_such_route: no flights from ICN to XYZ; routes flown: ${flown})`,
    );
    assert.equal(event.message, r.message);
    assert.equal(t.status?.state, 'Failed');
    assert.deepEqual(await bookingsOf(t), [], 'no booking was made');
    assert.equal(await requestsDuring(3000), 0, 'a ticket that failed for its spec is not retried until the spec changes');

    await env.kubectlOk(['patch', '-n', ns, 'flightticket', 'to-nowhere', '--type=merge', '-p', '{"spec":{"to":"NRT"}}']);
    const fixed = await eventually(
      'booked after the fix',
      async () => {
        const x = await getTicket(env, ns, 'to-nowhere');
        return isBooked(x) ? x : undefined;
      },
      20_000,
    );
    assert.equal((await bookingsOf(fixed)).filter((b) => b.state === 'active').length, 1);
  });

  test('the API-key Secret does not exist: ApiKeyUnavailable naming the Secret and the fix, polled slowly', async () => {
    const ns = await env.namespace('badinput-ft-nosecret');
    ops.push(startOperator(env, ns, { bookingUrl: booking.service.url, apiKeySecret: { namespace: ns, name: 'no-such-secret' } }));
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], ticketYaml('no-key', { from: 'ICN', to: 'NRT', number: 1 }));
    const { t, r } = await failedWith(ns, 'no-key', 'ApiKeyUnavailable');
    await warning(ns, 'no-key', 'ApiKeyUnavailable');
    recordCase({
      id: 'flightticket: API-key Secret missing',
      input: `FlightTicket operator configured with Secret ${ns}/no-such-secret, which does not exist`,
      message: r.message,
      names: 'the Secret and its key',
      fix: 'create it or grant get on it',
      parent: 'Ready=False ApiKeyUnavailable; Warning Event ApiKeyUnavailable',
      command: COMMAND,
    });
    assert.equal(
      r.message,
      `cannot read Secret ${ns}/no-such-secret (key apiKey): it does not exist; create it or grant the operator get on it`,
    );
    assert.deepEqual(await bookingsOf(t), []);
    assert.equal(await requestsDuring(2000), 0, 'no booking request without a key');
  });

  test('an API key the booking service refuses: BookingUnauthorized naming the Secret, no booking, no request storm', async () => {
    const ns = await env.namespace('badinput-ft-badkey');
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], secretYaml('booking-api', 'wrong-key'));
    ops.push(startOperator(env, ns, { bookingUrl: booking.service.url, apiKeySecret: { namespace: ns, name: 'booking-api' } }));
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], ticketYaml('bad-key', { from: 'ICN', to: 'NRT', number: 1 }));
    const { t, r } = await failedWith(ns, 'bad-key', 'BookingUnauthorized');
    await warning(ns, 'bad-key', 'BookingUnauthorized');
    recordCase({
      id: 'flightticket: API key refused',
      input: 'the Secret holds a key the booking service refuses',
      message: r.message,
      names: 'the Secret and its key',
      fix: 'put a valid key there',
      parent: 'Ready=False BookingUnauthorized; Warning Event BookingUnauthorized',
      command: COMMAND,
    });
    assert.equal(r.message, `The booking service refused the API key in Secret ${ns}/booking-api (key apiKey); put a valid key there`);
    assert.deepEqual(await bookingsOf(t), []);
    assert.ok((await requestsDuring(3000)) <= 1, 'the refused key is not tried again at once');
  });
});
