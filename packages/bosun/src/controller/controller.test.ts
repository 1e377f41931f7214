import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Controller, decide, type ChangeSource, type ControllerLogger, type Decision } from './controller.js';
import type { WatchChange } from './predicate.js';
import { ApiError, RequestTimeoutError, TransportError } from '../client/errors.js';
import { FakeClock, settle } from '../queue/clock.js';
import { ItemExponentialRateLimiter } from '../queue/ratelimiter.js';
import { PermanentError, TemporaryError } from './request.js';

const quiet: ControllerLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** A change source held in memory: synced when the test says so, changes pushed by hand. */
class MemorySource implements ChangeSource {
  readonly name: string = 'memory';
  private readonly fns: ((change: WatchChange) => void)[] = [];
  private synced!: () => void;
  private readonly sync = new Promise<void>((resolve) => (this.synced = resolve));

  constructor(syncNow = true) {
    if (syncNow) this.synced();
  }

  subscribe(fn: (change: WatchChange) => void): void {
    this.fns.push(fn);
  }

  waitForSync(signal?: AbortSignal): Promise<void> {
    if (!signal) return this.sync;
    return Promise.race([this.sync, new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))]);
  }

  markSynced(): void {
    this.synced();
  }

  push(change: WatchChange): void {
    for (const fn of this.fns) fn(change);
  }
}

function configMap(namespace: string, name: string): WatchChange {
  return { type: 'add', object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace, name } } };
}

void test('a controller whose reconciles do no I/O lets timers and I/O callbacks run during a long drain', async () => {
  const total = 10_000;
  const drain = new AbortController();
  let done = 0;
  const ctrl = new Controller({ name: 'sync', logger: quiet }, () => {
    done++;
    if (done === total) drain.abort();
    return Promise.resolve();
  });
  for (let i = 0; i < total; i++) ctrl.queue.add(`ns/obj-${i}`);
  let timeoutAt: number | undefined;
  let immediateAt: number | undefined;
  setTimeout(() => (timeoutAt = done), 0);
  setImmediate(() => (immediateAt = done));
  await ctrl.start(drain.signal);
  assert.equal(done, total);
  assert.ok(timeoutAt !== undefined && timeoutAt < total, `setTimeout(0) ran only after the drain (at ${timeoutAt} of ${total})`);
  assert.ok(immediateAt !== undefined && immediateAt < total, `setImmediate ran only after the drain (at ${immediateAt} of ${total})`);
});

void test('requeueAfterMs of zero or less means no timed requeue', async () => {
  for (const requeueAfterMs of [0, -5]) {
    const drain = new AbortController();
    const seen: string[] = [];
    let queuedWhenSentinelRan: number | undefined;
    const ctrl = new Controller({ name: 'zero', workers: 1, logger: quiet }, (req) => {
      seen.push(req.key);
      if (req.key === 'ns/sentinel') {
        queuedWhenSentinelRan = ctrl.queue.len() + ctrl.queue.delayedCount();
        drain.abort();
        return Promise.resolve();
      }
      return Promise.resolve({ requeueAfterMs });
    });
    ctrl.queue.add('ns/a');
    ctrl.queue.add('ns/sentinel');
    await ctrl.start(drain.signal);
    assert.deepEqual(seen, ['ns/a', 'ns/sentinel'], `requeueAfterMs: ${requeueAfterMs}`);
    assert.equal(queuedWhenSentinelRan, 0, `requeueAfterMs: ${requeueAfterMs} left ns/a queued or delayed`);
  }
});

void test('changes from a source reach the reconciler once the source has synced', async () => {
  const src = new MemorySource(false);
  const drain = new AbortController();
  const seen: string[] = [];
  const ctrl = new Controller({ name: 'source', logger: quiet }, (req) => {
    seen.push(req.key);
    drain.abort();
    return Promise.resolve();
  });
  ctrl.watch(src, (c) => [
    {
      namespace: c.object.metadata.namespace,
      name: c.object.metadata.name ?? '',
      key: `${c.object.metadata.namespace}/${c.object.metadata.name}`,
    },
  ]);
  const run = ctrl.start(drain.signal);
  src.push(configMap('ns', 'a'));
  src.markSynced();
  await run;
  assert.deepEqual(seen, ['ns/a']);
});

void test('decide gives every reconcile outcome one meaning', () => {
  const conflict = new ApiError({ verb: 'patch', kind: 'Pod', namespace: 'ns', name: 'p' }, 409, { reason: 'Conflict' });
  const throttled = new ApiError({ verb: 'get', kind: 'Pod', namespace: 'ns', name: 'p' }, 429, { reason: 'TooManyRequests' }, 3);
  const unavailable = new ApiError({ verb: 'get', kind: 'Pod', namespace: 'ns', name: 'p' }, 500, undefined);
  const cases: [string, Parameters<typeof decide>[0], Pick<Decision, 'result' | 'next'>, keyof ControllerLogger | undefined][] = [
    ['nothing returned', { ok: true, result: undefined }, { result: 'success', next: { then: 'wait-for-change' } }, undefined],
    ['empty result', { ok: true, result: {} }, { result: 'success', next: { then: 'wait-for-change' } }, undefined],
    [
      'requeueAfterMs 250',
      { ok: true, result: { requeueAfterMs: 250 } },
      { result: 'requeue_after', next: { then: 'requeue-after', delayMs: 250 } },
      undefined,
    ],
    ['requeueAfterMs 0', { ok: true, result: { requeueAfterMs: 0 } }, { result: 'success', next: { then: 'wait-for-change' } }, undefined],
    [
      'requeueAfterMs -1',
      { ok: true, result: { requeueAfterMs: -1 } },
      { result: 'success', next: { then: 'wait-for-change' } },
      undefined,
    ],
    [
      'requeueAfterMs NaN',
      { ok: true, result: { requeueAfterMs: Number.NaN } },
      { result: 'success', next: { then: 'wait-for-change' } },
      undefined,
    ],
    [
      'PermanentError',
      { ok: false, error: new PermanentError('NoRoute', 'no route'), aborted: false },
      { result: 'error', next: { then: 'wait-for-change' } },
      'warn',
    ],
    [
      'TemporaryError',
      { ok: false, error: new TemporaryError('busy', 700), aborted: false },
      { result: 'error', next: { then: 'backoff', minDelayMs: 700 } },
      'info',
    ],
    [
      '409 conflict',
      { ok: false, error: conflict, aborted: false },
      { result: 'error', next: { then: 'backoff', minDelayMs: 0 } },
      'debug',
    ],
    [
      '429 with Retry-After',
      { ok: false, error: throttled, aborted: false },
      { result: 'error', next: { then: 'backoff', minDelayMs: 3000, hold: true } },
      'warn',
    ],
    [
      '500 without Retry-After',
      { ok: false, error: unavailable, aborted: false },
      { result: 'error', next: { then: 'backoff', minDelayMs: 0 } },
      'error',
    ],
    [
      'plain Error',
      { ok: false, error: new Error('boom'), aborted: false },
      { result: 'error', next: { then: 'backoff', minDelayMs: 0 } },
      'error',
    ],
    ['thrown string', { ok: false, error: 'boom', aborted: false }, { result: 'error', next: { then: 'backoff', minDelayMs: 0 } }, 'error'],
    [
      'error after the signal aborted',
      { ok: false, error: new Error('aborted'), aborted: true },
      { result: 'error', next: { then: 'wait-for-change' } },
      'info',
    ],
  ];
  for (const [name, outcome, want, level] of cases) {
    const got = decide(outcome);
    assert.deepEqual({ result: got.result, next: got.next }, want, name);
    assert.equal(got.log?.level, level, `${name}: log level`);
  }
});

void test('the controller carries out the decision: requeue after a delay, back off on errors, forget on success', async () => {
  const clock = new FakeClock();
  const drain = new AbortController();
  const runs: string[] = [];
  const results: string[] = [];
  const ctrl = new Controller(
    {
      name: 'decisions',
      workers: 1,
      logger: quiet,
      clock,
      rateLimiter: new ItemExponentialRateLimiter(),
      observer: { reconcileDone: (_c, r) => results.push(r) },
    },
    (req) => {
      runs.push(req.key);
      const n = runs.filter((k) => k === req.key).length;
      if (req.key === 'ns/timed' && n === 1) return Promise.resolve({ requeueAfterMs: 1000 });
      if (req.key === 'ns/failing' && n <= 2) return Promise.reject(new Error('boom'));
      return Promise.resolve();
    },
  );
  ctrl.queue.add('ns/timed');
  ctrl.queue.add('ns/failing');
  const run = ctrl.start(drain.signal);
  await settle();
  assert.deepEqual(runs, ['ns/timed', 'ns/failing']);
  assert.equal(ctrl.queue.delayedCount(), 2);
  await clock.advanceAsync(5);
  assert.deepEqual(runs.slice(2), ['ns/failing'], 'the first retry comes after the 5 ms backoff');
  await clock.advanceAsync(10);
  assert.deepEqual(runs.slice(3), ['ns/failing'], 'the second after 10 ms more');
  assert.equal(ctrl.queue.numRequeues('ns/failing'), 0, 'success forgets the backoff');
  await clock.advanceAsync(985);
  assert.deepEqual(runs.slice(4), ['ns/timed'], 'the timed requeue comes at 1000 ms');
  assert.equal(ctrl.queue.delayedCount(), 0);
  assert.deepEqual(results, ['requeue_after', 'error', 'error', 'success', 'success']);
  drain.abort();
  await run;
});

/** A reconcile the test holds open until it calls `release`. */
interface Held {
  key: string;
  signal: AbortSignal;
  release: () => void;
}

function holdingController(opts: { workers?: number; onActive?: (n: number) => void }): {
  ctrl: Controller;
  held: Held[];
  finished: string[];
} {
  const held: Held[] = [];
  const finished: string[] = [];
  const ctrl = new Controller(
    { name: 'holding', workers: opts.workers ?? 1, logger: quiet, observer: { workersActive: (_c, n) => opts.onActive?.(n) } },
    (req, signal) =>
      new Promise<void>((resolve) => {
        held.push({
          key: req.key,
          signal,
          release: () => {
            finished.push(req.key);
            resolve();
          },
        });
      }),
  );
  return { ctrl, held, finished };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await settle(1);
  assert.ok(cond(), what);
}

void test('aborting drain stops taking work and resolves start once in-flight reconciles finish, their signal untouched', async () => {
  const { ctrl, held, finished } = holdingController({ workers: 1 });
  const drain = new AbortController();
  const kill = new AbortController();
  ctrl.queue.add('ns/a');
  ctrl.queue.add('ns/b');
  let resolved = false;
  const run = ctrl.start(drain.signal, kill.signal).then(() => (resolved = true));
  await until(() => held.length === 1, 'ns/a is being reconciled');
  drain.abort();
  await settle();
  assert.equal(resolved, false, 'start waits for the in-flight reconcile');
  assert.equal(held[0]!.signal.aborted, false, "a graceful drain does not abort the in-flight reconcile's signal");
  held[0]!.release();
  await run;
  assert.deepEqual(finished, ['ns/a']);
  assert.deepEqual(
    held.map((h) => h.key),
    ['ns/a'],
    'ns/b is not taken after the drain began',
  );
});

void test('aborting kill aborts every in-flight reconcile and resolves start without waiting for them', async () => {
  const { ctrl, held, finished } = holdingController({ workers: 2 });
  const drain = new AbortController();
  const kill = new AbortController();
  for (const k of ['ns/a', 'ns/b', 'ns/c']) ctrl.queue.add(k);
  const run = ctrl.start(drain.signal, kill.signal);
  await until(() => held.length === 2, 'two reconciles are in flight');
  kill.abort(new Error('shutdown timeout'));
  await run;
  assert.deepEqual(finished, [], 'start resolved while both reconciles were still running');
  assert.ok(
    held.every((h) => h.signal.aborted),
    'every in-flight reconcile saw its signal abort',
  );
  for (const h of held) h.release();
  await settle();
  assert.deepEqual(
    held.map((h) => h.key),
    ['ns/a', 'ns/b'],
    'ns/c is never taken',
  );
});

void test('kill after drain (the shutdown timeout) stops waiting for reconciles that outlive the drain', async () => {
  const { ctrl, held } = holdingController({ workers: 1 });
  const drain = new AbortController();
  const kill = new AbortController();
  ctrl.queue.add('ns/a');
  let resolved = false;
  const run = ctrl.start(drain.signal, kill.signal).then(() => (resolved = true));
  await until(() => held.length === 1, 'ns/a is being reconciled');
  drain.abort();
  await settle();
  assert.equal(resolved, false);
  kill.abort();
  await run;
  assert.equal(held[0]!.signal.aborted, true);
  held[0]!.release();
});

void test('start returns without reconciling when stopped before the sources sync', async () => {
  for (const which of ['drain', 'kill'] as const) {
    const src = new MemorySource(false);
    const { ctrl, held } = holdingController({});
    ctrl.watch(src, () => []);
    const drain = new AbortController();
    const kill = new AbortController();
    ctrl.queue.add('ns/a');
    const run = ctrl.start(drain.signal, kill.signal);
    (which === 'drain' ? drain : kill).abort();
    await run;
    src.markSynced();
    await settle();
    assert.equal(held.length, 0, `stopped by ${which}`);
  }
});

void test('workersActive reports every change in the number of running reconciles', async () => {
  const counts: number[] = [];
  const { ctrl, held } = holdingController({ workers: 2, onActive: (n) => counts.push(n) });
  const drain = new AbortController();
  ctrl.queue.add('ns/a');
  ctrl.queue.add('ns/b');
  const run = ctrl.start(drain.signal);
  await until(() => held.length === 2, 'both reconciles are in flight');
  assert.deepEqual(counts, [1, 2]);
  assert.equal(ctrl.active, 2);
  drain.abort();
  held[1]!.release();
  await until(() => counts.length === 3, 'one reconcile finished');
  held[0]!.release();
  await run;
  assert.deepEqual(counts, [1, 2, 1, 0]);
  assert.equal(ctrl.active, 0);
});

void test('beforeReconcile delays a reconcile, and its wait counts neither in the duration nor in the active workers', async () => {
  const clock = new FakeClock();
  const counts: number[] = [];
  const durations: number[] = [];
  const waits: { key: string; release: () => void }[] = [];
  const reconciled: string[] = [];
  const ctrl = new Controller(
    {
      name: 'waiting',
      workers: 1,
      logger: quiet,
      clock,
      observer: { workersActive: (_c, n) => counts.push(n), reconcileDone: (_c, _r, s) => durations.push(s) },
      // The first reconcile waits until the test releases it; later ones at once.
      beforeReconcile: (key) => (waits.length ? Promise.resolve() : new Promise<void>((release) => waits.push({ key, release }))),
    },
    async (req) => {
      reconciled.push(req.key);
    },
  );
  const drain = new AbortController();
  ctrl.queue.add('ns/a');
  const run = ctrl.start(drain.signal);
  await until(() => waits.length === 1, 'the wait began');
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(reconciled, [], 'no reconcile before the wait ends');
  assert.deepEqual(counts, [], 'a waiting key is not an active worker');
  ctrl.queue.add('ns/a');
  assert.equal(ctrl.queue.len(), 0, 'the key stays taken while it waits: added again, it waits for this reconcile');
  waits[0]!.release();
  await until(() => reconciled.length === 2, 'ns/a reconciled, then again for the add during the wait');
  assert.deepEqual(reconciled, ['ns/a', 'ns/a']);
  assert.ok(durations[0]! < 0.05, `the 60 ms wait is not in the reconcile's duration (${durations[0]} s)`);
  assert.deepEqual(counts, [1, 0, 1, 0]);
  drain.abort();
  await run;
});

void test('a beforeReconcile that rejects does not stop the reconcile', async () => {
  const reconciled: string[] = [];
  const ctrl = new Controller(
    { name: 'failing-wait', workers: 1, logger: quiet, beforeReconcile: () => Promise.reject(new Error('no cache')) },
    async (req) => {
      reconciled.push(req.key);
    },
  );
  const drain = new AbortController();
  ctrl.queue.add('ns/a');
  const run = ctrl.start(drain.signal);
  await until(() => reconciled.length === 1, 'reconciled');
  drain.abort();
  await run;
  assert.equal(ctrl.active, 0);
});

/** A memory source whose watch the test can mark broken (behind) and recovered. */
class LaggingSource extends MemorySource {
  private behind = false;
  private readonly listeners: (() => void)[] = [];

  constructor(override readonly name: string) {
    super();
  }

  isBehind(): boolean {
    return this.behind;
  }

  onFreshness(fn: () => void): void {
    this.listeners.push(fn);
  }

  lastError(): unknown {
    return this.behind ? new Error('watch messages: connect ECONNREFUSED') : undefined;
  }

  setBehind(behind: boolean): void {
    this.behind = behind;
    for (const fn of this.listeners) fn();
  }
}

function recordingLogger(): { logger: ControllerLogger; lines: { level: string; msg: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (fields: unknown, msg?: string): void =>
      void lines.push({ level, msg: msg ?? '', fields: fields as Record<string, unknown> });
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as unknown as ControllerLogger, lines };
}

void test('while a cache it reads is behind, a controller starts no reconcile and keeps the queue; it resumes when all have caught up', async () => {
  const clock = new FakeClock();
  const messages = new LaggingSource('messages');
  const pods = new LaggingSource('pods');
  const runs: string[] = [];
  const held: string[][] = [];
  const ctrl = new Controller(
    { name: 'message', workers: 4, logger: quiet, clock, observer: { reconcilesHeld: (_c, behind) => held.push(behind) } },
    (req) => {
      runs.push(req.key);
      return Promise.resolve();
    },
  );
  ctrl.watch(messages, (c) => [
    {
      key: `${c.object.metadata.namespace}/${c.object.metadata.name}`,
      namespace: c.object.metadata.namespace,
      name: c.object.metadata.name!,
    },
  ]);
  ctrl.watch(pods, (c) => [
    {
      key: `${c.object.metadata.namespace}/${c.object.metadata.name!.replace(/-pod$/, '')}`,
      namespace: c.object.metadata.namespace,
      name: c.object.metadata.name!.replace(/-pod$/, ''),
    },
  ]);
  const drain = new AbortController();
  const run = ctrl.start(drain.signal);
  await settle();
  pods.push(configMap('ns', 'a-pod'));
  await settle();
  assert.deepEqual(runs, ['ns/a'], 'reconciles run while every cache is current');

  // The Message watch broke (its relist after 410 is pending); the Pod watch resumed and replays deletions.
  messages.setBehind(true);
  pods.push({ type: 'delete', object: { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'ns', name: 'gone-pod' } } });
  pods.push({ type: 'delete', object: { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'ns', name: 'b-pod' } } });
  await clock.advanceAsync(5_000);
  assert.deepEqual(runs, ['ns/a'], 'no reconcile on a Message cache that has not caught up');
  assert.equal(ctrl.queue.processingCount() + ctrl.queue.len(), 2, 'the keys are kept');
  assert.deepEqual(ctrl.holdingFor, ['messages']);
  pods.setBehind(true);
  messages.setBehind(false);
  await clock.advanceAsync(1_000);
  assert.deepEqual(runs, ['ns/a'], 'still held: the Pod cache is behind now');
  pods.setBehind(false);
  await settle();
  assert.deepEqual(runs.slice(1).sort(), ['ns/b', 'ns/gone'], 'both reconciled once everything caught up');
  assert.deepEqual(held, [['messages'], []]);
  drain.abort();
  await run;
});

void test('a cache behind for longer than maxHoldMs holds reconciles no more, with a warning naming it and its error', async () => {
  const clock = new FakeClock();
  const messages = new LaggingSource('messages');
  const runs: string[] = [];
  const { logger, lines } = recordingLogger();
  const ctrl = new Controller({ name: 'message', workers: 2, logger, clock, maxHoldMs: 30_000 }, (req) => {
    runs.push(req.key);
    return Promise.resolve();
  });
  ctrl.watch(messages, (c) => [{ key: `ns/${c.object.metadata.name}`, namespace: 'ns', name: c.object.metadata.name! }]);
  const drain = new AbortController();
  const run = ctrl.start(drain.signal);
  await settle();
  messages.setBehind(true);
  await clock.advanceAsync(10_000);
  messages.push(configMap('ns', 'x'));
  await clock.advanceAsync(19_999);
  assert.deepEqual(runs, [], 'held up to 30 s after the cache fell behind');
  await clock.advanceAsync(1);
  assert.deepEqual(runs, ['ns/x'], 'the bound is counted from when the cache fell behind, not from the key');
  const warn = lines.find((l) => l.level === 'warn');
  assert.ok(warn, 'a warning');
  assert.equal(warn.fields.cache, 'messages');
  assert.match(String(warn.fields.err), /ECONNREFUSED/);
  messages.push(configMap('ns', 'y'));
  await settle();
  assert.deepEqual(runs, ['ns/x', 'ns/y'], 'not held again for the same gap');
  // Caught up, then behind again: a new gap is held again.
  messages.setBehind(false);
  messages.setBehind(true);
  messages.push(configMap('ns', 'z'));
  await clock.advanceAsync(1_000);
  assert.deepEqual(runs, ['ns/x', 'ns/y']);
  // A drain while held ends the held worker without running its key.
  drain.abort();
  await run;
  assert.deepEqual(runs, ['ns/x', 'ns/y']);
});

function refused(): TransportError {
  return new TransportError(
    { verb: 'apply', kind: 'Pod', namespace: 'ns', name: 'x' },
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }),
  );
}

void test('a failure with no answer from the server (refused, reset, dead connection) is retried without the shared bucket; a timeout or an answer is not', () => {
  const next = (error: unknown): Decision['next'] => decide({ ok: false, error, aborted: false }).next;
  assert.deepEqual(next(refused()), { then: 'backoff', minDelayMs: 0, unanswered: true });
  assert.deepEqual(
    next(new Error('reconcile of ns/x failed', { cause: refused() })),
    { then: 'backoff', minDelayMs: 0, unanswered: true },
    'found through a cause chain',
  );
  assert.deepEqual(next(new TransportError({ verb: 'get' }, new Error('stream reset'), { unprocessed: true })), {
    then: 'backoff',
    minDelayMs: 0,
    unanswered: true,
  });
  // A slow server may be working on the request: its retries keep the bucket.
  assert.deepEqual(next(new TransportError({ verb: 'get' }, new RequestTimeoutError(60_000))), { then: 'backoff', minDelayMs: 0 });
  assert.deepEqual(next(new ApiError({ verb: 'get' }, 500, undefined)), { then: 'backoff', minDelayMs: 0 });
  assert.deepEqual(next(new Error('boom')), { then: 'backoff', minDelayMs: 0 });
});

void test('recovery after an outage that failed 1,000 reconciles with no answer takes the per-key backoff, not (F - 100) / 10 s of the shared bucket', async () => {
  const clock = new FakeClock();
  let down = true;
  const ok = new Set<string>();
  let failures = 0;
  const ctrl = new Controller({ name: 'outage', logger: quiet, clock }, (req) => {
    if (down) {
      failures++;
      return Promise.reject(refused());
    }
    ok.add(req.key);
    return Promise.resolve();
  });
  for (let i = 0; i < 1000; i++) ctrl.queue.add(`ns/m-${i}`);
  const drain = new AbortController();
  const run = ctrl.start(drain.signal);
  for (let t = 0; t < 6000; t += 50) await clock.advanceAsync(50);
  down = false;
  const back = clock.now();
  while (ok.size < 1000 && clock.now() - back < 200_000) await clock.advanceAsync(50);
  const recoveryMs = clock.now() - back;
  // Each key's next retry after an outage of T is at most about T away (its delays double: each is the sum of the
  // ones before plus 5 ms), so recovery is bounded by the outage, whatever the number of failures.
  assert.equal(ok.size, 1000, `all reconciled (${ok.size}) within 200 s`);
  assert.ok(failures > 1000, `the outage failed every key at least once (${failures} failures)`);
  assert.ok(recoveryMs <= 6000, `recovered ${recoveryMs} ms after the server came back (bound: the 6 s outage)`);
  drain.abort();
  await run;
});
