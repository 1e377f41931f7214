import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stillWaiting } from './waiting.js';

void test('a wait says what it waits for after afterMs, then every everyMs, whatever the polling rate', () => {
  let t = 1_000_000;
  const lines: string[] = [];
  const tick = stillWaiting((l) => lines.push(l), 'kube-apiserver /readyz', { afterMs: 5_000, everyMs: 10_000, now: () => t });
  for (; t < 1_000_000 + 4_900; t += 100) tick();
  assert.deepEqual(lines, [], 'silent for a short wait');
  for (; t <= 1_000_000 + 26_000; t += 100) tick();
  assert.deepEqual(lines, [
    'bosun:   still waiting for kube-apiserver /readyz (5 s)',
    'bosun:   still waiting for kube-apiserver /readyz (15 s)',
    'bosun:   still waiting for kube-apiserver /readyz (25 s)',
  ]);
  t += 60_000;
  tick();
  assert.equal(lines.length, 4, 'a loop that stalled for a minute gets one line, not six');
  assert.equal(lines[3], 'bosun:   still waiting for kube-apiserver /readyz (86 s)');
});
