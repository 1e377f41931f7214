import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convergeLimitMs, countersMoved } from './quiet.js';

void test('countersMoved: watch-event bytes alone mean still busy (an initial state streamed through a watch)', () => {
  const last = new Map([
    ['WATCH pods', 1],
    ['KiB of watch events', 100],
    ['LIST pods', 1],
  ]);
  assert.equal(countersMoved(last, new Map(last)), false);
  assert.equal(countersMoved(last, new Map([...last, ['KiB of watch events', 180]])), true);
  assert.equal(countersMoved(last, new Map([...last, ['KiB answered', 3]])), true);
  assert.equal(countersMoved(last, new Map([...last, ['LIST pods', 2]])), true);
  // Opening another watch is counted once and then stays: not activity by itself.
  assert.equal(countersMoved(last, new Map([...last, ['WATCH pods', 2]])), false);
});

void test('convergeLimitMs: 15 minutes up to 15,000 Messages, then 60 ms per Message', () => {
  assert.equal(convergeLimitMs(1000), 900_000);
  assert.equal(convergeLimitMs(50_000), 3_000_000);
});
