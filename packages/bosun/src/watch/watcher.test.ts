import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ApiError } from '../client/errors.js';
import type { KubeObject } from '../client/types.js';
import { FakeClock, settle } from '../queue/clock.js';
import { FakeListWatcher } from './testing.js';
import type { SourcePage } from './watcher.js';
import { type RestartReason, type WatcherEvent, Backoff, runWatcher } from './watcher.js';

function obj(name: string, rv: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'ns', name, resourceVersion: rv } };
}

interface Harness {
  source: FakeListWatcher;
  clock: FakeClock;
  events: WatcherEvent[];
  restarts: { reason: RestartReason; delayMs: number; error?: unknown }[];
  ctrl: AbortController;
  done: Promise<void>;
  finished: () => boolean;
}

async function start(source = new FakeListWatcher(), idleTimeoutMs = 60_000): Promise<Harness> {
  const clock = new FakeClock(1_000_000);
  const events: WatcherEvent[] = [];
  const restarts: Harness['restarts'] = [];
  const ctrl = new AbortController();
  let finished = false;
  const done = runWatcher(source, (ev) => void events.push(ev), ctrl.signal, {
    clock,
    random: () => 0,
    idleTimeoutMs,
    hooks: { onRestart: (reason, info) => restarts.push({ reason, ...info }) },
  }).then(() => {
    finished = true;
  });
  await settle();
  return { source, clock, events, restarts, ctrl, done, finished: () => finished };
}

void test('lists page by page, handing each page on before fetching the next, then watches from the list resourceVersion', async () => {
  const source = new FakeListWatcher();
  source.pages = [
    { items: [obj('a', '5')], resourceVersion: '10', continue: '1' },
    { items: [obj('b', '7')], resourceVersion: '10' },
  ];
  // The second page is held back: the first must have reached the sink while it is outstanding.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const list = source.list.bind(source);
  source.list = async (o) => {
    if (o.continue) await held;
    return list(o);
  };
  const h = await start(source);
  assert.equal(h.events.length, 1, 'page 1 is handed on before page 2 arrives');
  release();
  await settle();
  assert.deepEqual(source.listCalls, [
    { limit: 500, continue: undefined },
    { limit: 500, continue: '1' },
  ]);
  assert.deepEqual(
    h.events.map((e) =>
      e.type === 'page' ? { names: e.objects.map((o) => o.metadata.name), first: e.first, last: e.last, initial: e.initial } : e.type,
    ),
    [
      { names: ['a'], first: true, last: false, initial: true },
      { names: ['b'], first: false, last: true, initial: true },
    ],
  );
  assert.equal(source.watchCalls.length, 1);
  const w = source.watchCalls[0]!;
  assert.equal(w.resourceVersion, '10');
  assert.equal(w.allowWatchBookmarks, true);
  assert.ok(w.timeoutSeconds >= 300 && w.timeoutSeconds <= 600);
  h.ctrl.abort();
  await h.done;
});

void test('forwards applied and deleted events and reconnects after an error from the last resourceVersion', async () => {
  const h = await start();
  const s = h.source.lastStream();
  s.push('ADDED', obj('a', '2'));
  s.push('MODIFIED', obj('a', '3'));
  s.push('DELETED', obj('a', '4'));
  await settle();
  assert.deepEqual(
    h.events.slice(1).map((e) => e.type),
    ['applied', 'applied', 'deleted'],
  );
  s.fail(new Error('connection reset'));
  await settle();
  assert.equal(h.restarts.length, 1);
  assert.equal(h.restarts[0]!.reason, 'error');
  assert.equal(h.restarts[0]!.delayMs, 800);
  assert.equal(h.source.watchCalls.length, 1, 'waits for the backoff before reconnecting');
  await h.clock.advanceAsync(800);
  assert.equal(h.source.watchCalls.length, 2);
  assert.equal(h.source.watchCalls[1]!.resourceVersion, '4');
  assert.equal(h.source.listCalls.length, 1, 'no relist on a non-410 error');
  h.ctrl.abort();
  await h.done;
});

void test('a bookmark advances the resourceVersion used on reconnect', async () => {
  const h = await start();
  const s = h.source.lastStream();
  s.push('ADDED', obj('a', '2'));
  s.push('BOOKMARK', { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: '99' } });
  await settle();
  assert.equal(h.events.length, 2, 'bookmarks are not forwarded');
  // A clean close after a healthy stream (server timeout) reconnects at once.
  await h.clock.advanceAsync(5000);
  s.end();
  await settle();
  assert.deepEqual(
    h.restarts.map((r) => [r.reason, r.delayMs]),
    [['closed', 0]],
  );
  assert.equal(h.source.watchCalls[1]!.resourceVersion, '99');
  h.ctrl.abort();
  await h.done;
});

void test('410 Gone as an ERROR event relists (pages not initial), then watches from the new resourceVersion', async () => {
  const h = await start();
  h.source.pages = [{ items: [obj('x', '50')], resourceVersion: '60' }];
  h.source.lastStream().push('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' } as unknown as KubeObject);
  await settle();
  assert.equal(h.restarts[0]!.reason, 'gone');
  assert.equal(h.restarts[0]!.delayMs, 0, 'a single 410 relists immediately');
  assert.equal(h.source.listCalls.length, 2);
  const relist = h.events.at(-1)!;
  assert.deepEqual(relist.type === 'page' ? [relist.first, relist.last, relist.initial] : relist.type, [true, true, false]);
  assert.equal(h.source.watchCalls.at(-1)!.resourceVersion, '60');
  h.ctrl.abort();
  await h.done;
});

void test('410 Gone thrown by the watch call relists too; back-to-back 410s back off', async () => {
  const h = await start();
  h.source.watchError = new ApiError({ verb: 'watch', kind: 'Pod' }, 410, { reason: 'Expired', code: 410 });
  h.source.lastStream().end();
  await h.clock.advanceAsync(0);
  // The clean-but-short close backs off first.
  assert.equal(h.restarts[0]!.reason, 'closed');
  await h.clock.advanceAsync(h.restarts[0]!.delayMs);
  assert.equal(h.restarts[1]!.reason, 'gone');
  assert.equal(h.source.listCalls.length, 2);
  h.source.lastStream().push('ERROR', { code: 410 } as unknown as KubeObject);
  await settle();
  assert.equal(h.restarts[2]!.reason, 'gone');
  assert.ok(h.restarts[2]!.delayMs > 0, 'a second consecutive 410 is backed off');
  h.ctrl.abort();
  await h.done;
});

void test('a non-410 ERROR event reconnects without relisting', async () => {
  const h = await start();
  h.source.lastStream().push('ERROR', { code: 500, message: 'internal' } as unknown as KubeObject);
  await settle();
  assert.equal(h.restarts[0]!.reason, 'error');
  await h.clock.advanceAsync(800);
  assert.equal(h.source.listCalls.length, 1);
  assert.equal(h.source.watchCalls.length, 2);
  h.ctrl.abort();
  await h.done;
});

void test('a silent stream is abandoned after the idle timeout and restarted from the last resourceVersion', async () => {
  const source = new FakeListWatcher();
  // A dead TCP connection: aborting does not end the stream.
  source.honourAbort = false;
  const h = await start(source, 10_000);
  h.source.lastStream().push('ADDED', obj('a', '7'));
  await settle();
  await h.clock.advanceAsync(9_999);
  assert.equal(h.restarts.length, 0, 'events reset the idle timer');
  await h.clock.advanceAsync(1);
  assert.equal(h.restarts[0]!.reason, 'silent');
  assert.equal(source.watchCalls[0]!.stream.aborted, true, 'the dead request is aborted');
  await h.clock.advanceAsync(h.restarts[0]!.delayMs);
  assert.equal(source.watchCalls.length, 2);
  assert.equal(source.watchCalls[1]!.resourceVersion, '7');
  h.ctrl.abort();
  await h.done;
});

void test('backoff grows 800, 1600, … capped at 30 s, and resets after a healthy period', async () => {
  const h = await start();
  for (let i = 0; i < 8; i++) {
    h.source.lastStream().fail(new Error('boom'));
    await settle();
    await h.clock.advanceAsync(h.restarts.at(-1)!.delayMs);
  }
  assert.deepEqual(
    h.restarts.map((r) => r.delayMs),
    [800, 1600, 3200, 6400, 12800, 25600, 30000, 30000],
  );
  await h.clock.advanceAsync(121_000);
  h.source.lastStream().fail(new Error('boom'));
  await settle();
  assert.equal(h.restarts.at(-1)!.delayMs, 800);
  h.ctrl.abort();
  await h.done;
});

void test('list errors are retried with backoff until the list succeeds', async () => {
  const source = new FakeListWatcher();
  source.listError = new ApiError({ verb: 'list', kind: 'Pod' }, 429, { reason: 'TooManyRequests' }, 1);
  const h = await start(source);
  assert.equal(h.events.length, 0);
  await h.clock.advanceAsync(800);
  await h.clock.advanceAsync(1600);
  assert.equal(source.listCalls.length, 3);
  source.listError = undefined;
  await h.clock.advanceAsync(3200);
  assert.equal(h.events[0]?.type, 'page');
  assert.equal(source.watchCalls.length, 1);
  h.ctrl.abort();
  await h.done;
});

void test('a throwing sink replays the event from the previous resourceVersion', async () => {
  const source = new FakeListWatcher();
  const clock = new FakeClock();
  const ctrl = new AbortController();
  let fail = true;
  const seen: string[] = [];
  const done = runWatcher(
    source,
    (ev) => {
      if (ev.type !== 'applied') return;
      seen.push(ev.object.metadata.name ?? '');
      if (fail) {
        fail = false;
        throw new Error('store bug');
      }
    },
    ctrl.signal,
    { clock, random: () => 0 },
  );
  await settle();
  source.lastStream().push('ADDED', obj('a', '2'));
  await settle();
  await clock.advanceAsync(800);
  assert.equal(source.watchCalls[1]!.resourceVersion, '1', 'resourceVersion did not advance past the failed event');
  ctrl.abort();
  await done;
  assert.deepEqual(seen, ['a']);
});

void test('abort stops the watcher during a watch and during a backoff sleep', async () => {
  const h = await start();
  h.ctrl.abort();
  await h.done;
  assert.equal(h.finished(), true);
  assert.equal(h.source.lastStream().aborted, true);

  const h2 = await start();
  h2.source.lastStream().fail(new Error('x'));
  await settle();
  h2.ctrl.abort();
  await h2.done;
  assert.equal(h2.source.watchCalls.length, 1, 'no reconnect after abort');
  assert.equal(h2.clock.pendingTimers(), 0, 'no timers left behind');
});

void test('an abort that fires while the sink handles the list stops the watcher before it watches', async () => {
  const source = new FakeListWatcher();
  const ctrl = new AbortController();
  await runWatcher(
    source,
    (ev) => {
      if (ev.type === 'page') ctrl.abort();
    },
    ctrl.signal,
    { clock: new FakeClock() },
  );
  assert.equal(source.watchCalls.length, 0);
});

void test('Backoff applies jitter within the cap', () => {
  const clock = new FakeClock();
  const b = new Backoff({ jitter: 0.5 }, clock, () => 0.999);
  const first = b.next();
  assert.ok(first > 800 && first < 1200);
  for (let i = 0; i < 10; i++) b.next();
  assert.equal(b.next(), 30_000);
});

void test('a continue token that expired mid-list (410) falls back to one full list, not a restart of the paging', async () => {
  const source = new FakeListWatcher();
  source.pages = [
    { items: [obj('a', '5')], resourceVersion: '10', continue: '1' },
    { items: [obj('b', '7')], resourceVersion: '10' },
  ];
  const full: SourcePage = { items: [obj('a', '5'), obj('b', '8'), obj('c', '9')], resourceVersion: '12' };
  const list = source.list.bind(source);
  source.list = async (o) => {
    if (o.continue) {
      source.listCalls.push({ limit: o.limit, continue: o.continue });
      throw new ApiError({ verb: 'list', kind: 'Pod' }, 410, {
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        code: 410,
        reason: 'Expired',
        message: 'The provided continue parameter is too old',
      });
    }
    if (o.limit === 0) {
      source.listCalls.push({ limit: o.limit, continue: o.continue });
      return full;
    }
    return list(o);
  };
  const h = await start(source);
  assert.deepEqual(source.listCalls, [
    { limit: 500, continue: undefined },
    { limit: 500, continue: '1' },
    { limit: 0, continue: undefined },
  ]);
  assert.deepEqual(
    h.events.map((e) => (e.type === 'page' ? { names: e.objects.map((o) => o.metadata.name), first: e.first, last: e.last } : e.type)),
    [
      { names: ['a'], first: true, last: false },
      { names: ['a', 'b', 'c'], first: true, last: true },
    ],
  );
  assert.equal(source.watchCalls[0]?.resourceVersion, '12', 'watches from the full list');
  assert.deepEqual(h.restarts, [], 'no restart of the watcher');
  h.ctrl.abort();
  await h.done;
});

/** A watcher whose behind / caught-up reports are recorded, with the time each came. */
async function startTracked(source = new FakeListWatcher(), opts: { resumeConfirmMs?: number } = {}) {
  const clock = new FakeClock(1_000_000);
  const events: WatcherEvent[] = [];
  const freshness: string[] = [];
  const ctrl = new AbortController();
  const done = runWatcher(source, (ev) => void events.push(ev), ctrl.signal, {
    clock,
    random: () => 0,
    idleTimeoutMs: 600_000,
    ...opts,
    hooks: {
      onBehind: (reason) => freshness.push(`behind:${reason}`),
      onCaughtUp: () => freshness.push('caught-up'),
    },
  });
  await settle();
  return { source, clock, events, freshness, ctrl, done };
}

void test('a broken watch is behind until the resumed watch delivers an event; a 410 until the relist has stored its last page', async () => {
  const h = await startTracked();
  assert.deepEqual(h.freshness, [], 'the first list is a sync, not a catch-up');
  h.source.lastStream().fail(new Error('connection reset'));
  await settle();
  assert.deepEqual(h.freshness, ['behind:error']);
  await h.clock.advanceAsync(800);
  assert.equal(h.source.watchCalls.length, 2, 'reconnected');
  assert.deepEqual(h.freshness, ['behind:error'], 'an open request proves nothing yet: a 410 may still come on it');
  h.source.lastStream().push('DELETED', obj('a', '9'));
  await settle();
  assert.deepEqual(
    h.freshness,
    ['behind:error', 'caught-up'],
    'the resumed stream delivered an event: the server accepted the resourceVersion',
  );

  // 410: behind through the relist, caught up only once the last page is in the store.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  h.source.pages = [
    { items: [obj('x', '50')], resourceVersion: '60', continue: '1' },
    { items: [obj('y', '51')], resourceVersion: '60' },
  ];
  const list = h.source.list.bind(h.source);
  h.source.list = async (o) => {
    if (o.continue) await held;
    return list(o);
  };
  h.source.lastStream().push('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' } as unknown as KubeObject);
  await settle();
  assert.deepEqual(h.freshness.slice(2), ['behind:gone']);
  assert.equal(h.events.at(-1)!.type, 'page', 'the first page is stored');
  assert.deepEqual(h.freshness.slice(2), ['behind:gone'], 'still behind with one page of two');
  release();
  await settle();
  assert.deepEqual(h.freshness.slice(2), ['behind:gone', 'caught-up']);
  h.ctrl.abort();
  await h.done;
});

void test('a resumed watch that stays open without an ERROR for resumeConfirmMs is caught up; one that gets a 410 first is not', async () => {
  const h = await startTracked(new FakeListWatcher(), { resumeConfirmMs: 1000 });
  h.source.lastStream().fail(new Error('connection reset'));
  await settle();
  await h.clock.advanceAsync(800);
  await h.clock.advanceAsync(999);
  assert.deepEqual(h.freshness, ['behind:error']);
  await h.clock.advanceAsync(1);
  assert.deepEqual(h.freshness, ['behind:error', 'caught-up'], 'a quiet kind catches up without an event');

  h.source.lastStream().fail(new Error('connection reset'));
  await settle();
  await h.clock.advanceAsync(1600);
  h.source.lastStream().push('ERROR', { kind: 'Status', code: 410, reason: 'Expired' } as unknown as KubeObject);
  await settle();
  await h.clock.advanceAsync(5000);
  assert.deepEqual(h.freshness.slice(2), ['behind:error', 'behind:gone', 'caught-up']);
  assert.equal(h.source.listCalls.length, 2, 'caught up by the relist, not by the timer of the stream that got 410');
  h.ctrl.abort();
  await h.done;
});

void test('a watch that fails to reconnect stays behind; a server timeout (clean close of a healthy stream) is not a gap', async () => {
  const h = await startTracked(new FakeListWatcher(), { resumeConfirmMs: 1000 });
  await h.clock.advanceAsync(5000);
  h.source.lastStream().end();
  await settle();
  assert.deepEqual(h.freshness, [], 'a clean close resumes at once from the last resourceVersion');
  h.source.lastStream().fail(new Error('connection reset'));
  await settle();
  h.source.watchError = new Error('connect ECONNREFUSED');
  await h.clock.advanceAsync(800);
  await h.clock.advanceAsync(1000);
  assert.deepEqual(h.freshness, ['behind:error', 'behind:error'], 'a refused reconnect is no resumed watch');
  h.ctrl.abort();
  await h.done;
});

/** Fails the current stream and returns the reconnect delay the watcher chose, after waiting it out. */
async function failAndReconnect(h: Harness, err: unknown = new Error('connection reset')): Promise<number> {
  h.source.lastStream().fail(err);
  await settle();
  const delay = h.restarts.at(-1)!.delayMs;
  await h.clock.advanceAsync(delay);
  return delay;
}

void test('a stream that delivered an event and stayed open past minHealthyStreamMs resets the reconnect backoff', async () => {
  const h = await start();
  assert.deepEqual([await failAndReconnect(h), await failAndReconnect(h), await failAndReconnect(h)], [800, 1600, 3200]);
  // The path works again: the resumed stream replays an event and stays up, then the path fails once more.
  h.source.lastStream().push('ADDED', obj('a', '2'));
  await h.clock.advanceAsync(2000);
  assert.equal(await failAndReconnect(h), 800, 'after a healthy stream the next reconnect waits the initial delay, not 6400 ms');
  // The reset starts the sequence over; failures without a healthy stream in between still double.
  assert.equal(await failAndReconnect(h), 1600);
  h.ctrl.abort();
  await h.done;
});

void test('a quiet stream open for the backoff cap resets the backoff without an event', async () => {
  const h = await start();
  assert.deepEqual([await failAndReconnect(h), await failAndReconnect(h)], [800, 1600]);
  await h.clock.advanceAsync(29_999);
  assert.equal(await failAndReconnect(h), 3200, 'open 30 s less 1 ms with no event: not yet shown healthy');
  await h.clock.advanceAsync(30_000);
  assert.equal(await failAndReconnect(h), 800, 'open 30 s: no faster than the capped backoff would retry anyway');
  h.ctrl.abort();
  await h.done;
});

void test('a quiet stream the server accepted (answered 200) and held for minHealthyStreamMs resets the backoff without an event', async () => {
  const h = await start();
  assert.deepEqual([await failAndReconnect(h), await failAndReconnect(h), await failAndReconnect(h)], [800, 1600, 3200]);
  h.source.lastStream().open();
  await h.clock.advanceAsync(1000);
  assert.equal(await failAndReconnect(h), 800, 'a namespace with no change since the reconnect is no sign of a broken path');
  // Accepted but cut within the second: a path dropping every connection just after the answer keeps backing off.
  h.source.lastStream().open();
  await h.clock.advanceAsync(999);
  assert.equal(await failAndReconnect(h), 1600);
  h.ctrl.abort();
  await h.done;
});

void test('a watch the server answers with an error after a wait (a queued 429) does not reset the backoff, however long it took', async () => {
  const h = await start();
  assert.deepEqual([await failAndReconnect(h), await failAndReconnect(h)], [800, 1600]);
  await h.clock.advanceAsync(5000);
  const throttled = new ApiError({ verb: 'watch', kind: 'Pod' }, 429, { reason: 'TooManyRequests' }, 1);
  assert.equal(await failAndReconnect(h, throttled), 3200, 'never answered 200: the wait was a queue, not a healthy stream');
  h.ctrl.abort();
  await h.done;
});

void test('a stream that fails within minHealthyStreamMs of opening, an ERROR-only stream, and a refused sink do not reset the backoff', async () => {
  const h = await start();
  assert.equal(await failAndReconnect(h), 800);
  // A flapping path that replays an event and drops the connection at once.
  h.source.lastStream().push('ADDED', obj('a', '2'));
  await h.clock.advanceAsync(500);
  assert.equal(await failAndReconnect(h), 1600, 'an event on a stream that lived 0.5 s does not prove the path healthy');
  await h.clock.advanceAsync(2000);
  h.source.lastStream().push('ERROR', { code: 500, message: 'internal' } as unknown as KubeObject);
  await settle();
  assert.equal(h.restarts.at(-1)!.delayMs, 3200, 'an ERROR event is no delivery');
  h.ctrl.abort();
  await h.done;

  const source = new FakeListWatcher();
  const clock = new FakeClock(1_000_000);
  const ctrl = new AbortController();
  const delays: number[] = [];
  const done = runWatcher(
    source,
    (ev) => {
      if (ev.type === 'applied') throw new Error('store bug');
    },
    ctrl.signal,
    { clock, random: () => 0, hooks: { onRestart: (_r, info) => delays.push(info.delayMs) } },
  );
  await settle();
  source.lastStream().fail(new Error('connection reset'));
  await clock.advanceAsync(800);
  await clock.advanceAsync(2000);
  source.lastStream().push('ADDED', obj('a', '2'));
  await settle();
  assert.deepEqual(delays, [800, 1600], 'an event the sink refused was not delivered');
  ctrl.abort();
  await done;
});

void test('a 410 after a healthy stream relists at once even when the previous failure was a 410 too', async () => {
  const h = await start();
  h.source.lastStream().push('ERROR', { code: 410 } as unknown as KubeObject);
  await settle();
  assert.equal(h.restarts.at(-1)!.delayMs, 0);
  h.source.lastStream().push('ADDED', obj('a', '70'));
  await h.clock.advanceAsync(30_000);
  h.source.lastStream().push('ERROR', { code: 410 } as unknown as KubeObject);
  await settle();
  assert.deepEqual(
    h.restarts.map((r) => [r.reason, r.delayMs]),
    [
      ['gone', 0],
      ['gone', 0],
    ],
    'the 410s were 30 s of healthy watching apart: not back to back',
  );
  h.ctrl.abort();
  await h.done;
});

void test('a long watch stream holds none of the objects it already delivered (no reaction per event on a stream-long promise)', async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const source = new FakeListWatcher();
  const ctrl = new AbortController();
  let delivered = 0;
  const done = runWatcher(source, (ev) => void (ev.type === 'applied' && delivered++), ctrl.signal, {
    clock: new FakeClock(1_000_000),
    random: () => 0,
  });
  await settle();
  const refs: WeakRef<KubeObject>[] = [];
  const stream = source.watchCalls[0]!.stream;
  for (let i = 0; i < 200; i++) {
    const o = { ...obj(`p-${i}`, String(10 + i)), spec: { payload: 'x'.repeat(1000) } };
    refs.push(new WeakRef(o));
    stream.push('MODIFIED', o);
    await settle(1);
  }
  await settle();
  assert.equal(delivered, 200);
  gc();
  await settle();
  gc();
  const alive = refs.slice(0, 199).filter((r) => r.deref() !== undefined).length;
  ctrl.abort();
  await done;
  assert.equal(alive, 0, `${alive} of the 199 earlier events' objects are still reachable while the stream stays open`);
});

/** A source that streams its state (WatchList), and the bookmark that ends the initial events at `rv`. */
function streamingSource(): FakeListWatcher {
  const source = new FakeListWatcher();
  source.initialEvents = true;
  return source;
}
function endOfState(rv: string): KubeObject {
  return { kind: 'Pod', metadata: { resourceVersion: rv, annotations: { 'k8s.io/initial-events-end': 'true' } } } as KubeObject;
}
const shape = (e: WatcherEvent) =>
  e.type === 'page' ? { names: e.objects.map((o) => o.metadata.name), first: e.first, last: e.last, initial: e.initial } : e.type;

void test('WatchList: the state comes from the watch (one page per object, closed by the bookmark); no list, then a plain watch', async () => {
  const source = streamingSource();
  const listed: number[] = [];
  const events: WatcherEvent[] = [];
  const ctrl = new AbortController();
  const clock = new FakeClock(1_000_000);
  const done = runWatcher(source, (ev) => void events.push(ev), ctrl.signal, {
    clock,
    random: () => 0,
    hooks: { onList: (count) => listed.push(count) },
  });
  await settle();
  assert.equal(source.listCalls.length, 0, 'no list request');
  assert.equal(source.watchCalls[0]!.sendInitialEvents, true);
  assert.equal(source.watchCalls[0]!.resourceVersion, '', 'the current state, not a window');
  const s = source.lastStream();
  s.push('ADDED', obj('a', '7'));
  s.push('ADDED', obj('b', '5'));
  s.push('BOOKMARK', endOfState('10'));
  s.push('MODIFIED', obj('a', '11'));
  await settle();
  assert.deepEqual(events.map(shape), [
    { names: ['a'], first: true, last: false, initial: true },
    { names: ['b'], first: false, last: false, initial: true },
    { names: [], first: false, last: true, initial: true },
    'applied',
  ]);
  assert.deepEqual(listed, [2]);
  // A server timeout of a healthy stream: the watch resumes from the last event, without asking for the state again.
  await clock.advanceAsync(1000);
  s.end();
  await settle();
  assert.equal(source.watchCalls.length, 2);
  assert.equal(source.watchCalls[1]!.resourceVersion, '11');
  assert.equal(source.watchCalls[1]!.sendInitialEvents, undefined);
  ctrl.abort();
  await done;
});

void test('WatchList: a stream broken before the bookmark starts the state over (first page again), never resuming from an object of it', async () => {
  const h = await start(streamingSource());
  h.source.lastStream().push('ADDED', obj('a', '9'));
  await settle();
  h.source.lastStream().fail(new Error('connection reset'));
  await settle();
  await h.clock.advanceAsync(800);
  assert.equal(h.source.watchCalls.length, 2);
  assert.equal(h.source.watchCalls[1]!.resourceVersion, '', "the object's resourceVersion 9 is no point to resume from");
  assert.equal(h.source.watchCalls[1]!.sendInitialEvents, true);
  h.source.lastStream().push('ADDED', obj('b', '3'));
  h.source.lastStream().push('BOOKMARK', endOfState('12'));
  await settle();
  assert.deepEqual(h.events.map(shape), [
    { names: ['a'], first: true, last: false, initial: true },
    { names: ['b'], first: true, last: false, initial: true },
    { names: [], first: false, last: true, initial: true },
  ]);
  assert.equal(h.source.listCalls.length, 0);
  h.ctrl.abort();
  await h.done;
});

void test('WatchList: a 410 after the state streams the state again (pages not initial), from no resourceVersion', async () => {
  const h = await start(streamingSource());
  h.source.lastStream().push('BOOKMARK', endOfState('10'));
  await settle();
  h.source.lastStream().push('ERROR', { kind: 'Status', code: 410, reason: 'Expired' } as unknown as KubeObject);
  await settle();
  assert.equal(h.source.watchCalls.length, 2);
  assert.deepEqual(
    { rv: h.source.watchCalls[1]!.resourceVersion, send: h.source.watchCalls[1]!.sendInitialEvents },
    { rv: '', send: true },
  );
  h.source.lastStream().push('BOOKMARK', endOfState('20'));
  await settle();
  assert.deepEqual(h.events.map(shape).at(-1), { names: [], first: true, last: true, initial: false });
  h.ctrl.abort();
  await h.done;
});

void test('WatchList: a server that refuses sendInitialEvents as invalid (422) is listed at once, and from then on', async () => {
  const source = streamingSource();
  source.watchError = new ApiError({ verb: 'watch', kind: 'Pod' }, 422, { reason: 'Invalid', code: 422 });
  const h = await start(source);
  assert.equal(h.restarts[0]?.reason, 'error');
  assert.equal(h.restarts[0]?.delayMs, 0);
  assert.equal(source.listCalls.length, 1, 'listed instead');
  assert.equal(source.watchCalls.at(-1)!.sendInitialEvents, undefined);
  assert.equal(source.watchCalls.at(-1)!.resourceVersion, '1', 'then watches from the list');
  h.source.lastStream().push('ERROR', { kind: 'Status', code: 410, reason: 'Expired' } as unknown as KubeObject);
  await settle();
  assert.equal(source.listCalls.length, 2, 'a 410 lists again, not a second WatchList attempt');
  h.ctrl.abort();
  await h.done;
});

void test('watchList: false lists even from a source that can stream its state', async () => {
  const source = streamingSource();
  const ctrl = new AbortController();
  const done = runWatcher(source, () => undefined, ctrl.signal, { clock: new FakeClock(0), random: () => 0, watchList: false });
  await settle();
  assert.equal(source.listCalls.length, 1);
  assert.equal(source.watchCalls[0]!.sendInitialEvents, undefined);
  ctrl.abort();
  await done;
});
