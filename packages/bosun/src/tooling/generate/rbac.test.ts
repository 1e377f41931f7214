// RBAC is derived from code; these tests pin the verbs per declaration and refuse wildcards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { controller } from '../../controller/builder.js';
import { ConfigMap, Deployment, Pod, Secret, Service } from '../../client/resources.js';
import type { ResourceType } from '../../client/types.js';
import {
  RbacDeclarationError,
  RbacWildcardError,
  assertNoWildcards,
  clusterRules,
  generateRbac,
  type PolicyRule,
  type RbacObject,
} from './rbac.js';

const Widget: ResourceType = { group: 'example.com', version: 'v1', kind: 'Widget', plural: 'widgets', namespaced: true };

function verbsFor(rules: PolicyRule[], group: string, resource: string): string[] {
  return rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r) => r.verbs);
}

const spec = controller('widget')
  .for(Widget)
  .owns(Deployment)
  .watches(ConfigMap, () => [])
  .writes(Service)
  .reconcile(async () => {});

void test('verbs follow the declaration: for, owns, watches, writes, plus Events', () => {
  const rules = clusterRules([spec]);
  assert.deepEqual(verbsFor(rules, 'example.com', 'widgets'), ['get', 'list', 'watch', 'update', 'patch']);
  assert.deepEqual(verbsFor(rules, 'example.com', 'widgets/status'), ['get', 'update', 'patch']);
  assert.deepEqual(verbsFor(rules, 'example.com', 'widgets/finalizers'), ['update']);
  assert.deepEqual(verbsFor(rules, 'apps', 'deployments'), ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']);
  assert.deepEqual(verbsFor(rules, '', 'configmaps'), ['get', 'list', 'watch']);
  assert.deepEqual(verbsFor(rules, '', 'services'), ['create', 'update', 'patch', 'delete']);
  assert.deepEqual(verbsFor(rules, '', 'events'), ['create', 'patch']);
  assert.deepEqual(verbsFor(rules, '', 'secrets'), [], 'nothing undeclared');
});

void test('the same verbs on one group merge into one rule, in a stable order', () => {
  const a = clusterRules([
    spec,
    controller('pods')
      .for(Widget)
      .owns(Pod)
      .reconcile(async () => {}),
  ]);
  const core = a.find((r) => r.apiGroups[0] === '' && r.resources.includes('pods'));
  assert.deepEqual(core?.resources, ['pods'], 'pods alone: configmaps have other verbs');
  assert.deepEqual(clusterRules([spec]), clusterRules([spec, spec]), 'a controller twice grants nothing more');
});

void test('objects: ServiceAccount, ClusterRole + binding, the Lease Role + binding, named reads by resourceNames', () => {
  const files = generateRbac([spec], { prefix: 'demo', namespace: 'demo-system', reads: [{ type: Secret, names: ['api-key'] }] });
  const objs = files.flatMap((f) => f.objects);
  const kinds = objs.map((o) => `${o.kind}/${o.metadata.name}`);
  assert.deepEqual(kinds, [
    'ServiceAccount/demo-controller-manager',
    'ClusterRole/demo-manager-role',
    'ClusterRoleBinding/demo-manager-rolebinding',
    'Role/demo-leader-election-role',
    'RoleBinding/demo-leader-election-rolebinding',
    'Role/demo-named-reads-role',
    'RoleBinding/demo-named-reads-rolebinding',
  ]);
  const lease = objs.find((o) => o.metadata.name === 'demo-leader-election-role')!;
  assert.equal(lease.metadata.namespace, 'demo-system');
  assert.deepEqual(lease.rules, [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }]);
  const reads = objs.find((o) => o.metadata.name === 'demo-named-reads-role')!;
  assert.deepEqual(reads.rules, [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['api-key'], verbs: ['get'] }]);
  for (const b of objs.filter((o) => o.kind.endsWith('Binding')))
    assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: 'demo-controller-manager', namespace: 'demo-system' }]);
});

void test('named reads must name objects of a namespaced type', () => {
  assert.throws(() => generateRbac([spec], { prefix: 'd', namespace: 'n', reads: [{ type: Secret, names: [] }] }), RbacDeclarationError);
  assert.throws(() => generateRbac([spec], { prefix: 'd', namespace: 'n', reads: [{ type: Secret, names: ['*'] }] }), RbacDeclarationError);
  const Node: ResourceType = { group: '', version: 'v1', kind: 'Node', plural: 'nodes', namespaced: false };
  assert.throws(() => generateRbac([spec], { prefix: 'd', namespace: 'n', reads: [{ type: Node, names: ['a'] }] }), /cluster-scoped/);
});

void test('a wildcard anywhere in a rule is refused, naming the object and field', () => {
  const bad: RbacObject = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'x' },
    rules: [{ apiGroups: ['*'], resources: ['pods'], verbs: ['get'] }],
  };
  assert.throws(
    () => assertNoWildcards([bad]),
    (e: Error) => e instanceof RbacWildcardError && /ClusterRole x: rules\[0\]\.apiGroups/.test(e.message),
  );
  const Star: ResourceType = { group: '', version: 'v1', kind: 'All', plural: '*', namespaced: true };
  assert.throws(
    () =>
      generateRbac(
        [
          controller('s')
            .for(Star)
            .reconcile(async () => {}),
        ],
        { prefix: 'd', namespace: 'n' },
      ),
    RbacWildcardError,
  );
});

void test('reads: get only; a named read narrows it to a Role in the operator namespace', () => {
  const reader = controller('reader')
    .for(Widget)
    .reads(Secret)
    .reconcile(async () => {});
  assert.deepEqual(verbsFor(clusterRules([reader]), '', 'secrets'), ['get']);
  const files = generateRbac([reader], { prefix: 'd', namespace: 'n', reads: [{ type: Secret, names: ['key'] }] });
  const cluster = files.flatMap((f) => f.objects).find((o) => o.kind === 'ClusterRole')!.rules!;
  assert.deepEqual(verbsFor(cluster, '', 'secrets'), [], 'no cluster-wide Secret access');
  const role = files.flatMap((f) => f.objects).find((o) => o.metadata.name === 'd-named-reads-role')!;
  assert.deepEqual(role.rules, [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['key'], verbs: ['get'] }]);
});
