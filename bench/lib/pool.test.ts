import { test } from 'node:test';
import assert from 'node:assert/strict';
import { limiter } from './pool.js';

void test('limiter keeps at most its limit in flight and runs every task', async () => {
  const limit = limiter(3);
  let inFlight = 0;
  let most = 0;
  const release: (() => void)[] = [];
  const tasks = Array.from({ length: 10 }, (_, i) =>
    limit(async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise<void>((r) => release.push(r));
      inFlight--;
      return i;
    }),
  );
  // Release the running tasks one at a time until all have run.
  for (let done = 0; done < 10; done++) {
    while (release.length === 0) await new Promise((r) => setImmediate(r));
    assert.ok(inFlight <= 3, `${inFlight} in flight`);
    release.shift()!();
  }
  assert.deepEqual(await Promise.all(tasks), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(most, 3);
});
