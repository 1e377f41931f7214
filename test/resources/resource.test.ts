import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import type { KubeObject, ResourceType } from '../../packages/bosun/src/client/types.js';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import { ApplicationResource } from '../../operators/application/resource.js';
import { FlightTicketResource } from '../../operators/flightticket/resource.js';
import {
  assertValidSpec,
  defineResource,
  ResourceDefinitionError,
  SpecValidationError,
  type ObjectOf,
  type SpecOf,
} from '../../packages/bosun/src/resource/resource.js';
import { StructuralSchemaError } from '../../packages/bosun/src/resource/structural.js';

const widget = {
  group: 'example.com',
  version: 'v1',
  kind: 'Widget',
  plural: 'widgets',
  scope: 'Namespaced' as const,
  description: 'test',
  spec: Type.Object({ size: Type.Integer() }),
  status: Type.Object({}),
};

void test('a resource is a ResourceType the client can use', () => {
  const type: ResourceType = MessageResource;
  assert.deepEqual(
    { group: type.group, version: type.version, kind: type.kind, plural: type.plural, namespaced: type.namespaced },
    { group: 'myorg.dev', version: 'v1', kind: 'Message', plural: 'messages', namespaced: true },
  );
  assert.equal(MessageResource.singular, 'message');
  assert.equal(defineResource({ ...widget, scope: 'Cluster' }).namespaced, false);
});

void test('static types come from the schemas', () => {
  const spec: SpecOf<typeof MessageResource> = { text: 'hi' };
  const msg: Message = { metadata: { name: 'm' }, spec, status: { phase: 'Running', observedGeneration: 1 } };
  const same: ObjectOf<typeof MessageResource> = msg;
  const typed: KubeObject<{ text: string }> = same;
  // @ts-expect-error text must be a string
  const wrong: SpecOf<typeof MessageResource> = { text: 1 };
  assert.ok(typed && wrong);
});

void test('validateSpec names the field path', () => {
  assert.deepEqual(MessageResource.validateSpec({ spec: { text: 'hello' } }), []);
  assert.deepEqual(
    MessageResource.validateSpec({ spec: {} }).map((e) => e.path),
    ['spec.text'],
  );
  assert.deepEqual(
    MessageResource.validateSpec({}).map((e) => e.path),
    ['spec'],
  );
  const long = MessageResource.validateSpec({ spec: { text: 'x'.repeat(4097) } });
  assert.equal(long[0]?.path, 'spec.text');
  assert.match(long[0]?.message ?? '', /4096/);
  assert.deepEqual(
    ApplicationResource.validateSpec({ spec: { image: 'nginx', replicas: -1, port: 70000 } }).map((e) => e.path),
    ['spec.replicas', 'spec.port'],
  );
  assert.deepEqual(
    ApplicationResource.validateSpec({ spec: { image: 'nginx', replicas: 1.5, port: 80 } }).map((e) => e.path),
    ['spec.replicas'],
  );
  assert.deepEqual(
    FlightTicketResource.validateSpec({ spec: { from: 'A', to: 'B', number: 11 } }).map((e) => e.path),
    ['spec.number'],
  );
});

void test('validateSpec paths into arrays and odd keys', () => {
  const r = defineResource({
    ...widget,
    spec: Type.Object({ items: Type.Array(Type.Object({ name: Type.String() })), 'odd-key': Type.Optional(Type.String()) }),
  });
  assert.deepEqual(
    r.validateSpec({ spec: { items: [{ name: 'a' }, { name: 2 }], 'odd-key': 3 } }).map((e) => e.path),
    ['spec.items[1].name', 'spec["odd-key"]'],
  );
});

void test('assertValidSpec throws SpecValidationError with all paths', () => {
  assert.throws(
    () => assertValidSpec(ApplicationResource, { spec: { image: '', replicas: 0, port: 0 } }),
    (e: unknown) => e instanceof SpecValidationError && /^Application is invalid: spec.image: .*; spec.port: /.test(e.message),
  );
});

void test('defineResource refuses names Kubernetes refuses', () => {
  const bad = (patch: object, field: RegExp) =>
    assert.throws(
      () => defineResource({ ...widget, ...patch }),
      (e: unknown) => e instanceof ResourceDefinitionError && field.test(e.message),
    );
  bad({ group: 'example' }, /group "example" is not a DNS name/);
  bad({ plural: 'Widgets' }, /plural "Widgets"/);
  bad({ kind: 'widget' }, /kind "widget" is not PascalCase/);
  bad({ version: '1' }, /version "1"/);
  bad({ shortNames: ['W'] }, /shortNames "W"/);
  bad({ description: ' ' }, /description is empty/);
});

void test('defineResource refuses a non-structural schema at declaration, naming kind and field', () => {
  assert.throws(
    () => defineResource({ ...widget, spec: Type.Object({ when: Type.Date() }) }),
    (e: unknown) => e instanceof StructuralSchemaError && e.path === 'Widget.spec.when',
  );
});
