import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../telemetry/logger.js';
import { reportCacheSync, type SyncingCaches } from './progress.js';

function fakeCaches() {
  const kinds = [
    {
      type: { kind: 'Pod', group: '', plural: 'pods' },
      informer: {
        synced: false,
        store: { size: 0 },
        hasSynced() {
          return this.synced;
        },
      },
    },
    {
      type: { kind: 'Message', group: 'myorg.dev', plural: 'messages' },
      informer: {
        synced: false,
        store: { size: 0 },
        hasSynced() {
          return this.synced;
        },
      },
    },
  ];
  const caches: SyncingCaches = { entries: () => kinds, hasSynced: () => kinds.every((k) => k.informer.synced) };
  return { kinds, caches };
}

function capture() {
  const out: string[] = [];
  const log = createLogger({ format: 'json', destination: { write: (s: string) => void out.push(s) } });
  return { log, msgs: () => out.map((l) => (JSON.parse(l) as { msg: string }).msg) };
}

void test('every interval until the caches sync, one line per kind still listing says how many objects it has so far', (t) => {
  mock.timers.enable({ apis: ['setInterval', 'Date'] });
  t.after(() => mock.timers.reset());
  const { kinds, caches } = fakeCaches();
  const { log, msgs } = capture();
  const stop = reportCacheSync(caches, log, { intervalMs: 2_000 });
  kinds[0]!.informer.store.size = 300;
  kinds[1]!.informer.store.size = 7;
  kinds[1]!.informer.synced = true;
  mock.timers.tick(1_999);
  assert.deepEqual(msgs(), [], 'nothing before the first interval: kinds that sync fast are never reported');
  mock.timers.tick(1);
  assert.deepEqual(msgs(), ['synced 300 objects of kind Pod so far']);
  kinds[0]!.informer.store.size = 1_200;
  mock.timers.tick(2_000);
  assert.deepEqual(msgs().slice(1), ['synced 1200 objects of kind Pod so far']);
  kinds[0]!.informer.synced = true;
  mock.timers.tick(10_000);
  assert.equal(msgs().length, 2, 'silent once synced');
  stop();
});

void test('the reporter stops when its signal aborts', (t) => {
  mock.timers.enable({ apis: ['setInterval', 'Date'] });
  t.after(() => mock.timers.reset());
  const { caches } = fakeCaches();
  const { log, msgs } = capture();
  const ac = new AbortController();
  reportCacheSync(caches, log, { intervalMs: 1_000, signal: ac.signal });
  mock.timers.tick(1_000);
  assert.equal(msgs().length, 2);
  ac.abort();
  mock.timers.tick(5_000);
  assert.equal(msgs().length, 2);
});
