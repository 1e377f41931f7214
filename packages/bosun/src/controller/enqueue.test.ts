import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubeObject, ResourceType } from '../client/types.js';
import { enqueueMapped, enqueueObject, enqueueOwner } from './enqueue.js';

const Message: ResourceType = { group: 'bosun.dev', version: 'v1', kind: 'Message', plural: 'messages', namespaced: true };
const Cluster: ResourceType = { group: 'bosun.dev', version: 'v1', kind: 'Cluster', plural: 'clusters', namespaced: false };

function pod(owner?: string, labels?: Record<string, string>, kind = 'Message'): KubeObject {
  return {
    metadata: {
      namespace: 'ns',
      name: 'p',
      labels,
      ownerReferences: owner ? [{ apiVersion: 'bosun.dev/v1', kind, name: owner, uid: `uid-${owner}`, controller: true }] : undefined,
    },
  };
}

const keys = (reqs: { key: string }[]) => reqs.map((r) => r.key).sort();

test('enqueueObject enqueues the object itself', () => {
  assert.deepEqual(keys(enqueueObject()({ type: 'add', object: pod() })), ['ns/p']);
});

test('enqueueOwner: an update that moves the controller reference wakes the previous owner and the new one', () => {
  const reqs = enqueueOwner(Message)({ type: 'update', old: pod('a'), object: pod('b') });
  assert.deepEqual(keys(reqs), ['ns/a', 'ns/b']);
});

test('enqueueOwner: an update that drops the controller reference still wakes the previous owner', () => {
  assert.deepEqual(keys(enqueueOwner(Message)({ type: 'update', old: pod('a'), object: pod() })), ['ns/a']);
});

test('enqueueOwner: an update with the same owner enqueues it once', () => {
  assert.deepEqual(keys(enqueueOwner(Message)({ type: 'update', old: pod('a'), object: pod('a') })), ['ns/a']);
});

test('enqueueOwner ignores owners of another kind and keys cluster-scoped owners without a namespace', () => {
  assert.deepEqual(keys(enqueueOwner(Message)({ type: 'add', object: pod('a', undefined, 'Other') })), []);
  assert.deepEqual(keys(enqueueOwner(Cluster)({ type: 'delete', object: pod('c', undefined, 'Cluster') })), ['c']);
});

test('enqueueMapped: a label change that re-targets the mapping wakes the old target and the new one, once each', () => {
  const map = (o: KubeObject) => [
    { namespace: 'ns', name: o.metadata.labels?.app ?? 'none' },
    { namespace: 'ns', name: 'always' },
  ];
  const reqs = enqueueMapped(map)({ type: 'update', old: pod(undefined, { app: 'x' }), object: pod(undefined, { app: 'y' }) });
  assert.deepEqual(keys(reqs), ['ns/always', 'ns/x', 'ns/y']);
});
