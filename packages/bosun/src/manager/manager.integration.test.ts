// Shutdown and leadership against a real API server: what matters is the order of writes the API
// server sees (the last reconcile's write, then the Lease release), which only the real Lease shows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient } from '../client/client.js';
import { ConfigMap, Event, Lease } from '../client/resources.js';
import { controller } from '../controller/builder.js';
import { withFinalizer } from '../writes/finalizer.js';
import { eventually, startTestEnv, type TestEnv } from '../tooling/envtest/testenv.js';
import { silentLogger } from '../telemetry/logger.js';
import { CacheSyncTimeoutError, LeaderElectionLostError, Manager, type ManagerOptions } from './manager.js';

let env: TestEnv;
let ns: string;
let admin: KubeClient;

before(async () => {
  env = await startTestEnv();
  ns = await env.namespace('manager');
  admin = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
});

after(async () => {
  admin?.close();
  await env?.cleanup();
});

const TIMING = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };

/** A reconciler that blocks until the test lets it go, recording the signal it was given. */
function blockingReconciler() {
  let letGo!: () => void;
  const gate = new Promise<void>((r) => (letGo = r));
  let entered!: (signal: AbortSignal) => void;
  const running = new Promise<AbortSignal>((r) => (entered = r));
  const state = { finishedAt: 0, signal: undefined as AbortSignal | undefined, abortedAt: 0 };
  const spec = controller(`blocker-${Math.random().toString(36).slice(2, 7)}`)
    .for(ConfigMap)
    .reconcile(async (req, ctx) => {
      if (req.name !== 'blocker') return;
      state.signal = ctx.signal;
      ctx.signal.addEventListener('abort', () => (state.abortedAt = Date.now()), { once: true });
      entered(ctx.signal);
      // Blocks on the test's gate or the signal, whichever comes first, as a write honouring ctx.signal would.
      await Promise.race([gate, new Promise((r) => ctx.signal.addEventListener('abort', r, { once: true }))]);
      state.finishedAt = Date.now();
    });
  return { spec, letGo, running, state };
}

function manager(extra: Partial<ManagerOptions> = {}): Manager {
  return new Manager({ client: KubeClient.fromConfig({ kubeconfig: env.kubeconfig }), namespaces: [ns], logger: silentLogger(), ...extra });
}

async function readLease(name: string): Promise<Lease> {
  return admin.get<Lease>(Lease, ns, name);
}

async function makeBlocker(): Promise<void> {
  await admin.delete(ConfigMap, ns, 'blocker').catch(() => {});
  await admin.create(ConfigMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'blocker', namespace: ns }, data: { a: '1' } });
}

void test('on SIGTERM the Lease stays with this replica, renewed, until the in-flight reconcile finishes; then it is released', async () => {
  const b = blockingReconciler();
  const mgr = manager({ leaderElection: { namespace: ns, name: 'drain-lock', identity: 'old-leader', ...TIMING } });
  mgr.add(b.spec);
  const ac = new AbortController();
  const done = mgr.start(ac.signal);
  await makeBlocker();
  await b.running;
  const before = await readLease('drain-lock');
  assert.equal(before.spec?.holderIdentity, 'old-leader');

  ac.abort();
  // Held past a whole lease duration: the elector keeps renewing while the reconcile drains.
  const renewed = await eventually(
    'a renew after the stop signal',
    async () => {
      const l = await readLease('drain-lock');
      assert.equal(l.spec?.holderIdentity, 'old-leader', 'the Lease was released while a reconcile was still running');
      return Date.parse(l.spec?.renewTime ?? '') > Date.parse(before.spec?.renewTime ?? '') + TIMING.leaseDurationMs ? l : undefined;
    },
    15_000,
    100,
  );
  assert.equal(renewed.spec?.holderIdentity, 'old-leader');
  assert.equal(b.state.signal?.aborted, false, 'a graceful stop leaves the reconcile signal alone');

  b.letGo();
  await done;
  const released = await readLease('drain-lock');
  assert.equal(released.spec?.holderIdentity ?? '', '', 'released after the drain');
  assert.ok(b.state.finishedAt > 0);
  assert.ok(
    Date.parse(released.spec?.renewTime ?? '') >= b.state.finishedAt - 1000,
    'the release was written after the reconcile finished',
  );
});

void test('losing the Lease aborts the in-flight reconcile at once and start() rejects with LeaderElectionLostError', async () => {
  const b = blockingReconciler();
  const mgr = manager({ leaderElection: { namespace: ns, name: 'lost-lock', identity: 'victim', ...TIMING } });
  mgr.add(b.spec);
  const ac = new AbortController();
  const done = mgr.start(ac.signal);
  const outcome = done.then(
    () => undefined,
    (err: unknown) => err,
  );
  await makeBlocker();
  const signal = await b.running;
  // Another replica takes the Lease over (as after a partition): the next renew sees it.
  const l = await readLease('lost-lock');
  const takenAt = Date.now();
  await admin.update<Lease>(Lease, {
    ...l,
    spec: { ...l.spec, holderIdentity: 'usurper', leaseTransitions: (l.spec?.leaseTransitions ?? 0) + 1 },
  });
  await eventually('the reconcile signal to abort', async () => (signal.aborted ? true : undefined), 10_000, 20);
  assert.ok(b.state.abortedAt - takenAt <= TIMING.retryPeriodMs * 2 + 1000, `aborted ${b.state.abortedAt - takenAt} ms after the takeover`);
  const err = await outcome;
  assert.ok(err instanceof LeaderElectionLostError, `start() should reject with LeaderElectionLostError, got ${String(err)}`);
  assert.match(err.message, /lost-lock/);
  assert.equal((await readLease('lost-lock')).spec?.holderIdentity, 'usurper', 'a replica that lost does not touch the new holder’s Lease');
  b.letGo();
});

void test('a drain longer than shutdownTimeoutMs is cut at the timeout: the reconcile signal aborts then', async () => {
  const b = blockingReconciler();
  const mgr = manager({ shutdownTimeoutMs: 1_500 });
  mgr.add(b.spec);
  const ac = new AbortController();
  const done = mgr.start(ac.signal);
  await makeBlocker();
  const signal = await b.running;
  const stoppedAt = Date.now();
  ac.abort();
  await done;
  const took = Date.now() - stoppedAt;
  assert.equal(signal.aborted, true, 'the reconcile was aborted at the timeout');
  assert.ok(b.state.abortedAt - stoppedAt >= 1_400, `aborted ${b.state.abortedAt - stoppedAt} ms after the stop, before the timeout`);
  assert.ok(took < 1_500 + 2_000, `start() took ${took} ms to return after the stop`);
  b.letGo();
});

void test('a kind whose CRD is not installed fails start() at the cache-sync timeout, naming the kind, the verb and the fix', async () => {
  const Widget = { group: 'nowhere.bosun.dev', version: 'v1', kind: 'Widget', plural: 'widgets', namespaced: true };
  const mgr = manager({ cacheSyncTimeoutMs: 2_000 });
  mgr.add(
    controller('widgets')
      .for(Widget)
      .reconcile(async () => {}),
  );
  const t0 = Date.now();
  const err = await mgr.start(new AbortController().signal).then(
    () => undefined,
    (e: unknown) => e,
  );
  const took = Date.now() - t0;
  assert.ok(err instanceof CacheSyncTimeoutError, `expected CacheSyncTimeoutError, got ${String(err)}`);
  assert.match(err.message, /widgets\.nowhere\.bosun\.dev/);
  assert.match(err.message, /cannot watch widgets\.nowhere\.bosun\.dev: 404/);
  assert.match(err.message, /the CRD is not installed/);
  assert.match(err.message, /kubectl apply -f config\/crd/);
  assert.ok(took >= 1_900 && took < 2_000 + 3_000, `failed after ${took} ms with a 2 s timeout`);
});

void test('metrics: active workers follow the running reconcile; cache objects count what the cache holds', async () => {
  const b = blockingReconciler();
  const mgr = manager();
  mgr.add(b.spec);
  const ac = new AbortController();
  const done = mgr.start(ac.signal);
  await makeBlocker();
  await b.running;
  const active = (n: number) => new RegExp(`^controller_runtime_active_workers\\{controller="${b.spec.name}"\\} ${n}$`, 'm');
  // Reconciles of the namespace's other ConfigMaps return at once; the blocked one stays.
  await eventually(
    'active workers at 1 while the reconcile blocks',
    async () => (active(1).test(await mgr.metrics.metricsText()) ? true : undefined),
    10_000,
  );
  const inNamespace = (await admin.list(ConfigMap, { namespace: ns })).items.length;
  await eventually(
    `bosun_cache_objects{resource="configmaps"} ${inNamespace}`,
    async () =>
      new RegExp(`^bosun_cache_objects\\{resource="configmaps"\\} ${inNamespace}$`, 'm').test(await mgr.metrics.metricsText())
        ? true
        : undefined,
    10_000,
  );
  assert.match(
    await mgr.metrics.metricsText(),
    new RegExp(`^controller_runtime_max_concurrent_reconciles\\{controller="${b.spec.name}"\\} 16$`, 'm'),
    'the default worker count',
  );
  b.letGo();
  await eventually('active workers back to 0', async () => (active(0).test(await mgr.metrics.metricsText()) ? true : undefined), 10_000);
  ac.abort();
  await done;
});

void test('watch restarts are counted under the resource that failed, not *', async () => {
  const Gadget = { group: 'nowhere.bosun.dev', version: 'v1', kind: 'Gadget', plural: 'gadgets', namespaced: true };
  const mgr = manager({ cacheSyncTimeoutMs: 1_500 });
  mgr.add(
    controller('gadgets')
      .for(Gadget)
      .reconcile(async () => {}),
  );
  await assert.rejects(mgr.start(new AbortController().signal), CacheSyncTimeoutError);
  const text = await mgr.metrics.metricsText();
  assert.match(text, /^bosun_watch_restarts_total\{resource="gadgets\.nowhere\.bosun\.dev",reason="error"\} [1-9]\d*$/m);
  assert.doesNotMatch(text, /resource="\*"/);
});

void test('Events recorded by the last reconcile are written before start() returns', async () => {
  const cm = await admin.create(ConfigMap, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'eventer', namespace: ns },
    data: { a: '1' },
  });
  const ac = new AbortController();
  const spec = controller('eventer')
    .for(ConfigMap)
    .reconcile(async (req, ctx) => {
      if (req.name !== 'eventer' || ac.signal.aborted) return;
      // Many objects, so neither the spam filter nor aggregation folds them: 100 separate writes.
      for (let i = 0; i < 100; i++)
        ctx.events.normal({ ...cm, metadata: { ...cm.metadata, name: `eventer-${i}`, uid: `uid-${i}` } }, 'Tested', `event ${i}`);
      // Stop at once: the Events are still being written when the drain begins.
      ac.abort();
    });
  const mgr = manager();
  mgr.add(spec);
  await mgr.start(ac.signal);
  const events = await admin.list(Event, { namespace: ns, fieldSelector: 'reason=Tested' });
  assert.equal(events.items.length, 100, 'every Event recorded before the stop was written');
});

void test("a reconcile run again the moment the last one returns waits until the cache shows that one's own write", async () => {
  // Each key is added again (by the label patch) while its first reconcile runs, so the second starts the moment
  // the first returns: right after its finalizer write, often before that write's watch event has arrived.
  const FINALIZER = 'bosun.dev/own-write-test';
  const names = Array.from({ length: 20 }, (_, i) => `own-write-${i}`);
  for (const name of names)
    await admin.create(ConfigMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { a: '1' } });
  const seen = new Map<string, boolean[]>();
  const spec = controller('own-write')
    .for(ConfigMap)
    .reconcile(async (req, ctx) => {
      if (!names.includes(req.name)) return;
      const cm = ctx.cache.get(ConfigMap, ns, req.name);
      if (!cm) return;
      const runs = seen.get(req.name) ?? [];
      seen.set(req.name, runs);
      runs.push((cm.metadata.finalizers ?? []).includes(FINALIZER));
      if (runs.length !== 1) return;
      await ctx.client.patch(ConfigMap, ns, req.name, { metadata: { labels: { touched: 'yes' } } }, 'merge');
      const touched = await eventually(
        'the label patch in the cache',
        async () => {
          const c = ctx.cache.get(ConfigMap, ns, req.name);
          return c?.metadata.labels?.touched === 'yes' ? c : undefined;
        },
        10_000,
        1,
      );
      await withFinalizer(ctx, ConfigMap, touched, FINALIZER, { apply: () => undefined, cleanup: () => undefined });
    });
  const mgr = manager();
  mgr.add(spec);
  const ac = new AbortController();
  const done = mgr.start(ac.signal);
  try {
    await eventually(
      'a second reconcile of each',
      async () => (names.every((n) => (seen.get(n)?.length ?? 0) >= 2) ? true : undefined),
      30_000,
    );
    const stale = names.filter((n) => seen.get(n)![1] !== true);
    assert.deepEqual(stale, [], 'every second reconcile saw the finalizer its first one added');
  } finally {
    ac.abort();
    await done;
    for (const name of names) {
      await admin.patch(ConfigMap, ns, name, { metadata: { finalizers: null } }, 'merge');
      await admin.delete(ConfigMap, ns, name);
    }
  }
});
