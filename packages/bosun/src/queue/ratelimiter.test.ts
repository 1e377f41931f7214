import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './clock.js';
import { ItemExponentialRateLimiter, MaxOfRateLimiter, TokenBucketRateLimiter, defaultControllerRateLimiter } from './ratelimiter.js';

void test('exponential backoff doubles from 5 ms per key and is capped at 1000 s', () => {
  const rl = new ItemExponentialRateLimiter();
  assert.deepEqual(
    [1, 2, 3, 4, 5].map(() => rl.when('a')),
    [5, 10, 20, 40, 80],
  );
  assert.equal(rl.numRequeues('a'), 5);
  // Another key has its own history.
  assert.equal(rl.when('b'), 5);
  for (let i = 0; i < 100; i++) rl.when('a');
  assert.equal(rl.when('a'), 1_000_000);
});

void test('exponential backoff honours custom base and cap', () => {
  const rl = new ItemExponentialRateLimiter({ baseDelayMs: 100, maxDelayMs: 350 });
  assert.deepEqual([rl.when('k'), rl.when('k'), rl.when('k'), rl.when('k')], [100, 200, 350, 350]);
});

void test('forget resets the backoff of one key only', () => {
  const rl = new ItemExponentialRateLimiter();
  rl.when('a');
  rl.when('a');
  rl.when('b');
  rl.forget('a');
  assert.equal(rl.numRequeues('a'), 0);
  assert.equal(rl.when('a'), 5);
  assert.equal(rl.when('b'), 10);
});

void test('token bucket allows a burst, then spaces retries at the rate', () => {
  const clock = new FakeClock();
  const rl = new TokenBucketRateLimiter({ qps: 10, burst: 3, clock });
  assert.deepEqual([rl.when('a'), rl.when('b'), rl.when('c')], [0, 0, 0]);
  // Tokens are reserved, so successive callers queue behind each other at 100 ms intervals.
  assert.equal(rl.when('d'), 100);
  assert.equal(rl.when('e'), 200);
  clock.advance(1000);
  // 1 s refills 10 tokens, minus the 2 owed, capped at burst 3.
  assert.deepEqual([rl.when('f'), rl.when('g'), rl.when('h')], [0, 0, 0]);
  assert.equal(rl.when('i'), 100);
});

void test('token bucket defaults to burst 100 at 10 qps', () => {
  const clock = new FakeClock();
  const rl = new TokenBucketRateLimiter({ clock });
  for (let i = 0; i < 100; i++) assert.equal(rl.when(`k${i}`), 0);
  assert.equal(rl.when('x'), 100);
});

void test('max-of limiter returns the largest delay and forgets in all children', () => {
  const clock = new FakeClock();
  const exp = new ItemExponentialRateLimiter({ baseDelayMs: 1000 });
  const bucket = new TokenBucketRateLimiter({ qps: 1, burst: 1, clock });
  const rl = new MaxOfRateLimiter(exp, bucket);
  assert.equal(rl.when('a'), 1000);
  // Bucket now owes 1 s for the next token, exponential says 1000 for a new key: equal.
  assert.equal(rl.when('b'), 1000);
  // Third: bucket 2 s, exponential for 'a' 2 s.
  assert.equal(rl.when('a'), 2000);
  assert.equal(rl.numRequeues('a'), 2);
  rl.forget('a');
  assert.equal(rl.numRequeues('a'), 0);
});

void test('default controller limiter: 5 ms doubling for one key, bucket bites after 100 distinct keys', () => {
  const clock = new FakeClock();
  const rl = defaultControllerRateLimiter(clock);
  assert.deepEqual([rl.when('a'), rl.when('a'), rl.when('a')], [5, 10, 20]);
  for (let i = 0; i < 97; i++) rl.when(`k${i}`);
  // 100 tokens spent; the next new key would get 5 ms from exponential but waits for the bucket.
  assert.equal(rl.when('late'), 100);
});

void test('retries of failures the server never answered take no slot of the shared bucket: after an outage that failed 921 reconciles, none waits for (921 - 100) / 10 s', () => {
  const clock = new FakeClock();
  const answered = defaultControllerRateLimiter(clock);
  const unanswered = defaultControllerRateLimiter(clock);
  let lastAnswered = 0;
  let lastUnanswered = 0;
  // 921 keys failing once each, spread over a 6 s outage.
  for (let i = 0; i < 921; i++) {
    clock.advance(6000 / 921);
    lastAnswered = Math.max(lastAnswered, clock.now() + answered.when(`k${i}`));
    lastUnanswered = Math.max(lastUnanswered, clock.now() + unanswered.whenUnanswered!(`k${i}`));
  }
  assert.ok(
    lastAnswered - clock.now() > 70_000,
    `answered failures are paced by the bucket (last retry ${lastAnswered - clock.now()} ms after the outage)`,
  );
  assert.ok(
    lastUnanswered - clock.now() <= 5,
    `unanswered failures wait only their own backoff (last retry ${lastUnanswered - clock.now()} ms after the outage)`,
  );
  // The bucket is whole for the failures the server does answer once it is back.
  assert.equal(unanswered.when('k0'), 5, 'an answered failure after the outage: the per-key base step, not a bucket debt');
});

void test('the backoff of unanswered failures still doubles per key, and is capped at maxUnansweredDelayMs', () => {
  const rl = new ItemExponentialRateLimiter({ maxUnansweredDelayMs: 30_000 });
  const delays = Array.from({ length: 16 }, () => rl.whenUnanswered('a'));
  assert.deepEqual(delays.slice(0, 4), [5, 10, 20, 40]);
  assert.equal(Math.max(...delays), 30_000);
  assert.equal(rl.numRequeues('a'), 16, 'unanswered retries count as retries');
  const tb = new TokenBucketRateLimiter({ qps: 1, burst: 1, clock: new FakeClock() });
  assert.equal(tb.whenUnanswered('x'), 0);
  assert.equal(tb.when('x'), 0, 'the unanswered retry took no token');
});

void test('an answered failure after an outage starts its own backoff: the unanswered failures do not double it', () => {
  const rl = new ItemExponentialRateLimiter({ baseDelayMs: 5, maxDelayMs: 1_000_000 });
  for (let i = 0; i < 12; i++) rl.whenUnanswered('a');
  // The server answered (a 409, a 503 while it warms up): the first such failure waits the base delay, not 5 ms × 2^12.
  assert.deepEqual([rl.when('a'), rl.when('a'), rl.when('a')], [5, 10, 20]);
  assert.equal(rl.numRequeues('a'), 15, 'every retry still counts as a requeue');
  // Another outage after that starts again at the base too: the server was back in between.
  assert.equal(rl.whenUnanswered('a'), 5);
  rl.forget('a');
  assert.equal(rl.numRequeues('a'), 0);
});
