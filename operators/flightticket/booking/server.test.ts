import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BookingAuthError, BookingClient, BookingNotFoundError, BookingPermanentError, BookingTransientError } from './client.js';
import { FaultInjector, InvalidFaultConfigError } from './faults.js';
import { bookingServiceCommand, resolveApiKey } from './main.js';
import { listBookings, startBookingService, type BookingService } from './server.js';
import { DataDirLockedError } from './store.js';
import { ROUTES } from './types.js';

const API_KEY = 'test-key';

// One service for the whole file: a fresh PGlite data directory costs seconds of initdb,
// so tests share it and stay independent by using their own idempotency keys.
void describe('booking service', () => {
  let dataDir: string;
  let service: BookingService;
  let client: BookingClient;

  const raw = (path: string, init: RequestInit = {}) =>
    fetch(`${service.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', ...init.headers },
    });

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'bosun-booking-'));
    service = await startBookingService({ dataDir, apiKey: API_KEY });
    client = new BookingClient({ baseUrl: service.url, apiKey: API_KEY, timeoutMs: 5000 });
  });

  after(async () => {
    await service.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  void test('healthz answers without auth', async () => {
    const res = await fetch(`${service.url}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  void test('GET /v1/routes lists the route table, with the API key only; other methods are 405', async () => {
    const expected = ROUTES.map(([from, to]) => ({ from, to }));
    assert.deepEqual(await client.routes(), expected);
    const res = await raw('/v1/routes');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { items: expected });
    assert.equal((await fetch(`${service.url}/v1/routes`)).status, 401);
    await assert.rejects(new BookingClient({ baseUrl: service.url, apiKey: 'nope' }).routes(), BookingAuthError);
    const post = await raw('/v1/routes', { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
    assert.equal(((await post.json()) as { error: string }).error, 'method_not_allowed');
  });

  void test('routes() given an aborted signal gives up at once, saying the caller did, not the timeout', async () => {
    service.setFaults({ latencyMs: 2000 });
    try {
      const caller = new AbortController();
      const started = performance.now();
      const call = client.routes({ signal: caller.signal });
      caller.abort();
      await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof BookingTransientError);
        assert.match(err.message, /GET \/v1\/routes abandoned: the caller gave up/);
        return true;
      });
      // The latency fault holds the response 2 s; well under that means the signal, not the service, ended it.
      assert.ok(performance.now() - started < 1500);
    } finally {
      service.setFaults({});
    }
  });

  void test('book creates an active booking; the same key again returns it with 200', async () => {
    const first = await raw('/v1/bookings', {
      method: 'POST',
      headers: { 'idempotency-key': 'seq-1' },
      body: JSON.stringify({ from: 'ICN', to: 'NRT', number: 2 }),
    });
    assert.equal(first.status, 201);
    const booking = (await first.json()) as { id: string; state: string; number: number; idempotencyKey: string };
    assert.equal(booking.state, 'active');
    assert.equal(booking.number, 2);
    assert.equal(booking.idempotencyKey, 'seq-1');

    const again = await raw('/v1/bookings', {
      method: 'POST',
      headers: { 'idempotency-key': 'seq-1' },
      body: JSON.stringify({ from: 'ICN', to: 'NRT', number: 2 }),
    });
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(await again.json(), booking);

    const viaClient = await client.book('seq-1', { from: 'ICN', to: 'NRT', number: 2 });
    assert.equal(viaClient.id, booking.id);
    assert.equal((await listBookings(service)).filter((b) => b.idempotencyKey === 'seq-1').length, 1);
  });

  void test('20 concurrent duplicates book exactly once', async () => {
    const body = JSON.stringify({ from: 'GMP', to: 'CJU', number: 4 });
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => raw('/v1/bookings', { method: 'POST', headers: { 'idempotency-key': 'concurrent-1' }, body })),
    );
    const statuses = responses.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, ...Array<number>(18).fill(200), 201].sort());
    const ids = new Set(await Promise.all(responses.map(async (r) => ((await r.json()) as { id: string }).id)));
    assert.equal(ids.size, 1);
    const rows = (await listBookings(service)).filter((b) => b.idempotencyKey === 'concurrent-1');
    assert.equal(rows.length, 1);
  });

  void test('the same key with a different body is a 409 permanent error', async () => {
    await client.book('reuse-1', { from: 'ICN', to: 'JFK', number: 1 });
    await assert.rejects(client.book('reuse-1', { from: 'ICN', to: 'JFK', number: 3 }), (err: unknown) => {
      assert.ok(err instanceof BookingPermanentError);
      assert.equal(err.status, 409);
      assert.equal(err.code, 'idempotency_key_reuse');
      assert.match(err.message, /reuse-1/);
      return true;
    });
    await assert.rejects(client.book('reuse-1', { from: 'JFK', to: 'ICN', number: 1 }), { code: 'idempotency_key_reuse' });
  });

  void test('unknown route and out-of-range number are 422 permanent errors that book nothing', async () => {
    await assert.rejects(client.book('route-1', { from: 'ICN', to: 'XXX', number: 1 }), (err: unknown) => {
      assert.ok(err instanceof BookingPermanentError);
      assert.equal(err.status, 422);
      assert.equal(err.code, 'no_such_route');
      return true;
    });
    for (const number of [0, 11, 2.5]) {
      await assert.rejects(client.book(`number-${number}`, { from: 'ICN', to: 'NRT', number }), (err: unknown) => {
        assert.ok(err instanceof BookingPermanentError);
        assert.equal(err.status, 422);
        assert.equal(err.code, 'invalid_number');
        return true;
      });
    }
    assert.equal(await client.findByKey('route-1'), undefined);
    assert.equal(await client.findByKey('number-11'), undefined);
  });

  void test('a POST without Idempotency-Key is refused', async () => {
    const res = await raw('/v1/bookings', { method: 'POST', body: JSON.stringify({ from: 'ICN', to: 'NRT', number: 1 }) });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, 'missing_idempotency_key');
  });

  void test('a missing or wrong API key is 401', async () => {
    const res = await fetch(`${service.url}/v1/bookings`);
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: string; message: string };
    assert.equal(body.error, 'unauthorized');
    assert.match(body.message, /Authorization/);

    const wrong = new BookingClient({ baseUrl: service.url, apiKey: 'nope' });
    await assert.rejects(wrong.book('auth-1', { from: 'ICN', to: 'NRT', number: 1 }), BookingAuthError);
    await assert.rejects(wrong.setFaults({ errorRate: 1 }), BookingAuthError);
    assert.equal(await client.findByKey('auth-1'), undefined);
  });

  void test('get, findByKey and list by state', async () => {
    const booking = await client.book('get-1', { from: 'NRT', to: 'ICN', number: 3 });
    assert.deepEqual(await client.get(booking.id), booking);
    assert.deepEqual(await client.findByKey('get-1'), booking);
    assert.equal(await client.get('bk_missing'), undefined);
    assert.equal(await client.findByKey('never-used'), undefined);

    const active = await client.list({ state: 'active' });
    assert.ok(active.some((b) => b.id === booking.id));
    assert.ok(active.every((b) => b.state === 'active'));
    const res = await raw('/v1/bookings?state=bogus');
    assert.equal(res.status, 400);
  });

  void test('keyPrefix lists every booking whose key starts with it, literally (no wildcards)', async () => {
    const a = await client.book('pfx_1.a', { from: 'ICN', to: 'NRT', number: 1 });
    const b = await client.book('pfx_1.b', { from: 'ICN', to: 'JFK', number: 1 });
    await client.book('pfxX1.c', { from: 'ICN', to: 'LAX', number: 1 }); // '_' must not match 'X'
    await client.cancel(a.id);
    assert.deepEqual(
      (await client.listByKeyPrefix('pfx_1.')).map((x) => x.id),
      [a.id, b.id],
    );
    assert.deepEqual(
      (await client.listByKeyPrefix('pfx_1.', { state: 'active' })).map((x) => x.id),
      [b.id],
    );
    assert.deepEqual(await client.listByKeyPrefix('pfx%'), []);
    assert.equal((await raw('/v1/bookings?keyPrefix=')).status, 400);
  });

  void test('change sets the seat count; replaying the original POST still matches and returns the current booking', async () => {
    const booking = await client.book('change-1', { from: 'CJU', to: 'GMP', number: 2 });
    const changed = await client.change(booking.id, 5);
    assert.equal(changed.number, 5);
    assert.equal((await client.change(booking.id, 5)).number, 5);
    const replay = await client.book('change-1', { from: 'CJU', to: 'GMP', number: 2 });
    assert.equal(replay.id, booking.id);
    assert.equal(replay.number, 5);
    await assert.rejects(client.change(booking.id, 11), { code: 'invalid_number' });
    await assert.rejects(client.change('bk_missing', 3), BookingNotFoundError);
  });

  void test('cancel is idempotent and a cancelled booking cannot be changed', async () => {
    const booking = await client.book('cancel-1', { from: 'ICN', to: 'LAX', number: 1 });
    const cancelled = await client.cancel(booking.id);
    assert.equal(cancelled.state, 'cancelled');
    assert.ok(cancelled.cancelledAt);
    const again = await client.cancel(booking.id);
    assert.deepEqual(again, cancelled);
    await assert.rejects(client.change(booking.id, 2), (err: unknown) => {
      assert.ok(err instanceof BookingPermanentError);
      assert.equal(err.status, 409);
      assert.equal(err.code, 'booking_cancelled');
      return true;
    });
    await assert.rejects(client.cancel('bk_missing'), BookingNotFoundError);
    // Replaying the booking's key returns the cancelled booking rather than booking anew.
    assert.equal((await client.book('cancel-1', { from: 'ICN', to: 'LAX', number: 1 })).state, 'cancelled');
  });

  void test('errorRate 1 answers 503 before anything happens; admin endpoint stays reachable', async () => {
    await client.setFaults({ errorRate: 1 });
    try {
      await assert.rejects(client.book('fault-503', { from: 'ICN', to: 'NRT', number: 1 }), (err: unknown) => {
        assert.ok(err instanceof BookingTransientError);
        assert.equal(err.status, 503);
        return true;
      });
      assert.deepEqual(service.faults(), { errorRate: 1 });
    } finally {
      await client.setFaults({});
    }
    assert.equal(await client.findByKey('fault-503'), undefined);
  });

  void test('rateLimitRate 1 answers 429 with Retry-After', async () => {
    service.setFaults({ rateLimitRate: 1, retryAfterSeconds: 7 });
    try {
      const res = await raw('/v1/bookings');
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '7');
      await assert.rejects(client.book('fault-429', { from: 'ICN', to: 'NRT', number: 1 }), (err: unknown) => {
        assert.ok(err instanceof BookingTransientError);
        assert.equal(err.status, 429);
        assert.equal(err.retryAfterSeconds, 7);
        return true;
      });
    } finally {
      service.setFaults({});
    }
    assert.equal(await client.findByKey('fault-429'), undefined);
  });

  void test('a dropped connection surfaces as BookingTransientError and books nothing', async () => {
    service.setFaults({ dropRate: 1 });
    try {
      await assert.rejects(client.book('fault-drop', { from: 'ICN', to: 'NRT', number: 1 }), (err: unknown) => {
        assert.ok(err instanceof BookingTransientError);
        assert.equal(err.status, undefined);
        return true;
      });
    } finally {
      service.setFaults({});
    }
    assert.equal(await client.findByKey('fault-drop'), undefined);
  });

  void test('a response lost after commit is recovered by retrying with the same key', async () => {
    service.setFaults({ dropAfterCommitRate: 1 });
    try {
      await assert.rejects(client.book('fault-lost', { from: 'ICN', to: 'JFK', number: 2 }), BookingTransientError);
    } finally {
      service.setFaults({});
    }
    // The booking exists although the client never heard about it.
    const [stored] = (await listBookings(service)).filter((b) => b.idempotencyKey === 'fault-lost');
    assert.ok(stored);
    const retried = await client.book('fault-lost', { from: 'ICN', to: 'JFK', number: 2 });
    assert.equal(retried.id, stored.id);
    assert.equal((await listBookings(service)).filter((b) => b.idempotencyKey === 'fault-lost').length, 1);
  });

  void test('a slow response is a BookingTransientError timeout', async () => {
    service.setFaults({ latencyMs: 400 });
    try {
      const impatient = new BookingClient({ baseUrl: service.url, apiKey: API_KEY, timeoutMs: 100 });
      await assert.rejects(impatient.findByKey('whatever'), (err: unknown) => {
        assert.ok(err instanceof BookingTransientError);
        assert.match(err.message, /timed out after 100ms/);
        return true;
      });
    } finally {
      service.setFaults({});
    }
  });

  void test('GET /admin/bookings lists every booking while every /v1 call fails, and takes no latency', async () => {
    const made = await client.book('admin-list-1', { from: 'ICN', to: 'NRT', number: 2 });
    await client.setFaults({ errorRate: 1, latencyMs: 3_000 });
    try {
      const t0 = performance.now();
      const all = await client.allBookings();
      assert.ok(performance.now() - t0 < 2_000, 'answered without the injected latency');
      assert.ok(all.some((b) => b.id === made.id && b.idempotencyKey === 'admin-list-1'));
    } finally {
      await client.setFaults({});
    }
  });

  void test('invalid fault config via the admin endpoint is a 400', async () => {
    const res = await raw('/admin/faults', { method: 'PUT', body: JSON.stringify({ errorRate: 2 }) });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { message: string }).message, /errorRate/);
    assert.deepEqual(service.faults(), {});
  });

  void test('the data directory is locked while the service runs', async () => {
    await assert.rejects(listBookings(dataDir), DataDirLockedError);
  });

  void test('bookings survive a restart on the same data directory', async () => {
    const booking = await client.book('persist-1', { from: 'GMP', to: 'HND', number: 6 });
    await client.cancel((await client.book('persist-2', { from: 'HND', to: 'GMP', number: 1 })).id);
    const before = await listBookings(service);
    await service.close();

    const offline = await listBookings(dataDir);
    assert.deepEqual(offline, before);

    service = await startBookingService({ dataDir, apiKey: API_KEY });
    client = new BookingClient({ baseUrl: service.url, apiKey: API_KEY });
    assert.deepEqual(await client.get(booking.id), booking);
    assert.equal((await client.findByKey('persist-2'))?.state, 'cancelled');
    const replay = await client.book('persist-1', { from: 'GMP', to: 'HND', number: 6 });
    assert.equal(replay.id, booking.id);
    assert.deepEqual(await listBookings(service), before);
  });
});

void describe('fault injector', () => {
  void test('a seed makes the fault sequence repeatable', () => {
    const roll = () => {
      const f = new FaultInjector({ errorRate: 0.3, dropAfterCommitRate: 0.5, seed: 42 });
      return Array.from({ length: 50 }, () => `${f.before().kind}/${f.dropAfterCommit()}`);
    };
    const a = roll();
    assert.deepEqual(a, roll());
    assert.ok(a.some((s) => s.startsWith('error')) && a.some((s) => s.startsWith('none')));
  });

  void test('rates outside [0, 1] and unknown fields are rejected', () => {
    assert.throws(() => new FaultInjector({ dropRate: -0.1 }), InvalidFaultConfigError);
    assert.throws(() => new FaultInjector({ typo: 1 } as never), /unknown fault config field "typo"/);
  });
});

void describe('booking-service command', () => {
  void test('is named booking-service and every flag has a description', () => {
    const cmd = bookingServiceCommand();
    assert.equal(cmd.name(), 'booking-service');
    const flags = cmd.options.map((o) => o.long);
    for (const flag of [
      '--port',
      '--host',
      '--data-dir',
      '--api-key',
      '--api-key-file',
      '--error-rate',
      '--latency-ms',
      '--rate-limit-rate',
      '--drop-rate',
    ]) {
      assert.ok(flags.includes(flag), `missing ${flag}`);
    }
    for (const o of cmd.options) assert.ok(o.description, `${o.long} has no description`);
  });

  void test('resolves the API key from flag, file (trimmed), then environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bosun-booking-key-'));
    try {
      const file = join(dir, 'key');
      await writeFile(file, 'from-file\n');
      assert.equal(await resolveApiKey({ apiKey: 'from-flag', apiKeyFile: file }, {}), 'from-flag');
      assert.equal(await resolveApiKey({ apiKeyFile: file }, { BOOKING_API_KEY: 'from-env' }), 'from-file');
      assert.equal(await resolveApiKey({}, { BOOKING_API_KEY: 'from-env' }), 'from-env');
      await assert.rejects(resolveApiKey({}, {}), /BOOKING_API_KEY/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
