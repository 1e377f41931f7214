import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../client/client.js';
import { ApiError } from '../client/errors.js';
import { FakeClock, settle } from '../queue/clock.js';
import { LeaderElectionConfigError, LeaderElector, microTime } from './lease.js';
import type { Lease } from '../client/resources.js';

function offlineClient(): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'http://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return KubeClient.fromKubeConfig(kc);
}

void test('microTime has microsecond precision, as Lease times require', () => {
  assert.equal(microTime(Date.UTC(2026, 10, 22, 1, 2, 3, 45)), '2026-11-22T01:02:03.045000Z');
});

void test('options that cannot work together are refused with a named error', () => {
  const c = offlineClient();
  const base = { namespace: 'x', name: 'y', identity: 'z', onStartedLeading: () => {}, onStoppedLeading: () => {} };
  assert.throws(() => new LeaderElector(c, { ...base, leaseDurationMs: 5_000, renewDeadlineMs: 5_000 }), LeaderElectionConfigError);
  assert.throws(() => new LeaderElector(c, { ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }), /retryPeriodMs/);
  assert.throws(() => new LeaderElector(c, { ...base, identity: '' }), /identity/);
  assert.throws(() => new LeaderElector(c, { ...base, name: '' }), /Lease namespace and name/);
  assert.ok(new LeaderElector(c, base), 'defaults 15 s / 10 s / 2 s are valid');
  c.close();
});

void test('an unreachable API server never leads and run resolves on abort', async () => {
  const c = offlineClient();
  let started = false;
  const el = new LeaderElector(c, {
    namespace: 'x',
    name: 'y',
    identity: 'z',
    leaseDurationMs: 2_000,
    renewDeadlineMs: 1_500,
    retryPeriodMs: 100,
    onStartedLeading: () => (started = true),
    onStoppedLeading: () => {},
  });
  const ac = new AbortController();
  const run = el.run(ac.signal);
  await new Promise((r) => setTimeout(r, 300));
  ac.abort();
  assert.equal(await run, 'stopped');
  assert.equal(started, false);
  assert.equal(el.isLeader(), false);
  c.close();
});

/** An in-memory Lease API with resourceVersion checks; `mode` makes every call hang (ignoring its signal) or fail. */
class FakeLeaseApi {
  lease: Lease | undefined;
  mode: 'ok' | 'hang' | 'fail' = 'ok';
  gets = 0;
  private rv = 0;

  private gate<T>(fn: () => T): Promise<T> {
    if (this.mode === 'hang') return new Promise<T>(() => {});
    if (this.mode === 'fail') return Promise.reject(new ApiError({ verb: 'get', kind: 'Lease' }, 503, { message: 'unavailable' }));
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private stamp(obj: Lease): Lease {
    this.lease = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } };
    return structuredClone(this.lease);
  }

  /** Puts a lease held by `holder` in place, as another replica's write would. */
  holdBy(holder: string, renewTime: string): void {
    this.stamp({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { namespace: 'x', name: 'y' },
      spec: { holderIdentity: holder, leaseDurationSeconds: 15, renewTime, acquireTime: renewTime, leaseTransitions: 0 },
    });
  }

  get(_t: unknown, _ns: string, name: string): Promise<Lease> {
    this.gets++;
    return this.gate(() => {
      if (!this.lease) throw new ApiError({ verb: 'get', kind: 'Lease', name }, 404, { reason: 'NotFound' });
      return structuredClone(this.lease);
    });
  }

  create(_t: unknown, obj: Lease): Promise<Lease> {
    return this.gate(() => {
      if (this.lease) throw new ApiError({ verb: 'create', kind: 'Lease' }, 409, { reason: 'AlreadyExists' });
      return this.stamp(obj);
    });
  }

  update(_t: unknown, obj: Lease): Promise<Lease> {
    return this.gate(() => {
      if (obj.metadata.resourceVersion !== this.lease?.metadata.resourceVersion)
        throw new ApiError({ verb: 'update', kind: 'Lease' }, 409, { reason: 'Conflict' });
      return this.stamp(obj);
    });
  }

  asClient(): KubeClient {
    return this as unknown as KubeClient;
  }
}

const realDateNow = Date.now;
/** Installs a wall clock that can be stepped by `wallStep.ms`, before the elector reads Date.now. */
const wallStep = { ms: 0 };
function steppableWallClock(): () => void {
  wallStep.ms = 0;
  Date.now = () => realDateNow() + wallStep.ms;
  return () => {
    Date.now = realDateNow;
  };
}

/** Advances the fake clock in `stepMs` steps (letting real I/O turns pass too) until `done()` or `maxSteps`. */
async function drive(clock: FakeClock, stepMs: number, done: () => boolean, maxSteps = 200): Promise<void> {
  for (let i = 0; i < maxSteps && !done(); i++) {
    await clock.advanceAsync(stepMs);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function elector(
  api: FakeLeaseApi,
  clock: FakeClock,
  events: string[],
  timing = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
): LeaderElector {
  return new LeaderElector(api.asClient(), {
    namespace: 'x',
    name: 'y',
    identity: 'me',
    ...timing,
    clock,
    onStartedLeading: () => events.push('started'),
    onStoppedLeading: () => events.push('stopped'),
  });
}

void test('a renew that hangs (ignoring its abort signal) steps down exactly at lastRenew + renewDeadline', async () => {
  const api = new FakeLeaseApi();
  const clock = new FakeClock(1_000_000);
  const events: string[] = [];
  const el = elector(api, clock, events);
  const run = el.run();
  await settle();
  assert.equal(el.isLeader(), true, 'acquired a free lease');
  api.mode = 'hang';
  // The renew starts at +2 s and never returns; the lease was last renewed at +0.
  await clock.advanceAsync(9_999);
  assert.equal(el.isLeader(), true, 'still inside the renew deadline');
  await clock.advanceAsync(1);
  assert.equal(el.isLeader(), false, 'stepped down at the renew deadline although the renew is still in flight');
  assert.deepEqual(events, ['started', 'stopped']);
  assert.equal(await run, 'lost');
});

void test('the leadership signal aborts at the deadline; a successful renew pushes the deadline out', async () => {
  const api = new FakeLeaseApi();
  const clock = new FakeClock();
  const events: string[] = [];
  let term: AbortSignal | undefined;
  const el = new LeaderElector(api.asClient(), {
    namespace: 'x',
    name: 'y',
    identity: 'me',
    clock,
    onStartedLeading: (s) => (term = s),
    onStoppedLeading: () => events.push('stopped'),
  });
  const run = el.run();
  await settle();
  await clock.advanceAsync(30_000);
  assert.equal(el.isLeader(), true, 'renews every retry period keep the lease');
  api.mode = 'fail';
  await clock.advanceAsync(9_999);
  assert.equal(term?.aborted, false);
  await clock.advanceAsync(2_001);
  assert.equal(term?.aborted, true);
  assert.equal(await run, 'lost');
});

void test('a wall-clock step forward does not make a healthy lease look expired', async () => {
  const api = new FakeLeaseApi();
  api.holdBy('other', microTime(realDateNow()));
  const clock = new FakeClock();
  const events: string[] = [];
  const restore = steppableWallClock();
  const el = elector(api, clock, events, { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 100 });
  const run = el.run();
  try {
    await drive(clock, 100, () => api.gets >= 1);
    wallStep.ms = 3_600_000;
    const seen = api.gets;
    // A few more looks at the same, still valid record (the other holder renews within its 15 s).
    await drive(clock, 100, () => api.gets >= seen + 3);
    assert.ok(api.gets >= seen + 3, 'the follower kept looking');
    assert.equal(el.isLeader(), false, 'took a lease that is valid by the monotonic clock');
    assert.equal(api.lease?.spec?.holderIdentity, 'other');
  } finally {
    restore();
    void el.release();
    await run;
  }
});

void test('a wall-clock step backward does not hide failed renews', async () => {
  const api = new FakeLeaseApi();
  const clock = new FakeClock();
  const events: string[] = [];
  const restore = steppableWallClock();
  const el = elector(api, clock, events, { leaseDurationMs: 2_000, renewDeadlineMs: 1_500, retryPeriodMs: 100 });
  const run = el.run();
  try {
    await settle();
    assert.equal(el.isLeader(), true);
    wallStep.ms = -3_600_000;
    api.mode = 'fail';
    await drive(clock, 100, () => !el.isLeader());
    assert.equal(el.isLeader(), false, 'still leader after failing to renew past the deadline');
    assert.equal(await run, 'lost');
  } finally {
    restore();
  }
});

/** A clock whose `now()` can jump ahead without firing its timers, as a process frozen by SIGSTOP sees time when it resumes. */
function freezableClock(clock: FakeClock): {
  clock: { now(): number; setTimeout(fn: () => void, ms: number): unknown; clearTimeout(h: unknown): void };
  freeze(ms: number): void;
} {
  let frozen = 0;
  return {
    clock: {
      now: () => clock.now() + frozen,
      setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
      clearTimeout: (h) => clock.clearTimeout(h),
    },
    freeze: (ms) => (frozen += ms),
  };
}

void test('a renew whose read answers after a freeze past the renew deadline sends no update: the term is over', async () => {
  const api = new FakeLeaseApi();
  const fake = new FakeClock(1_000_000);
  const { clock, freeze } = freezableClock(fake);
  const events: string[] = [];
  const el = new LeaderElector(api.asClient(), {
    namespace: 'x',
    name: 'y',
    identity: 'me',
    clock,
    onStartedLeading: () => events.push('started'),
    onStoppedLeading: () => events.push('stopped'),
  });
  const run = el.run();
  await settle();
  assert.equal(el.isLeader(), true, 'acquired a free lease');
  // The next renew's read is answered only after the process was frozen for longer than the lease.
  let answer!: () => void;
  const held = new Promise<void>((r) => (answer = r));
  const get = api.get.bind(api);
  api.get = async (...args) => {
    const lease = await get(...args);
    await held;
    return lease;
  };
  let updates = 0;
  const update = api.update.bind(api);
  api.update = (...args) => {
    updates++;
    return update(...args);
  };
  await fake.advanceAsync(2_000);
  freeze(20_000);
  answer();
  await settle();
  assert.equal(updates, 0, 'a renew was sent after the term ran out by the monotonic clock');
  assert.equal(el.holdsLease(), false, 'holdsLease() is false past the renew deadline, before the step-down timer fires');
  // The fake timers did not see the freeze: run them to the step-down timer's own time.
  await fake.advanceAsync(8_000);
  assert.deepEqual(events, ['started', 'stopped']);
  assert.equal(updates, 0);
  assert.equal(await run, 'lost');
});

void test('a standby takes an abandoned lease the moment it runs out by its clock, not up to a jittered retry later', async () => {
  const api = new FakeLeaseApi();
  api.holdBy('dead-leader', microTime(realDateNow()));
  const clock = new FakeClock();
  const events: string[] = [];
  // The longest jittered retry: 2 s × 2.19…, so the attempts without a wake-up at expiry fall at 0, 4.4, 8.8, 13.1, 17.5 s.
  const random = Math.random;
  Math.random = () => 0.99;
  const el = elector(api, clock, events);
  const run = el.run();
  try {
    await settle();
    assert.equal(api.gets, 1, 'the standby read the Lease at once');
    const seenAt = clock.now();
    await drive(clock, 100, () => el.isLeader());
    assert.equal(el.isLeader(), true, 'took the expired lease');
    const took = clock.now() - seenAt;
    assert.ok(took >= 15_000 && took <= 15_100, `took the lease ${took} ms after it first saw the record, not at its expiry (15,000 ms)`);
  } finally {
    Math.random = random;
    void el.release();
    await run;
  }
});
