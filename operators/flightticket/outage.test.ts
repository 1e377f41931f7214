// After the booking service was unreachable, a ticket's retries must not stay as slow as the outage
// made them: the calls nobody answered say nothing about how the service behaves once it is back.
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { eventually, startTestEnv, type TestEnv } from 'bosun/envtest';
import { startBookingService, type BookingService } from './booking/server.js';
import { BookingOutage } from './reconciler.js';
import { getTicket, isBooked, lineSink, secretYaml, startOperator, ticketYaml, type RunningOperator } from './testing.js';

const API_KEY = 'ft-outage-key-3e1f';
/** Long enough for a ticket to fail some ten times on refused connections (5 ms doubling: 5.1 s after 10). */
const OUTAGE_MS = 4_000;

describe('BookingOutage', () => {
  test('the wait grows with the outage, 0.5 s to 30 s, jittered down to half, and starts over once the service answers', () => {
    let now = 1_000_000;
    let roll = 1;
    const o = new BookingOutage(
      () => now,
      () => roll,
    );
    // random() < 1, so 1 stands for the top of the jitter range: the whole base.
    roll = 0.999_999;
    assert.equal(o.retryDelayMs(), 500);
    now += 4_000;
    assert.equal(o.retryDelayMs(), 4_000);
    now += 60_000;
    assert.equal(o.retryDelayMs(), 30_000);
    roll = 0;
    assert.equal(o.retryDelayMs(), 15_000);
    o.answered();
    roll = 0.999_999;
    now += 10_000;
    assert.equal(o.retryDelayMs(), 500, 'a new outage starts from the shortest wait');
  });
});

describe('FlightTicket operator after a booking-service outage', () => {
  let env: TestEnv;
  let ns: string;
  let dataDir: string;
  let service: BookingService | undefined;
  let op: RunningOperator;
  const lines: string[] = [];
  const start = (port = 0) => startBookingService({ dataDir, apiKey: API_KEY, port, logger: pino({ level: 'debug' }, lineSink(lines)) });
  const answered = () => lines.filter((l) => l.includes('"msg":"booking service request"') && l.includes('"path":"/v1/')).length;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'bosun-ft-outage-'));
    [env, service] = await Promise.all([startTestEnv({ crds: ['config/crd/flighttickets.flights.com.yaml'] }), start()]);
    ns = await env.namespace('ft-outage');
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], secretYaml('booking-api', API_KEY));
    op = startOperator(env, ns, { bookingUrl: service.url, apiKeySecret: { namespace: ns, name: 'booking-api' } });
  });
  after(async () => {
    await op?.stop();
    await env?.cleanup();
    await service?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('a 503 after the outage is retried at the first backoff step, not at the step the refused connections reached', async () => {
    const port = service!.port;
    await service!.close();
    service = undefined;
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], ticketYaml('after-outage', { from: 'ICN', to: 'NRT', number: 1 }));
    // The outage is the fault injected, not a wait for a condition.
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    // Back, answering 503 until the first call it answers, then healthy.
    service = await start(port);
    service.setFaults({ errorRate: 1 });
    const before = answered();
    await eventually('the first call answered after the outage', async () => (answered() > before ? true : undefined), 60_000, 5);
    service.setFaults({});
    const healthyAt = performance.now();
    await eventually('the ticket Booked', async () => (isBooked(await getTicket(env, ns, 'after-outage')) ? true : undefined), 60_000, 100);
    const ms = performance.now() - healthyAt;
    // Booking takes two calls and two status writes, well under a second here; before the fix the
    // 503 waited the outage's next doubling step (5 ms · 2^10 ≥ 5 s).
    assert.ok(ms < 3_000, `Booked ${ms.toFixed(0)} ms after the service was healthy again; want < 3000`);
  });
});
