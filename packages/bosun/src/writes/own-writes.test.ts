import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubeObject } from '../client/types.js';
import { OwnWrites } from './own-writes.js';

const version = (rv: string): KubeObject => ({ metadata: { namespace: 'a', name: 'o', uid: 'uid-o', resourceVersion: rv } });

test('untilSeen waits while the cache shows the version an own write replaced, and resolves on the change that shows the write', async () => {
  const w = new OwnWrites();
  w.remember(version('1'), version('2'));
  let cached: KubeObject | undefined = version('1');
  let resolved = false;
  const waiting = w.untilSeen('a/o', () => cached, new AbortController().signal, 10_000).then(() => (resolved = true));
  w.changed('a/o');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(resolved, false, 'a change that still shows the replaced version does not release it');
  cached = version('2');
  w.changed('a/other');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(resolved, false, 'a change of another key does not release it');
  const t0 = performance.now();
  w.changed('a/o');
  await waiting;
  assert.ok(performance.now() - t0 < 1_000, 'released by that change, not by the 10 s bound');
});

test('untilSeen resolves when the object leaves the cache (the write completed its deletion), at the bound, or on abort', async () => {
  const w = new OwnWrites();
  w.remember(version('1'), version('2'));
  let cached: KubeObject | undefined = version('1');
  const gone = w.untilSeen('a/o', () => cached, new AbortController().signal, 10_000);
  cached = undefined;
  const t0 = performance.now();
  w.changed('a/o');
  await gone;
  assert.ok(performance.now() - t0 < 1_000, 'released by the deletion, not by the bound');

  cached = version('1');
  const t1 = performance.now();
  await w.untilSeen('a/o', () => cached, new AbortController().signal, 50);
  assert.ok(performance.now() - t1 >= 45, 'waited for the bound');

  const ac = new AbortController();
  const aborted = w.untilSeen('a/o', () => cached, ac.signal, 10_000);
  ac.abort();
  await aborted;
});

test('untilSeen returns at once when the cache shows no version an own write replaced', async () => {
  const w = new OwnWrites();
  const t0 = performance.now();
  await w.untilSeen('a/o', () => version('1'), new AbortController().signal, 10_000);
  w.remember(version('1'), version('2'));
  await w.untilSeen('a/o', () => version('2'), new AbortController().signal, 10_000);
  await w.untilSeen('a/o', () => version('7'), new AbortController().signal, 10_000);
  assert.ok(performance.now() - t0 < 1_000);
});
