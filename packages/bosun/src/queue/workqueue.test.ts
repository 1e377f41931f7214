import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock, realClock, settle, type Clock } from './clock.js';
import { ItemExponentialRateLimiter } from './ratelimiter.js';
import { WorkQueue, type QueueMetrics } from './workqueue.js';

function newQueue(metrics?: QueueMetrics): { q: WorkQueue; clock: FakeClock } {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock, rateLimiter: new ItemExponentialRateLimiter(), metrics });
  return { q, clock };
}

void test('adds of a pending key coalesce into one', async () => {
  const { q } = newQueue();
  q.add('a');
  q.add('b');
  q.add('a');
  q.add('a');
  assert.equal(q.len(), 2);
  assert.equal(await q.get(), 'a');
  assert.equal(await q.get(), 'b');
  assert.equal(q.len(), 0);
});

void test('a key being processed is not handed to a second worker', async () => {
  const { q } = newQueue();
  q.add('a');
  assert.equal(await q.get(), 'a');
  q.add('a');
  assert.equal(q.len(), 0, 'a processing key waits in the dirty set, not the queue');
  let second: string | undefined = 'pending';
  const p = q.get().then((k) => (second = k));
  await settle();
  assert.equal(second, 'pending', 'second worker must block while the key is processing');
  q.done('a');
  await p;
  assert.equal(second, 'a', 'done re-queues the dirty key');
});

void test('a burst of adds during processing yields exactly one more round', async () => {
  const { q } = newQueue();
  q.add('a');
  await q.get();
  for (let i = 0; i < 10; i++) q.add('a');
  q.done('a');
  assert.equal(q.len(), 1);
  assert.equal(await q.get(), 'a');
  q.done('a');
  assert.equal(q.len(), 0);
});

void test('done without a dirty add does not requeue', async () => {
  const { q } = newQueue();
  q.add('a');
  await q.get();
  q.done('a');
  assert.equal(q.len(), 0);
});

void test('blocked getters are served in FIFO order as keys arrive', async () => {
  const { q } = newQueue();
  const got: (string | undefined)[] = [];
  const p1 = q.get().then((k) => got.push(k));
  const p2 = q.get().then((k) => got.push(k));
  q.add('x');
  q.add('y');
  await Promise.all([p1, p2]);
  assert.deepEqual(got, ['x', 'y']);
  assert.equal(q.processingCount(), 2);
});

void test('addAfter delivers in deadline order, not call order', async () => {
  const { q, clock } = newQueue();
  q.addAfter('late', 300);
  q.addAfter('early', 100);
  q.addAfter('mid', 200);
  q.add('now');
  assert.equal(q.len(), 1);
  assert.equal(q.delayedCount(), 3);
  clock.advance(99);
  assert.equal(q.len(), 1);
  clock.advance(201);
  assert.equal(q.len(), 4);
  const order = [await q.get(), await q.get(), await q.get(), await q.get()];
  assert.deepEqual(order, ['now', 'early', 'mid', 'late']);
});

void test('addAfter keeps the earlier deadline when a key is delayed twice', () => {
  const { q, clock } = newQueue();
  q.addAfter('a', 500);
  q.addAfter('a', 100);
  q.addAfter('a', 900);
  clock.advance(100);
  assert.equal(q.len(), 1);
  clock.advance(1000);
  assert.equal(q.len(), 1, 'stale delayed entries must not add the key again');
});

void test('addAfter with zero delay adds immediately', () => {
  const { q } = newQueue();
  q.addAfter('a', 0);
  assert.equal(q.len(), 1);
});

/** Node's setTimeout treats a delay above 2^31-1 ms as 1 ms; this fake clock does the same and counts timers armed. */
class NodeLikeClock extends FakeClock {
  armed = 0;

  override setTimeout(fn: () => void, ms: number): unknown {
    this.armed++;
    return super.setTimeout(fn, ms > 2 ** 31 - 1 ? 1 : ms);
  }
}

void test('addAfter beyond the 2^31-1 ms timer limit waits the whole delay without spinning', () => {
  const clock = new NodeLikeClock();
  const q = new WorkQueue({ clock, rateLimiter: new ItemExponentialRateLimiter() });
  const delay = 30 * 24 * 3600 * 1000;
  q.addAfter('a', delay);
  clock.advance(1000);
  assert.ok(clock.armed <= 1, `the delay timer was armed ${clock.armed} times in the first second`);
  clock.advance(delay - 1001);
  assert.equal(q.len(), 0, 'the key is not ready before its deadline');
  assert.ok(clock.armed <= 3, `the delay timer was armed ${clock.armed} times over 30 days`);
  clock.advance(1);
  assert.equal(q.len(), 1, 'the key is ready at its deadline');
});

void test('an earlier addAfter still fires on time while a beyond-limit delay is waiting', () => {
  const clock = new NodeLikeClock();
  const q = new WorkQueue({ clock, rateLimiter: new ItemExponentialRateLimiter() });
  q.addAfter('far', 2 ** 32);
  q.addAfter('near', 50);
  clock.advance(50);
  assert.equal(q.len(), 1);
  assert.equal(q.delayedCount(), 1, 'the far key is still waiting');
});

void test('with real timers, a beyond-limit addAfter does not wake the queue every millisecond', async () => {
  let armed = 0;
  const counting: Clock = { ...realClock, setTimeout: (fn, ms) => (armed++, realClock.setTimeout(fn, ms)) };
  const q = new WorkQueue({ clock: counting, rateLimiter: new ItemExponentialRateLimiter() });
  q.addAfter('a', 2 ** 31 + 60_000);
  // A window is the only way to count wakeups that should not happen; 50 ms is 50 wakeups when spinning.
  await new Promise((resolve) => setTimeout(resolve, 50));
  q.shutdown();
  assert.ok(armed <= 1, `the delay timer was armed ${armed} times in 50 ms`);
});

void test('addRateLimited backs off 5, 10, 20 ms and forget resets it', () => {
  const { q, clock } = newQueue();
  const readyAfter = (): number => {
    let waited = 0;
    while (q.len() === 0) {
      clock.advance(1);
      waited++;
    }
    return waited;
  };
  const delays: number[] = [];
  for (let i = 0; i < 3; i++) {
    q.addRateLimited('a');
    delays.push(readyAfter());
    void q.get();
    q.done('a');
  }
  assert.deepEqual(delays, [5, 10, 20]);
  assert.equal(q.numRequeues('a'), 3);
  q.forget('a');
  q.addRateLimited('a');
  assert.equal(readyAfter(), 5);
});

void test('addRateLimited honours a caller floor such as Retry-After', () => {
  const { q, clock } = newQueue();
  q.addRateLimited('a', 2000);
  clock.advance(1999);
  assert.equal(q.len(), 0);
  clock.advance(1);
  assert.equal(q.len(), 1);
});

void test('shutdown resolves blocked getters with undefined and ignores later adds', async () => {
  const { q, clock } = newQueue();
  const p = q.get();
  q.addAfter('d', 10);
  q.shutdown();
  assert.equal(await p, undefined);
  q.add('a');
  clock.advance(100);
  assert.equal(q.len(), 0);
  assert.equal(await q.get(), undefined);
  assert.equal(clock.pendingTimers(), 0, 'the delay timer is cancelled');
});

void test('shutDownWithDrain waits for in-flight keys to be done', async () => {
  const { q } = newQueue();
  q.add('a');
  q.add('b');
  await q.get();
  let drained = false;
  const p = q.shutDownWithDrain().then(() => (drained = true));
  await settle();
  assert.equal(drained, false);
  q.add('a');
  q.done('a');
  await p;
  assert.equal(drained, true);
  assert.equal(await q.get(), undefined, 'the dropped pending key b is not delivered');
});

void test('metrics observe add, queue wait, work time, retry and depth', async () => {
  const events: string[] = [];
  const { q, clock } = newQueue({
    onAdd: (k) => events.push(`add ${k}`),
    onGet: (k, w) => events.push(`get ${k} ${w}`),
    onDone: (k, w) => events.push(`done ${k} ${w}`),
    onRetry: (k) => events.push(`retry ${k}`),
    onDepth: (d) => events.push(`depth ${d}`),
  });
  q.add('a');
  q.add('a');
  clock.advance(7);
  await q.get();
  clock.advance(3);
  q.done('a');
  q.addRateLimited('a');
  assert.deepEqual(events, ['add a', 'depth 1', 'get a 7', 'depth 0', 'done a 3', 'retry a']);
});
