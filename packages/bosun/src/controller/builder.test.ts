import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeObject, ResourceType } from '../client/types.js';
import { controller } from './builder.js';

const Msg: ResourceType = { group: 'x.dev', version: 'v1', kind: 'Msg', plural: 'msgs', namespaced: true };
const Pod: ResourceType = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true };
const ConfigMap: ResourceType = { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true };

void test('owns and watches carry their cache transform into the spec the manager reads', () => {
  const slim = (o: KubeObject): KubeObject => ({ ...o, status: undefined });
  const spec = controller('c')
    .for(Msg)
    .owns(Pod, { transform: slim, labels: { a: 'b' } })
    .watches(ConfigMap, () => [], { transform: slim })
    .reconcile(async () => undefined);
  assert.equal(spec.owns[0]?.transform, slim);
  assert.deepEqual(spec.owns[0]?.labels, { a: 'b' });
  assert.equal(spec.watches[0]?.transform, slim);
  assert.equal(
    controller('d')
      .for(Msg)
      .owns(Pod)
      .reconcile(async () => undefined).owns[0]?.transform,
    undefined,
  );
});
