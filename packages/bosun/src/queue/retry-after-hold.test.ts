// A key the server asked to come back later (a 429's Retry-After) is not run again before then,
// even when a watch event marks it dirty while it is processing or while it waits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './clock.js';
import { ItemExponentialRateLimiter } from './ratelimiter.js';
import { WorkQueue } from './workqueue.js';

function newQueue(): { q: WorkQueue; clock: FakeClock } {
  const clock = new FakeClock();
  return { q: new WorkQueue({ clock, rateLimiter: new ItemExponentialRateLimiter({ baseDelayMs: 5, maxDelayMs: 1000 }) }), clock };
}

void test("an event during the reconcile that got a Retry-After does not run the key before the server's time", async () => {
  const { q, clock } = newQueue();
  q.add('a');
  assert.equal(await q.get(), 'a');
  q.add('a'); // the object changed while its reconcile waited out the throttle
  q.addRateLimited('a', 16_000, { hold: true });
  q.done('a');
  assert.equal(q.len(), 0, 'not ready at once');
  clock.advance(15_999);
  assert.equal(q.len(), 0, 'not ready before the Retry-After');
  clock.advance(1);
  assert.equal(q.len(), 1, 'ready once the Retry-After has passed');
  assert.equal(await q.get(), 'a');
});

void test('an event while the key waits out a Retry-After joins the wait; after it, events run at once again', async () => {
  const { q, clock } = newQueue();
  q.add('a');
  assert.equal(await q.get(), 'a');
  q.addRateLimited('a', 16_000, { hold: true });
  q.done('a');
  clock.advance(5_000);
  q.add('a');
  assert.equal(q.len(), 0, 'the event waits for the rest of the Retry-After');
  clock.advance(11_000);
  assert.equal(q.len(), 1);
  assert.equal(await q.get(), 'a');
  q.forget('a');
  q.done('a');
  q.add('a');
  assert.equal(q.len(), 1, 'no hold once the Retry-After is over');
});

void test('a plain backoff (no hold) is bypassed by an event, as in client-go', async () => {
  const { q } = newQueue();
  q.add('a');
  assert.equal(await q.get(), 'a');
  q.add('a');
  q.addRateLimited('a', 16_000);
  q.done('a');
  assert.equal(q.len(), 1, 'the dirty key runs again at once');
});
