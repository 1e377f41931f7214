import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../queue/workqueue.js';
import { Metrics } from './metrics.js';

void test('controller metrics carry controller-runtime names and labels', async () => {
  const m = new Metrics({ processMetrics: false });
  m.registerController('messages', 4);
  m.reconcileDone('messages', 'success', 0.02);
  m.reconcileDone('messages', 'error', 0.5);
  m.reconcileDone('messages', 'requeue_after', 0.01);
  const text = await m.metricsText();
  assert.match(text, /^controller_runtime_reconcile_total\{controller="messages",result="success"\} 1$/m);
  assert.match(text, /^controller_runtime_reconcile_total\{controller="messages",result="error"\} 1$/m);
  assert.match(text, /^controller_runtime_reconcile_total\{controller="messages",result="requeue"\} 0$/m, 'declared results exist at zero');
  assert.match(text, /^controller_runtime_reconcile_total\{controller="messages",result="requeue_after"\} 1$/m);
  assert.match(text, /^controller_runtime_reconcile_errors_total\{controller="messages"\} 1$/m);
  assert.match(text, /^controller_runtime_reconcile_time_seconds_count\{controller="messages"\} 3$/m);
  assert.match(text, /^controller_runtime_reconcile_time_seconds_bucket\{le="0\.025",controller="messages"\} 2$/m);
  assert.match(text, /^controller_runtime_max_concurrent_reconciles\{controller="messages"\} 4$/m);
});

void test('queue hooks plugged into a WorkQueue feed the workqueue metrics', async () => {
  const m = new Metrics({ processMetrics: false });
  const q = new WorkQueue({ metrics: m.queueHooks('messages') });
  q.add('ns/a');
  q.add('ns/b');
  q.add('ns/a');
  const key = await q.get();
  assert.ok(key);
  q.addRateLimited(key);
  q.done(key);
  const text = await m.metricsText();
  q.shutdown();
  assert.match(text, /^workqueue_adds_total\{name="messages"\} 2$/m, 'a coalesced add is not counted');
  assert.match(text, /^workqueue_depth\{name="messages"\} 1$/m);
  assert.match(text, /^workqueue_queue_duration_seconds_count\{name="messages"\} 1$/m);
  assert.match(text, /^workqueue_work_duration_seconds_count\{name="messages"\} 1$/m);
  assert.match(text, /^workqueue_retries_total\{name="messages"\} 1$/m);
});

void test('watch, cache and leader metrics', async () => {
  const m = new Metrics({ processMetrics: false });
  m.watchRestarted('messages.example.com', 'gone');
  m.watchRestarted('messages.example.com', 'gone');
  m.cacheObjects('pods', 42);
  m.leader('bosun-lock', true);
  const text = await m.metricsText();
  assert.match(text, /^bosun_watch_restarts_total\{resource="messages\.example\.com",reason="gone"\} 2$/m);
  assert.match(text, /^bosun_cache_objects\{resource="pods"\} 42$/m);
  assert.match(text, /^leader_election_master_status\{name="bosun-lock"\} 1$/m);
});

void test('two Metrics in one process do not collide and include process metrics', async () => {
  const a = new Metrics();
  const b = new Metrics({ defaultLabels: { operator: 'b' } });
  a.reconcileDone('x', 'success', 0.1);
  const ta = await a.metricsText();
  const tb = await b.metricsText();
  assert.match(ta, /^process_cpu_user_seconds_total/m);
  assert.match(ta, /^controller_runtime_reconcile_total\{controller="x",result="success"\} 1$/m);
  assert.doesNotMatch(tb, /controller="x"/);
  assert.match(a.contentType, /^text\/plain/);
});

void test('active workers is set to the number of running reconciles', async () => {
  const m = new Metrics({ processMetrics: false });
  m.registerController('messages', 4);
  m.workersActive('messages', 3);
  assert.match(await m.metricsText(), /^controller_runtime_active_workers\{controller="messages"\} 3$/m);
  m.workersActive('messages', 0);
  assert.match(await m.metricsText(), /^controller_runtime_active_workers\{controller="messages"\} 0$/m);
});

void test('cache objects are read from their source at scrape time', async () => {
  const m = new Metrics({ processMetrics: false });
  let sizes = [
    { resource: 'pods', count: 3 },
    { resource: 'messages.myorg.dev', count: 2 },
    { resource: 'pods', count: 4 },
  ];
  m.cacheObjectsFrom(() => sizes);
  const first = await m.metricsText();
  assert.match(first, /^bosun_cache_objects\{resource="pods"\} 7$/m, 'two informers of one resource add up');
  assert.match(first, /^bosun_cache_objects\{resource="messages\.myorg\.dev"\} 2$/m);
  sizes = [{ resource: 'pods', count: 1 }];
  const second = await m.metricsText();
  assert.match(second, /^bosun_cache_objects\{resource="pods"\} 1$/m);
  assert.doesNotMatch(second, /messages\.myorg\.dev/, 'a resource no longer cached has no series');
});

void test('a hold shows as bosun_reconciles_held 1 until it ends, and each hold counts once', async () => {
  const m = new Metrics({ processMetrics: false });
  m.registerController('messages', 4);
  const text = () => m.metricsText();
  assert.match(await text(), /^bosun_reconciles_held\{controller="messages"\} 0$/m);
  assert.match(await text(), /^bosun_reconcile_holds_total\{controller="messages"\} 0$/m);
  m.reconcilesHeld('messages', ['messages.myorg.dev']);
  assert.match(await text(), /^bosun_reconciles_held\{controller="messages"\} 1$/m);
  m.reconcilesHeld('messages', []);
  m.reconcilesHeld('messages', ['pods']);
  m.reconcilesHeld('messages', []);
  assert.match(await text(), /^bosun_reconciles_held\{controller="messages"\} 0$/m);
  assert.match(await text(), /^bosun_reconcile_holds_total\{controller="messages"\} 2$/m);
});
