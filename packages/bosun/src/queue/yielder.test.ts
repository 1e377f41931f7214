import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Yielder } from './yielder.js';

void test('once the budget is spent every caller awaits the same event-loop turn, then a new budget starts', async () => {
  const y = new Yielder(5);
  let immediateRan = false;
  setImmediate(() => (immediateRan = true));
  const start = performance.now();
  assert.equal(y.maybeYield(start), undefined, 'within the budget no await is needed');
  const first = y.maybeYield(start + 10_000);
  assert.ok(first, 'past the budget the caller must yield');
  assert.equal(y.maybeYield(start), first, 'a second worker waits for the same turn instead of running on');
  await first;
  assert.equal(immediateRan, true, 'the yield let an already queued setImmediate run');
  assert.equal(y.maybeYield(), undefined, 'after the turn a new budget starts');
});
