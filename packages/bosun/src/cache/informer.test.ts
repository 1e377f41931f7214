import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject, ResourceType } from '../client/types.js';
import { settle } from '../queue/clock.js';
import { FakeListWatcher } from '../watch/testing.js';
import type { WatchChange } from './change.js';
import type { ChangeSource } from '../controller/controller.js';
import { CacheSet, Informer } from './informer.js';
import { CONTROLLER_INDEX, LABEL_INDEX, NAMESPACE_INDEX, OWNER_INDEX, builtinIndexers } from './store.js';

function pod(ns: string, name: string, rv: string, labels?: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { namespace: ns, name, resourceVersion: rv, labels, managedFields: [{ manager: 'x' }] },
  };
}

function recorder(): { log: string[]; handler: (c: WatchChange) => void } {
  const log: string[] = [];
  return {
    log,
    handler: (c) => {
      if (c.type === 'update')
        log.push(`update ${c.object.metadata.name} ${c.old.metadata.resourceVersion}->${c.object.metadata.resourceVersion}`);
      else log.push(`${c.type} ${c.object.metadata.name}`);
    },
  };
}

void test('syncs from the first list, strips managedFields, and notifies subscribers after the store is updated', async (t) => {
  const src = new FakeListWatcher();
  src.pages = [{ items: [pod('a', 'p1', '1'), pod('a', 'p2', '2')], resourceVersion: '2' }];
  const inf = new Informer(() => src);
  const { log, handler } = recorder();
  let storeSawIt = false;
  inf.subscribe(handler);
  inf.subscribe((c) => (storeSawIt ||= inf.store.get(`a/${c.object.metadata.name}`) === c.object));
  const ctrl = new AbortController();
  // A failed assertion must not leave watchers running and the test process hanging.
  t.after(() => ctrl.abort());
  assert.equal(inf.hasSynced(), false);
  const run = inf.start(ctrl.signal);
  assert.equal(await inf.waitForSync(), true);
  await settle();
  assert.deepEqual(log, ['add p1', 'add p2']);
  assert.ok(storeSawIt, 'subscribers run after the store holds the object');
  assert.equal(inf.store.get('a/p1')?.metadata.managedFields, undefined);

  const s = src.lastStream();
  s.push('MODIFIED', pod('a', 'p1', '3'));
  s.push('MODIFIED', pod('a', 'p1', '3'));
  s.push('ADDED', pod('a', 'p3', '4'));
  s.push('DELETED', pod('a', 'p2', '5'));
  await settle();
  assert.deepEqual(log.slice(2), ['update p1 1->3', 'add p3', 'delete p2']);
  assert.equal(inf.store.get('a/p2'), undefined);
  assert.equal(inf.store.size, 2);
  ctrl.abort();
  await run;
});

void test('a relist synthesizes deletes for vanished objects, updates for changed ones, adds for new ones', async (t) => {
  const src = new FakeListWatcher();
  src.pages = [{ items: [pod('a', 'keep', '1'), pod('a', 'change', '1'), pod('a', 'gone', '1')], resourceVersion: '1' }];
  const inf = new Informer(() => src, { indexers: { [LABEL_INDEX]: builtinIndexers[LABEL_INDEX]! } });
  const { log, handler } = recorder();
  inf.subscribe(handler);
  const ctrl = new AbortController();
  // A failed assertion must not leave watchers running and the test process hanging.
  t.after(() => ctrl.abort());
  const run = inf.start(ctrl.signal);
  await inf.waitForSync();
  await settle();
  log.length = 0;
  src.pages = [{ items: [pod('a', 'keep', '1'), pod('a', 'change', '7', { v: '2' }), pod('a', 'new', '8')], resourceVersion: '9' }];
  src.lastStream().push('ERROR', { code: 410 } as unknown as KubeObject);
  await settle();
  assert.deepEqual(log.sort(), ['add new', 'delete gone', 'update change 1->7']);
  assert.deepEqual(inf.store.keys().sort(), ['a/change', 'a/keep', 'a/new']);
  assert.deepEqual(
    inf.store.byIndex(LABEL_INDEX, 'v=2').map((o) => o.metadata.name),
    ['change'],
    'indexes follow relist updates',
  );
  ctrl.abort();
  await run;
});

void test('a state streamed by the watch (WatchList) syncs the store, and after a 410 replaces it as a relist does', async (t) => {
  const src = new FakeListWatcher();
  src.initialEvents = true;
  const end = (rv: string) => ({ metadata: { resourceVersion: rv, annotations: { 'k8s.io/initial-events-end': 'true' } } }) as KubeObject;
  const inf = new Informer(() => src);
  const { log, handler } = recorder();
  inf.subscribe(handler);
  const ctrl = new AbortController();
  t.after(() => ctrl.abort());
  const run = inf.start(ctrl.signal);
  await settle();
  src.lastStream().push('ADDED', pod('a', 'keep', '1'));
  src.lastStream().push('ADDED', pod('a', 'change', '1'));
  src.lastStream().push('ADDED', pod('a', 'gone', '1'));
  await settle();
  assert.equal(inf.hasSynced(), false, 'not synced before the bookmark that ends the state');
  src.lastStream().push('BOOKMARK', end('1'));
  assert.equal(await inf.waitForSync(), true);
  assert.equal(src.listCalls.length, 0);
  assert.equal(inf.store.get('a/keep')?.metadata.managedFields, undefined, 'the transform applies as to a list');
  log.length = 0;
  src.lastStream().push('ERROR', { code: 410 } as unknown as KubeObject);
  await settle();
  src.lastStream().push('ADDED', pod('a', 'keep', '1'));
  src.lastStream().push('ADDED', pod('a', 'change', '7'));
  src.lastStream().push('ADDED', pod('a', 'new', '8'));
  await settle();
  assert.ok(inf.store.get('a/gone'), 'nothing is deleted before the state is complete');
  src.lastStream().push('BOOKMARK', end('9'));
  await settle();
  assert.deepEqual(log.sort(), ['add new', 'delete gone', 'update change 1->7']);
  assert.deepEqual(inf.store.keys().sort(), ['a/change', 'a/keep', 'a/new']);
  ctrl.abort();
  await run;
});

void test('one watcher per namespace; a relist in one namespace does not delete objects of another', async (t) => {
  const sources = new Map<string | undefined, FakeListWatcher>();
  for (const ns of ['a', 'b']) {
    const s = new FakeListWatcher();
    s.pages = [{ items: [pod(ns, `${ns}1`, '1')], resourceVersion: '1' }];
    sources.set(ns, s);
  }
  const inf = new Informer((ns) => sources.get(ns)!, { namespaces: ['b', 'a', 'a'] });
  const ctrl = new AbortController();
  // A failed assertion must not leave watchers running and the test process hanging.
  t.after(() => ctrl.abort());
  const run = inf.start(ctrl.signal);
  await inf.waitForSync();
  await settle();
  assert.deepEqual(inf.store.keys().sort(), ['a/a1', 'b/b1']);
  const a = sources.get('a')!;
  a.pages = [{ items: [], resourceVersion: '5' }];
  a.lastStream().push('ERROR', { code: 410 } as unknown as KubeObject);
  await settle();
  assert.deepEqual(inf.store.keys(), ['b/b1']);
  ctrl.abort();
  await run;
});

void test('hasSynced waits for every namespace; waitForSync returns false on abort', async (t) => {
  const slow = new FakeListWatcher();
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const origList = slow.list.bind(slow);
  slow.list = async (o) => {
    await gate;
    return origList(o);
  };
  const fast = new FakeListWatcher();
  const inf = new Informer((ns) => (ns === 'slow' ? slow : fast), { namespaces: ['fast', 'slow'] });
  const ctrl = new AbortController();
  // A failed assertion must not leave watchers running and the test process hanging.
  t.after(() => ctrl.abort());
  const run = inf.start(ctrl.signal);
  await settle();
  assert.equal(inf.hasSynced(), false);
  const abortWait = new AbortController();
  const w = inf.waitForSync(abortWait.signal);
  abortWait.abort();
  assert.equal(await w, false);
  release();
  assert.equal(await inf.waitForSync(), true);
  await settle();
  ctrl.abort();
  await run;
});

void test('a late subscriber gets the cached objects replayed as adds; a throwing subscriber does not break the cache', async (t) => {
  const src = new FakeListWatcher();
  src.pages = [{ items: [pod('a', 'p1', '1')], resourceVersion: '1' }];
  const errors: string[] = [];
  const inf = new Informer(() => src, { onSubscriberError: (_e, c) => errors.push(`${c.type} ${c.object.metadata.name}`) });
  inf.subscribe(() => {
    throw new Error('bad subscriber');
  });
  const ctrl = new AbortController();
  // A failed assertion must not leave watchers running and the test process hanging.
  t.after(() => ctrl.abort());
  const run = inf.start(ctrl.signal);
  await inf.waitForSync();
  await settle();
  const { log, handler } = recorder();
  const off = inf.subscribe(handler);
  assert.deepEqual(log, ['add p1']);
  src.lastStream().push('ADDED', pod('a', 'p2', '2'));
  await settle();
  assert.equal(inf.store.size, 2);
  assert.deepEqual(errors, ['add p1', 'add p2']);
  off();
  src.lastStream().push('ADDED', pod('a', 'p3', '3'));
  await settle();
  assert.deepEqual(log, ['add p1', 'add p2']);
  ctrl.abort();
  await run;
});

void test('CacheSet shares one informer per type and scope and starts late informers', async (t) => {
  const Pod: ResourceType = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true };
  const Ns: ResourceType = { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false };
  const calls: string[] = [];
  const set = new CacheSet((type, ns, scope) => {
    calls.push(`${type.plural} ${ns ?? '*'} ${scope.labelSelector ?? ''}`);
    return new FakeListWatcher();
  });
  const a = set.informerFor(Pod, { namespaces: ['x', 'y'] });
  const b = set.informerFor(Pod, { namespaces: ['y', 'x'] });
  const c = set.informerFor(Pod, { namespaces: ['x', 'y'], labelSelector: 'app=z' });
  assert.equal(a, b);
  assert.notEqual(a, c);
  const ctrl = new AbortController();
  // A failed assertion must not leave watchers running and the test process hanging.
  t.after(() => ctrl.abort());
  const run = set.start(ctrl.signal);
  assert.equal(await set.waitForSync(), true);
  // Namespaces are ignored for cluster-scoped types; created after start, it starts at once.
  const n = set.informerFor(Ns, { namespaces: ['x'] });
  assert.equal(await n.waitForSync(), true);
  assert.deepEqual(calls.sort(), ['namespaces * ', 'pods x ', 'pods x app=z', 'pods y ', 'pods y app=z']);
  ctrl.abort();
  await run;
});

void test('CacheSet: a scope with a transform stores what it returns (after managedFields are stripped), and gets an informer per transform', async (t) => {
  const Pod: ResourceType = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true };
  const sources: FakeListWatcher[] = [];
  const set = new CacheSet(() => {
    const s = new FakeListWatcher();
    s.pages = [
      { items: [{ ...pod('a', 'p1', '1'), status: { phase: 'Running', hostIP: '10.0.0.1' } } as KubeObject], resourceVersion: '1' },
    ];
    sources.push(s);
    return s;
  });
  const seen: KubeObject[] = [];
  const phaseOnly = (o: KubeObject): KubeObject => {
    seen.push(o);
    return { ...o, status: { phase: (o.status as { phase?: string }).phase } };
  };
  const plain = set.informerFor(Pod, { namespaces: ['a'] });
  const pruned = set.informerFor(Pod, { namespaces: ['a'], transform: phaseOnly });
  assert.equal(set.informerFor(Pod, { namespaces: ['a'], transform: phaseOnly }), pruned, 'the same transform shares the informer');
  assert.notEqual(pruned, plain, 'a transform never changes what a watch without it caches');
  assert.notEqual(set.informerFor(Pod, { namespaces: ['a'], transform: (o) => o }), pruned);
  const ctrl = new AbortController();
  t.after(() => ctrl.abort());
  const run = set.start(ctrl.signal);
  assert.equal(await set.waitForSync(), true);
  assert.deepEqual(pruned.store.get('a/p1')?.status, { phase: 'Running' });
  assert.equal(seen[0]?.metadata.managedFields, undefined, 'the transform gets the object with managedFields stripped');
  assert.deepEqual(plain.store.get('a/p1')?.status, { phase: 'Running', hostIP: '10.0.0.1' });
  assert.ok(Object.isFrozen(pruned.store.get('a/p1')), 'what the transform returned is frozen like any stored object');
  ctrl.abort();
  await run;
});

void test('a subscriber that mutates the object it was given gets a TypeError, and the cache and its indexes stay right', async (t) => {
  const src = new FakeListWatcher();
  src.pages = [{ items: [pod('a', 'p1', '1', { app: 'x' })], resourceVersion: '1' }];
  const errors: unknown[] = [];
  const inf = new Informer(() => src, {
    indexers: { app: (o) => [o.metadata.labels?.app ?? ''] },
    onSubscriberError: (e) => errors.push(e),
  });
  inf.subscribe((c) => {
    c.object.metadata.labels!.app = 'mutated';
  });
  const ctrl = new AbortController();
  t.after(() => ctrl.abort());
  const run = inf.start(ctrl.signal);
  await inf.waitForSync();
  await settle();
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof TypeError, `expected a TypeError, got ${String(errors[0])}`);
  assert.equal(inf.store.get('a/p1')?.metadata.labels?.app, 'x');
  src.lastStream().push('DELETED', pod('a', 'p1', '2', { app: 'x' }));
  await settle();
  assert.deepEqual(inf.store.indexKeys('app', 'x'), [], 'the delete found the key under its real index value');
  assert.deepEqual(inf.store.indexKeys('app', 'mutated'), []);
  ctrl.abort();
  await run;
});

// Before the fix the list was replayed forever and the informer never synced: the timeout turns that hang into a failure.
void test(
  'an object whose transform or indexer throws is reported, counted and skipped; the watch goes on and indexes stay consistent',
  { timeout: 5000 },
  async (t) => {
    const src = new FakeListWatcher();
    src.pages = [{ items: [pod('a', 'p1', '1', { v: 'one' }), pod('a', 'broken-transform', '1')], resourceVersion: '1' }];
    const errors: string[] = [];
    const inf = new Informer(() => src, {
      transform: (o) => {
        if (o.metadata.name === 'broken-transform') throw new Error('transform bug');
        return o;
      },
      indexers: {
        v: (o) => {
          if (o.metadata.labels?.v === 'bad') throw new Error('indexer bug');
          return [o.metadata.labels?.v ?? ''];
        },
      },
      onObjectError: (err, obj) => errors.push(`${obj.metadata.name ?? ''}: ${(err as Error).message}`),
    });
    const { log, handler } = recorder();
    inf.subscribe(handler);
    const ctrl = new AbortController();
    t.after(() => ctrl.abort());
    const run = inf.start(ctrl.signal);
    assert.equal(await inf.waitForSync(), true, 'a bad object in the list does not keep the informer from syncing');
    await settle();
    const s = src.lastStream();
    s.push('MODIFIED', pod('a', 'p1', '2', { v: 'bad' }));
    s.push('ADDED', pod('a', 'p2', '3', { v: 'two' }));
    await settle();
    assert.equal(src.watchCalls.length, 1, 'no watch restart: the event is not replayed');
    assert.equal(src.listCalls.length, 1);
    assert.equal(errors.length, 2);
    assert.match(errors[0]!, /^broken-transform: transform bug/);
    assert.match(errors[1]!, /^p1: .*indexer bug/);
    assert.equal(inf.droppedObjects, 2);
    assert.deepEqual(log, ['add p1', 'add p2']);
    assert.equal(inf.store.get('a/p1')?.metadata.resourceVersion, '1', 'the skipped update leaves the last good version');
    assert.deepEqual(inf.store.indexKeys('v', 'one'), ['a/p1']);
    assert.deepEqual(inf.store.indexKeys('v', 'bad'), []);
    assert.deepEqual(inf.store.indexKeys('v', 'two'), ['a/p2']);
    ctrl.abort();
    await run;
  },
);

void test('an informer is a controller ChangeSource as it is: named, subscribe returns an unsubscribe, and it reports the last list error', async (t) => {
  const src = new FakeListWatcher();
  src.listError = new Error('403 forbidden: cannot list pods');
  const inf = Informer.forType(undefined as never, { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true });
  const asSource: ChangeSource = inf;
  assert.equal(asSource.name, 'pods');
  const fromFake = new Informer(() => src, { name: 'pods', watcher: { backoff: { initialMs: 1, maxMs: 1 } } });
  const seen: string[] = [];
  const off = fromFake.subscribe((c) => seen.push(`${c.type} ${c.object.metadata.name}`));
  const ctrl = new AbortController();
  t.after(() => ctrl.abort());
  const run = fromFake.start(ctrl.signal);
  while (src.listCalls.length === 0) await settle();
  await settle();
  assert.equal(fromFake.hasSynced(), false);
  assert.match(String((fromFake.lastError() as Error)?.message), /403 forbidden/);
  src.listError = undefined;
  src.pages = [{ items: [pod('a', 'p1', '1')], resourceVersion: '1' }];
  assert.equal(await fromFake.waitForSync(), true);
  assert.equal(fromFake.lastError(), undefined, 'a completed list clears the error');
  await settle();
  off();
  src.lastStream().push('ADDED', pod('a', 'p2', '2'));
  await settle();
  assert.deepEqual(seen, ['add p1'], 'nothing after unsubscribing');
  ctrl.abort();
  await run;
});

void test('an object deleted and re-created under the same name during a watch gap comes back from the relist as delete(old) + add(new)', async (t) => {
  const withUid = (o: KubeObject, uid: string, generation = 1): KubeObject => ({ ...o, metadata: { ...o.metadata, uid, generation } });
  const src = new FakeListWatcher();
  src.pages = [{ items: [withUid(pod('a', 'p1', '1'), 'uid-1'), withUid(pod('a', 'same', '1'), 'uid-s')], resourceVersion: '1' }];
  const inf = new Informer(() => src);
  const changes: string[] = [];
  inf.subscribe((c) => changes.push(`${c.type} ${c.object.metadata.name} ${c.object.metadata.uid}`));
  const ctrl = new AbortController();
  t.after(() => ctrl.abort());
  const run = inf.start(ctrl.signal);
  await inf.waitForSync();
  await settle();
  changes.length = 0;
  // The watch window expired while p1 was deleted and created again: same name, new uid, generation 1 again.
  src.pages = [{ items: [withUid(pod('a', 'p1', '9'), 'uid-2'), withUid(pod('a', 'same', '9'), 'uid-s', 2)], resourceVersion: '9' }];
  src.lastStream().push('ERROR', { code: 410 } as unknown as KubeObject);
  await settle();
  assert.deepEqual(changes, ['delete p1 uid-1', 'add p1 uid-2', 'update same uid-s']);
  assert.equal(inf.store.get('a/p1')?.metadata.uid, 'uid-2');
  // The same on a watch stream: an ADDED with a new uid where the DELETED was never seen.
  changes.length = 0;
  src.lastStream().push('ADDED', withUid(pod('a', 'p1', '10'), 'uid-3'));
  await settle();
  assert.deepEqual(changes, ['delete p1 uid-2', 'add p1 uid-3']);
  ctrl.abort();
  await run;
});

void test('memory: no index unless asked for, and the default transform drops managedFields and the last-applied annotation', async (t) => {
  const src = new FakeListWatcher();
  const big = pod('a', 'p1', '1', { app: 'x' });
  big.metadata.annotations = { 'kubectl.kubernetes.io/last-applied-configuration': '{"a":1}', keep: 'me' };
  src.pages = [{ items: [big], resourceVersion: '1' }];
  const inf = new Informer(() => src);
  const ctrl = new AbortController();
  t.after(() => ctrl.abort());
  const run = inf.start(ctrl.signal);
  await inf.waitForSync();
  for (const name of [OWNER_INDEX, CONTROLLER_INDEX, LABEL_INDEX, NAMESPACE_INDEX])
    assert.equal(inf.store.hasIndex(name), false, `${name} index built unasked`);
  const stored = inf.store.get('a/p1')!;
  assert.equal(stored.metadata.managedFields, undefined);
  assert.deepEqual(stored.metadata.annotations, { keep: 'me' });
  ctrl.abort();
  await run;
});

void test('a relist replaces the store page by page, and deletes what no page had only after the last page', async (t) => {
  const src = new FakeListWatcher();
  src.pages = [{ items: [pod('a', 'p1', '1'), pod('a', 'p2', '1'), pod('a', 'gone', '1')], resourceVersion: '1' }];
  const inf = new Informer(() => src);
  const changes: string[] = [];
  inf.subscribe((c) => changes.push(`${c.type} ${c.object.metadata.name}`));
  const ctrl = new AbortController();
  t.after(() => ctrl.abort());
  const run = inf.start(ctrl.signal);
  await inf.waitForSync();
  await settle();
  changes.length = 0;
  src.pages = [
    { items: [pod('a', 'p1', '5')], resourceVersion: '9', continue: '1' },
    { items: [pod('a', 'p2', '6')], resourceVersion: '9' },
  ];
  let atSecondPage: { p1?: string; gone: boolean; changes: string[] } | undefined;
  const list = src.list.bind(src);
  src.list = (o) => {
    if (o.continue === '1')
      atSecondPage = {
        p1: inf.store.get('a/p1')?.metadata.resourceVersion,
        gone: inf.store.get('a/gone') !== undefined,
        changes: [...changes],
      };
    return list(o);
  };
  src.lastStream().push('ERROR', { code: 410 } as unknown as KubeObject);
  await settle();
  assert.deepEqual(
    atSecondPage,
    { p1: '5', gone: true, changes: ['update p1'] },
    'page 1 is applied before page 2 is fetched; deletions wait for the end',
  );
  assert.deepEqual(changes, ['update p1', 'update p2', 'delete gone']);
  assert.deepEqual(inf.store.keys().sort(), ['a/p1', 'a/p2']);
  ctrl.abort();
  await run;
});

void test("an informer is behind while one namespace's watch is broken and not yet relisted, and says when that changes", async (t) => {
  const sources = new Map([
    ['a', new FakeListWatcher()],
    ['b', new FakeListWatcher()],
  ]);
  for (const [ns, s] of sources) s.pages = [{ items: [pod(ns, 'p', '1')], resourceVersion: '1' }];
  const inf = new Informer((ns) => sources.get(ns!)!, {
    namespaces: ['a', 'b'],
    watcher: { backoff: { initialMs: 1, maxMs: 1 }, resumeConfirmMs: 60_000 },
  });
  const heard: boolean[] = [];
  inf.onFreshness(() => heard.push(inf.isBehind()));
  const ctrl = new AbortController();
  t.after(() => ctrl.abort());
  const run = inf.start(ctrl.signal);
  await inf.waitForSync();
  await settle();
  assert.equal(inf.isBehind(), false);
  sources.get('a')!.lastStream().fail(new Error('connection reset'));
  sources
    .get('b')!
    .lastStream()
    .push('ERROR', { code: 410 } as unknown as KubeObject);
  // b relists at once and catches up; a is still behind.
  await settle();
  assert.equal(inf.isBehind(), true, 'namespace a has not resumed');
  while (sources.get('a')!.watchCalls.length < 2) await settle();
  sources
    .get('a')!
    .lastStream()
    .push('ADDED', pod('a', 'q', '2'));
  await settle();
  assert.equal(inf.isBehind(), false);
  assert.deepEqual(heard, [true, false], 'one report per change of isBehind()');
  ctrl.abort();
  await run;
});
