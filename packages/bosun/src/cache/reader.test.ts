import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject, ResourceType } from '../client/types.js';
import { settle } from '../queue/clock.js';
import { FakeListWatcher } from '../watch/testing.js';
import { Informer } from './informer.js';
import { NotCachedError, cacheReader } from './reader.js';
import { CONTROLLER_INDEX, LABEL_INDEX, NAMESPACE_INDEX } from './store.js';

const PodT: ResourceType = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true };
const SecretT: ResourceType = { group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true };

function pod(ns: string, name: string, labels: Record<string, string> = {}, owner?: string): KubeObject {
  const ownerReferences = owner
    ? [{ apiVersion: 'example.com/v1', kind: 'Message', name: owner, uid: `uid-${owner}`, controller: true }]
    : undefined;
  return { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: ns, name, resourceVersion: '1', labels, ownerReferences } };
}

async function synced(items: KubeObject[], namespaces?: string[]): Promise<{ inf: Informer; stop: () => Promise<void> }> {
  const sources = new Map<string | undefined, FakeListWatcher>();
  const inf = new Informer(
    (ns) => {
      const src = new FakeListWatcher();
      src.pages = [{ items: items.filter((o) => ns === undefined || o.metadata.namespace === ns), resourceVersion: '1' }];
      sources.set(ns, src);
      return src;
    },
    { namespaces },
  );
  const ctrl = new AbortController();
  const run = inf.start(ctrl.signal);
  await inf.waitForSync();
  await settle();
  return {
    inf,
    stop: async () => {
      ctrl.abort();
      await run;
    },
  };
}

void test('a reader builds the index a query needs on first use, and answers get, list and ownedBy from its own informers only', async (t) => {
  const { inf, stop } = await synced([
    pod('a', 'p1', { app: 'x' }, 'm1'),
    pod('a', 'p2', { app: 'y' }),
    pod('b', 'p3', { app: 'x' }, 'm1'),
  ]);
  t.after(stop);
  const r = cacheReader([{ type: PodT, informer: inf }], "controller 'test'");
  assert.equal(r.get(PodT, 'a', 'p1')?.metadata.name, 'p1');
  assert.equal(inf.store.hasIndex(CONTROLLER_INDEX), false);
  assert.deepEqual(
    r
      .ownedBy(PodT, { metadata: { uid: 'uid-m1' } })
      .map((p) => p.metadata.name)
      .sort(),
    ['p1', 'p3'],
  );
  assert.equal(inf.store.hasIndex(CONTROLLER_INDEX), true);
  assert.deepEqual(
    r
      .list(PodT, { namespace: 'a' })
      .map((p) => p.metadata.name)
      .sort(),
    ['p1', 'p2'],
  );
  assert.equal(inf.store.hasIndex(NAMESPACE_INDEX), true, 'an all-namespaces informer gets a namespace index for namespace queries');
  assert.deepEqual(
    r
      .list(PodT, { labels: { app: 'x' } })
      .map((p) => p.metadata.name)
      .sort(),
    ['p1', 'p3'],
  );
  assert.equal(inf.store.hasIndex(LABEL_INDEX), true);
  assert.deepEqual(r.ownedBy(PodT, { metadata: {} }), [], 'an owner without uid owns nothing');
  assert.throws(
    () => r.get(SecretT, 'a', 's'),
    (e: unknown) => e instanceof NotCachedError && /Secret is not cached for controller 'test'.*\(Pod\)/.test(e.message),
  );
});

void test('a reader over two scopes of one kind sees their union once; a one-namespace informer needs no namespace index', async (t) => {
  const a = await synced([pod('a', 'p1', { team: 'a' }), pod('a', 'p2')], ['a']);
  const filtered = await synced([pod('a', 'p1', { team: 'a' })], ['a']);
  t.after(async () => {
    await a.stop();
    await filtered.stop();
  });
  const r = cacheReader([
    { type: PodT, informer: filtered.inf },
    { type: PodT, informer: a.inf },
  ]);
  assert.deepEqual(
    r
      .list(PodT)
      .map((p) => p.metadata.name)
      .sort(),
    ['p1', 'p2'],
  );
  assert.deepEqual(
    r
      .list(PodT, { namespace: 'a' })
      .map((p) => p.metadata.name)
      .sort(),
    ['p1', 'p2'],
  );
  assert.deepEqual(r.list(PodT, { namespace: 'b' }), []);
  assert.equal(a.inf.store.hasIndex(NAMESPACE_INDEX), false);
  assert.equal(r.get(PodT, 'a', 'p2')?.metadata.name, 'p2');
});
