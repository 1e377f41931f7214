import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedPod, desiredPod, printsCurrentText, statusFromPod, type Pod } from './pod.js';
import type { Message } from './resource.js';

const msg: Message = {
  apiVersion: 'myorg.dev/v1',
  kind: 'Message',
  metadata: { name: 'm', namespace: 'n', uid: 'u' },
  spec: { text: 'hi' },
};

function asServed(status: Pod['status'] & Record<string, unknown>): Pod {
  const want = desiredPod(msg);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...want.metadata, uid: 'p', resourceVersion: '7' },
    spec: { ...(want.spec as object), nodeName: 'node-0', tolerations: [{ key: 'k' }] },
    status,
  };
}

void test('the cached Pod keeps metadata, spec and everything statusFromPod reads, and no other status', () => {
  const cases: Pod[] = [
    asServed({
      phase: 'Running',
      hostIP: '10.0.0.1',
      podIP: '10.0.0.2',
      conditions: [{ type: 'Ready' }],
      containerStatuses: [{ state: { running: {} }, image: 'busybox', ready: true } as never],
    }),
    asServed({
      phase: 'Pending',
      containerStatuses: [{ state: { waiting: { reason: 'ErrImagePull', message: 'not found' } }, name: 'main' } as never],
    }),
    asServed({ phase: 'Failed', containerStatuses: [{ state: { terminated: { reason: 'Error' } } }] }),
    asServed({ phase: 'Pending' }),
  ];
  for (const full of cases) {
    const kept = cachedPod(full) as Pod;
    assert.deepEqual(statusFromPod(kept), statusFromPod(full));
    assert.equal(printsCurrentText(kept, msg), printsCurrentText(full, msg));
    assert.deepEqual(kept.metadata, full.metadata);
    assert.deepEqual(kept.spec, full.spec, 'applyChild compares the spec it applies with the cache');
    assert.deepEqual(Object.keys(kept.status ?? {}).sort(), full.status?.containerStatuses ? ['containerStatuses', 'phase'] : ['phase']);
  }
  const bare = asServed(undefined as never);
  delete bare.status;
  assert.equal(cachedPod(bare), bare, 'a Pod without status is kept as it is');
});
