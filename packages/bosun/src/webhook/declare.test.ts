// What a webhook or versions declaration may say: each refusal names the webhook, the field and the fix.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { defineResource } from '../resource/resource.js';
import { allow, defineVersions, deny, mutatingWebhook, spoke, validatingWebhook, WebhookDefinitionError } from './declare.js';
import { WidgetV1, WidgetV2 } from './testdata/widgets.js';

const policy = { failurePolicy: 'Ignore', failurePolicyReason: 'early feedback only' } as const;

void test('a validating and a mutating webhook: defaults (10 s, CREATE and UPDATE), their paths, frozen', () => {
  const v = validatingWebhook({ name: 'size.widgets.example.com', resource: WidgetV2, ...policy, validate: () => allow() });
  assert.equal(v.type, 'validating');
  assert.equal(v.timeoutSeconds, 10);
  assert.deepEqual(v.operations, ['CREATE', 'UPDATE']);
  assert.equal(v.path, '/validate/size.widgets.example.com');
  assert.ok(Object.isFrozen(v));
  const m = mutatingWebhook({
    name: 'defaults.widgets.example.com',
    resource: WidgetV2,
    ...policy,
    timeoutSeconds: 3,
    operations: ['CREATE'],
    mutate: (o) => o,
  });
  assert.equal(m.type, 'mutating');
  assert.equal(m.path, '/mutate/defaults.widgets.example.com');
  assert.equal(m.timeoutSeconds, 3);
  assert.deepEqual(m.operations, ['CREATE']);
});

void test('allow and deny build the verdicts', () => {
  assert.deepEqual(allow(), { allowed: true });
  assert.deepEqual(allow('w'), { allowed: true, warnings: ['w'] });
  assert.deepEqual(deny('spec.size: too big', { code: 422, field: 'spec.size' }), {
    allowed: false,
    message: 'spec.size: too big',
    code: 422,
    field: 'spec.size',
  });
});

void test('a webhook declaration Kubernetes would refuse names the webhook, the field and the fix', () => {
  const base = { name: 'size.widgets.example.com', resource: WidgetV2, ...policy, validate: () => allow() };
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { name: 'size' },
      /webhook size: name "size" is not a DNS subdomain of at least three segments\. Fix: use '<what>\.<plural>\.<group>'/,
    ],
    [{ name: 'Size.Widgets.example.com' }, /name "Size\.Widgets\.example\.com" is not a DNS subdomain/],
    [{ failurePolicy: 'Never' }, /failurePolicy is "Never"\. Fix: choose 'Fail' or 'Ignore'/],
    [{ failurePolicyReason: '  ' }, /failurePolicyReason is empty\. Fix: say why this failure policy/],
    [{ timeoutSeconds: 31 }, /timeoutSeconds is 31\. Fix: use a whole number of seconds from 1 to 30/],
    [{ timeoutSeconds: 0.5 }, /timeoutSeconds is 0\.5/],
    [{ operations: [] }, /operations is empty\. Fix: list at least one of CREATE, UPDATE, DELETE, CONNECT/],
  ];
  for (const [change, message] of cases) {
    assert.throws(
      () => validatingWebhook({ ...base, ...change } as typeof base),
      (err: unknown) => {
        assert.ok(err instanceof WebhookDefinitionError, String(err));
        assert.match(err.message, message);
        return true;
      },
    );
  }
});

void test('defineVersions: the hub first, storage defaulting to the hub; versions of another kind, twice, none or an unserved storage are refused', () => {
  const toHub = (o: unknown) => o as never;
  const v = defineVersions(WidgetV2, { spokes: [spoke(WidgetV2, { resource: WidgetV1, toHub, fromHub: toHub })] });
  assert.deepEqual(
    v.versions.map((r) => r.version),
    ['v2', 'v1'],
  );
  assert.equal(v.storage, WidgetV2);
  assert.equal(v.crdName, `${WidgetV2.plural}.${WidgetV2.group}`);
  assert.equal(v.path, `/convert/${WidgetV2.plural}.${WidgetV2.group}`);
  const other = defineResource({
    group: WidgetV1.group,
    version: 'v1',
    scope: 'Namespaced',
    kind: 'Gadget',
    plural: 'gadgets',
    spec: Type.Object({}),
    status: Type.Object({}),
    description: 'x',
  });
  const stranger = defineResource({
    group: WidgetV1.group,
    version: 'v3',
    scope: 'Namespaced',
    plural: WidgetV1.plural,
    kind: WidgetV1.kind,
    spec: Type.Object({}),
    status: Type.Object({}),
    description: 'x',
  });
  assert.throws(
    () => defineVersions(WidgetV2, { spokes: [spoke(WidgetV2, { resource: other, toHub, fromHub: toHub })] }),
    /version v1 is Gadget gadgets\..*every version must have the hub's group, kind, plural and scope/,
  );
  assert.throws(
    () => defineVersions(WidgetV2, { spokes: [spoke(WidgetV2, { resource: WidgetV2, toHub, fromHub: toHub })] }),
    /version v2 is declared twice/,
  );
  assert.throws(() => defineVersions(WidgetV2, { spokes: [] }), /spokes is empty\. Fix: a single version needs no defineVersions/);
  assert.throws(
    () => defineVersions(WidgetV2, { spokes: [spoke(WidgetV2, { resource: WidgetV1, toHub, fromHub: toHub })], storage: stranger }),
    /storage is v3, not one of the versions/,
  );
});
