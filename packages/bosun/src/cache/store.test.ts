import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject } from '../client/types.js';
import {
  CONTROLLER_INDEX,
  IndexConflictError,
  builtinIndexers,
  IndexerError,
  LABEL_INDEX,
  NAMESPACE_INDEX,
  OWNER_INDEX,
  LAST_APPLIED_ANNOTATION,
  Store,
  UnknownIndexError,
  stripForCache,
  stripManagedFields,
} from './store.js';

function pod(ns: string, name: string, extra: Partial<KubeObject['metadata']> = {}, spec?: unknown): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { namespace: ns, name, resourceVersion: '1', ...extra }, spec };
}

const names = (objs: KubeObject[]): string[] => objs.map((o) => o.metadata.name ?? '').sort();

void test('get by key and by name, list, remove', () => {
  const s = new Store();
  s.upsert(pod('a', 'p1'));
  s.upsert({ metadata: { name: 'cluster-thing' } });
  assert.equal(s.get('a/p1')?.metadata.name, 'p1');
  assert.equal(s.getByName('a', 'p1')?.metadata.name, 'p1');
  assert.equal(s.get('cluster-thing')?.metadata.name, 'cluster-thing');
  assert.equal(s.size, 2);
  assert.equal(s.remove('a/p1')?.metadata.name, 'p1');
  assert.equal(s.get('a/p1'), undefined);
  assert.equal(s.remove('a/p1'), undefined);
});

void test('owner, controller, label and namespace indexes follow updates and removals', () => {
  const s = new Store(builtinIndexers);
  const owner = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u1', controller: true };
  s.upsert(pod('a', 'p1', { labels: { app: 'x', tier: 'web' }, ownerReferences: [owner] }));
  s.upsert(pod('a', 'p2', { labels: { app: 'x' }, ownerReferences: [{ ...owner, uid: 'u2', controller: false }] }));
  s.upsert(pod('b', 'p3', { labels: { app: 'y' } }));
  assert.deepEqual(names(s.byIndex(OWNER_INDEX, 'u1')), ['p1']);
  assert.deepEqual(names(s.byIndex(CONTROLLER_INDEX, 'u2')), [], 'non-controller owners are not in the controller index');
  assert.deepEqual(names(s.byIndex(LABEL_INDEX, 'app=x')), ['p1', 'p2']);
  assert.deepEqual(names(s.byIndex(NAMESPACE_INDEX, 'a')), ['p1', 'p2']);

  // Relabel p1: the old value must no longer find it.
  s.upsert(pod('a', 'p1', { labels: { app: 'y' }, ownerReferences: [] }));
  assert.deepEqual(names(s.byIndex(LABEL_INDEX, 'app=x')), ['p2']);
  assert.deepEqual(names(s.byIndex(LABEL_INDEX, 'app=y')), ['p1', 'p3']);
  assert.deepEqual(s.byIndex(OWNER_INDEX, 'u1'), []);
  assert.deepEqual(s.byIndex(LABEL_INDEX, 'tier=web'), []);

  s.remove('b/p3');
  assert.deepEqual(names(s.byIndex(LABEL_INDEX, 'app=y')), ['p1']);
  assert.deepEqual(s.byIndex(NAMESPACE_INDEX, 'b'), []);
});

void test('custom field indexers index existing and new objects; unknown names and conflicts are named errors', () => {
  const s = new Store();
  s.upsert(pod('a', 'p1', {}, { nodeName: 'n1' }));
  const byNode = (o: KubeObject): string[] => {
    const n = (o.spec as { nodeName?: string } | undefined)?.nodeName;
    return n ? [n] : [];
  };
  s.addIndexer('node', byNode);
  s.upsert(pod('a', 'p2', {}, { nodeName: 'n1' }));
  s.upsert(pod('a', 'p3', {}, { nodeName: 'n2' }));
  assert.deepEqual(names(s.byIndex('node', 'n1')), ['p1', 'p2']);
  s.addIndexer('node', byNode);
  assert.throws(() => s.addIndexer('node', () => []), IndexConflictError);
  assert.throws(() => s.byIndex('nope', 'x'), UnknownIndexError);
});

void test('stripManagedFields removes managedFields and keeps annotations', () => {
  const o = pod('a', 'p', {
    managedFields: [{ manager: 'kubectl' }],
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
  });
  stripManagedFields(o);
  assert.equal('managedFields' in o.metadata, false);
  assert.ok(o.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration']);
});

void test('lookups stay fast with many objects (Map-backed, not scans)', () => {
  const s = new Store(builtinIndexers);
  const n = 50_000;
  for (let i = 0; i < n; i++) s.upsert(pod(`ns${i % 10}`, `p${i}`, { labels: { i: String(i) } }));
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    s.get(`ns${i % 10}/p${i}`);
    s.byIndex(LABEL_INDEX, `i=${i}`);
  }
  const perOp = (performance.now() - t0) / n;
  // A linear scan would take ~1 ms per lookup at this size; a map lookup takes microseconds.
  assert.ok(perOp < 0.05, `lookup took ${perOp} ms`);
});

void test('objects handed out are deep-frozen: mutating one throws and leaves the store and its indexes as they were', () => {
  const s = new Store(builtinIndexers);
  s.upsert(pod('a', 'p1', { labels: { app: 'x' } }, { containers: [{ name: 'main', image: 'busybox' }] }));
  const got = s.get('a/p1')!;
  assert.throws(() => {
    got.metadata.labels!.app = 'y';
  }, TypeError);
  assert.throws(() => {
    (got.spec as { containers: { image: string }[] }).containers[0]!.image = 'evil';
  }, TypeError);
  assert.throws(() => {
    delete got.metadata.labels;
  }, TypeError);
  assert.deepEqual(names(s.byIndex(LABEL_INDEX, 'app=x')), ['p1']);
  assert.deepEqual(s.byIndex(LABEL_INDEX, 'app=y'), []);
  assert.equal((s.list()[0]!.spec as { containers: { image: string }[] }).containers[0]!.image, 'busybox');
});

void test('removal and replacement use the index values stored with the key, not values recomputed later', () => {
  // An indexer whose answer drifts between calls stands for any change of what it reads after the object was indexed.
  let suffix = 'old';
  const s = new Store({ drift: (o) => [`${o.metadata.name ?? ''}-${suffix}`] });
  s.upsert(pod('a', 'p1'));
  s.upsert(pod('a', 'p2'));
  suffix = 'new';
  s.remove('a/p1');
  assert.deepEqual(s.indexKeys('drift', 'p1-old'), [], 'the removed key is gone from the value it was indexed under');
  s.upsert({ ...pod('a', 'p2'), metadata: { ...pod('a', 'p2').metadata, resourceVersion: '2' } });
  assert.deepEqual(s.indexKeys('drift', 'p2-old'), [], 'a replaced object leaves its old index value');
  assert.deepEqual(s.indexKeys('drift', 'p2-new'), ['a/p2']);
});

void test('a throwing indexer leaves the store and every index as they were, and names the index and the key', () => {
  const s = new Store({
    first: (o) => [o.metadata.labels?.v ?? ''],
    second: (o) => {
      if (o.metadata.labels?.v === 'bad') throw new Error('boom');
      return [o.metadata.labels?.v ?? ''];
    },
  });
  s.upsert(pod('a', 'p1', { labels: { v: 'good' } }));
  assert.throws(
    () => s.upsert(pod('a', 'p1', { labels: { v: 'bad' }, resourceVersion: '2' })),
    (e: unknown) => e instanceof IndexerError && /'second'/.test(e.message) && /a\/p1/.test(e.message),
  );
  assert.equal(s.get('a/p1')?.metadata.labels?.v, 'good');
  assert.deepEqual(s.indexKeys('first', 'good'), ['a/p1']);
  assert.deepEqual(s.indexKeys('second', 'good'), ['a/p1']);
  assert.deepEqual(s.indexKeys('first', 'bad'), []);
});

void test('a store has no index until one is registered or ensured; ensureIndex indexes what is stored and refuses unknown names', () => {
  const s = new Store();
  s.upsert(pod('a', 'p1', { labels: { app: 'x' } }));
  assert.equal(s.hasIndex(LABEL_INDEX), false);
  assert.throws(() => s.byIndex(LABEL_INDEX, 'app=x'), UnknownIndexError);
  s.ensureIndex(LABEL_INDEX);
  s.ensureIndex(LABEL_INDEX);
  assert.deepEqual(names(s.byIndex(LABEL_INDEX, 'app=x')), ['p1']);
  assert.throws(() => s.ensureIndex('nope'), UnknownIndexError);
});

void test('stripForCache drops managedFields and the last-applied annotation, keeping other annotations', () => {
  const o = pod('a', 'p', { managedFields: [{ manager: 'kubectl' }], annotations: { [LAST_APPLIED_ANNOTATION]: '{}', keep: 'me' } });
  stripForCache(o);
  assert.equal('managedFields' in o.metadata, false);
  assert.deepEqual(o.metadata.annotations, { keep: 'me' });
  const only = pod('a', 'q', { annotations: { [LAST_APPLIED_ANNOTATION]: '{}' } });
  assert.equal('annotations' in stripForCache(only).metadata, false, 'an emptied annotations map goes too');
});
