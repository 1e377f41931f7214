// config/certs-self as generation writes it: the rotator's grants by name and by kind (only the kinds the project
// has), the writable certificate directory in place of the mounted Secret, and the flag that turns the rotator on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, parseAllDocuments } from 'yaml';
import { defaultsWebhook, sizeWebhook, widgetVersions } from '../../webhook/testdata/widgets.js';
import { certRotationRules, type RbacObject } from './rbac.js';
import { certsSelfFiles, WEBHOOK_CERT_DIR } from './webhook.js';

const base = { prefix: 'shop', namespace: 'shop-system' };

function objects(text: string): RbacObject[] {
  return parseAllDocuments(text).map((d) => d.toJS() as RbacObject);
}

void test('the rotator is granted its Secret by name (create unnarrowed) and patch of exactly the named kinds and objects', () => {
  const only = certRotationRules({ secret: 's', validating: 'hooks', crds: [] });
  assert.deepEqual(only.namespaced, [
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    { apiGroups: [''], resources: ['secrets'], resourceNames: ['s'], verbs: ['get', 'list', 'watch', 'update'] },
  ]);
  assert.deepEqual(only.cluster, [
    {
      apiGroups: ['admissionregistration.k8s.io'],
      resources: ['validatingwebhookconfigurations'],
      resourceNames: ['hooks'],
      verbs: ['get', 'list', 'watch', 'patch'],
    },
  ]);
  const both = certRotationRules({ secret: 's', validating: 'hooks', mutating: 'hooks', crds: ['b.example.com', 'a.example.com'] });
  assert.deepEqual(
    both.cluster.map((r) => [r.apiGroups[0], r.resources, r.resourceNames]),
    [
      ['admissionregistration.k8s.io', ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'], ['hooks']],
      ['apiextensions.k8s.io', ['customresourcedefinitions'], ['a.example.com', 'b.example.com']],
    ],
  );
});

void test('config/certs-self: the roles bound to the manager, the certificate directory an emptyDir, the flag appended; nothing without webhooks or versions', () => {
  assert.equal(certsSelfFiles({ ...base, webhooks: [], versions: [] }).size, 0);

  const files = certsSelfFiles({ ...base, webhooks: [sizeWebhook], versions: [widgetVersions] });
  assert.deepEqual([...files.keys()].sort(), ['kustomization.yaml', 'manager_certs_patch.yaml', 'role.yaml', 'role_binding.yaml']);
  const roles = objects(files.get('role.yaml')!);
  assert.deepEqual(
    roles.map((o) => [o.kind, o.metadata.name, o.metadata.namespace]),
    [
      ['Role', 'shop-webhook-certs-role', 'shop-system'],
      ['ClusterRole', 'shop-webhook-certs-role', undefined],
    ],
  );
  const cluster = roles[1]!.rules!;
  assert.deepEqual(
    cluster.map((r) => [r.resources, r.resourceNames]),
    [
      [['validatingwebhookconfigurations'], ['shop-webhooks']],
      [['customresourcedefinitions'], [widgetVersions.crdName]],
    ],
    'a project with only validating webhooks is granted no mutating configuration',
  );
  assert.ok(roles[0]!.rules!.some((r) => r.resourceNames?.[0] === 'shop-webhook-server-cert'));
  const bindings = objects(files.get('role_binding.yaml')!);
  assert.deepEqual(
    bindings.map((b) => [b.kind, b.roleRef?.kind, b.subjects]),
    [
      ['RoleBinding', 'Role', [{ kind: 'ServiceAccount', name: 'shop-controller-manager', namespace: 'shop-system' }]],
      ['ClusterRoleBinding', 'ClusterRole', [{ kind: 'ServiceAccount', name: 'shop-controller-manager', namespace: 'shop-system' }]],
    ],
  );

  const patch = parse(files.get('manager_certs_patch.yaml')!) as {
    spec: { template: { spec: { containers: { volumeMounts: unknown[] }[]; volumes: unknown[] } } };
  };
  assert.deepEqual(patch.spec.template.spec.volumes, [{ name: 'webhook-certs', secret: null, emptyDir: {} }]);
  assert.deepEqual(patch.spec.template.spec.containers[0]!.volumeMounts, [
    { name: 'webhook-certs', mountPath: WEBHOOK_CERT_DIR, readOnly: false },
  ]);
  const kustomization = parse(files.get('kustomization.yaml')!) as { kind: string; patches: { patch?: string }[] };
  assert.equal(kustomization.kind, 'Component');
  assert.deepEqual(parse(kustomization.patches[1]!.patch!), [
    { op: 'add', path: '/spec/template/spec/containers/0/args/-', value: '--webhook-certs-secret=shop-webhook-server-cert' },
  ]);

  const mutatingOnly = objects(certsSelfFiles({ ...base, webhooks: [defaultsWebhook], versions: [] }).get('role.yaml')!);
  assert.deepEqual(
    mutatingOnly[1]!.rules!.map((r) => r.resources),
    [['mutatingwebhookconfigurations']],
  );
});
