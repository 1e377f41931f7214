import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Controller, type ChangeSource, type ControllerLogger } from './controller.js';
import type { WatchChange } from '../predicate/predicate.js';

const quiet: ControllerLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** A change source held in memory: synced when the test says so, changes pushed by hand. */
class MemorySource implements ChangeSource {
  readonly name = 'memory';
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
  ctrl.watch(src, (c) => [{ namespace: c.object.metadata.namespace, name: c.object.metadata.name ?? '', key: `${c.object.metadata.namespace}/${c.object.metadata.name}` }]);
  const run = ctrl.start(drain.signal);
  src.push(configMap('ns', 'a'));
  src.markSynced();
  await run;
  assert.deepEqual(seen, ['ns/a']);
});
