import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { StructuralSchemaError, toStructuralSchema } from './structural.js';
import { ConditionsSchema } from './conditions.js';
import { cel, intOrString } from './resource.js';

const at = 'Message.spec';

function refused(schema: unknown, path: string, problem: RegExp): void {
  assert.throws(
    () => toStructuralSchema(schema, at),
    (error: unknown) => {
      assert.ok(error instanceof StructuralSchemaError, `expected StructuralSchemaError, got ${String(error)}`);
      assert.equal(error.path, path);
      assert.ok(error.message.startsWith(`${path}: `), error.message);
      assert.match(error.message, problem);
      assert.match(error.message, /Fix: /);
      return true;
    },
  );
}

void test('object: optional fields are left out of required, descriptions kept, TypeBox keys stripped', () => {
  const schema = Type.Object(
    { text: Type.String({ description: 'the text', minLength: 1 }), note: Type.Optional(Type.String()) },
    { $id: 'Spec', description: 'the spec' },
  );
  const out = toStructuralSchema(schema, at);
  assert.deepEqual(out, {
    description: 'the spec',
    type: 'object',
    properties: { text: { description: 'the text', type: 'string', minLength: 1 }, note: { type: 'string' } },
    required: ['text'],
  });
  assert.equal(Object.getOwnPropertySymbols(out).length, 0);
  assert.equal(Object.getOwnPropertySymbols(out.properties?.text ?? {}).length, 0);
});

void test('all optional: no required list', () => {
  assert.equal(toStructuralSchema(Type.Object({ a: Type.Optional(Type.String()) }), at).required, undefined);
});

void test('integers keep their format; numbers and booleans map directly', () => {
  assert.deepEqual(toStructuralSchema(Type.Integer({ format: 'int64', minimum: 0 }), at), {
    type: 'integer',
    format: 'int64',
    minimum: 0,
  });
  assert.deepEqual(toStructuralSchema(Type.Number(), at), { type: 'number' });
  assert.deepEqual(toStructuralSchema(Type.Boolean(), at), { type: 'boolean' });
});

void test('int32 fields get the int32 range as bounds, keeping tighter ones: the API server does not enforce the format', () => {
  assert.deepEqual(toStructuralSchema(Type.Integer({ format: 'int32' }), at), {
    type: 'integer',
    format: 'int32',
    minimum: -2147483648,
    maximum: 2147483647,
  });
  assert.deepEqual(toStructuralSchema(Type.Integer({ format: 'int32', minimum: 0 }), at), {
    type: 'integer',
    format: 'int32',
    minimum: 0,
    maximum: 2147483647,
  });
  assert.deepEqual(toStructuralSchema(Type.Integer({ format: 'int32', exclusiveMaximum: 10 }), at), {
    type: 'integer',
    format: 'int32',
    minimum: -2147483648,
    maximum: 10,
    exclusiveMaximum: true,
  });
});

void test('numeric exclusive bounds become OpenAPI v3.0 boolean ones', () => {
  assert.deepEqual(toStructuralSchema(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }), at), {
    type: 'number',
    minimum: 0,
    exclusiveMinimum: true,
    maximum: 1,
    exclusiveMaximum: true,
  });
});

void test('union of string literals becomes enum; a single literal becomes a one-value enum', () => {
  const state = Type.Union([Type.Literal('Pending'), Type.Literal('Booked')], { description: 'state' });
  assert.deepEqual(toStructuralSchema(state, at), { description: 'state', type: 'string', enum: ['Pending', 'Booked'] });
  assert.deepEqual(toStructuralSchema(Type.Literal(3), at), { type: 'number', enum: [3] });
  enum Color {
    Red = 'red',
    Blue = 'blue',
  }
  assert.deepEqual(toStructuralSchema(Type.Enum(Color), at), { type: 'string', enum: ['red', 'blue'] });
});

void test('union with null becomes nullable', () => {
  assert.deepEqual(toStructuralSchema(Type.Union([Type.String(), Type.Null()]), at), { type: 'string', nullable: true });
});

void test('integer | string becomes x-kubernetes-int-or-string', () => {
  assert.deepEqual(toStructuralSchema(intOrString({ description: 'port' }), at), {
    description: 'port',
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    'x-kubernetes-int-or-string': true,
  });
});

void test('arrays and string-keyed records', () => {
  assert.deepEqual(toStructuralSchema(Type.Array(Type.String(), { maxItems: 3 }), at), {
    type: 'array',
    maxItems: 3,
    items: { type: 'string' },
  });
  assert.deepEqual(toStructuralSchema(Type.Record(Type.String(), Type.Integer()), at), {
    type: 'object',
    additionalProperties: { type: 'integer' },
  });
});

void test('x-kubernetes extensions and CEL rules are carried through', () => {
  const schema = Type.Object(
    { from: Type.String(), to: Type.String(), tags: Type.Array(Type.String(), { 'x-kubernetes-list-type': 'set' }) },
    { 'x-kubernetes-validations': [cel('self.from != self.to', 'must differ', { fieldPath: '.to' })] },
  );
  const out = toStructuralSchema(schema, at);
  assert.deepEqual(out['x-kubernetes-validations'], [{ rule: 'self.from != self.to', message: 'must differ', fieldPath: '.to' }]);
  assert.equal(out.properties?.tags?.['x-kubernetes-list-type'], 'set');
});

void test('Type.Unsafe carries free-form and embedded objects', () => {
  const free = Type.Unsafe<Record<string, unknown>>({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
  assert.deepEqual(toStructuralSchema(free, at), { type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
  const embedded = Type.Unsafe({
    type: 'object',
    'x-kubernetes-embedded-resource': true,
    'x-kubernetes-preserve-unknown-fields': true,
  });
  assert.equal(toStructuralSchema(embedded, at)['x-kubernetes-embedded-resource'], true);
  assert.deepEqual(toStructuralSchema(Type.Unsafe({ 'x-kubernetes-preserve-unknown-fields': true }), at), {
    'x-kubernetes-preserve-unknown-fields': true,
  });
});

void test('conditions list is a map keyed by type with the metav1.Condition fields', () => {
  const out = toStructuralSchema(ConditionsSchema, 'Message.status.conditions');
  assert.equal(out['x-kubernetes-list-type'], 'map');
  assert.deepEqual(out['x-kubernetes-list-map-keys'], ['type']);
  assert.deepEqual(out.items?.required, ['type', 'status', 'lastTransitionTime', 'reason', 'message']);
  assert.deepEqual(out.items?.properties?.status?.enum, ['True', 'False', 'Unknown']);
  assert.equal(out.items?.properties?.observedGeneration?.format, 'int64');
});

void test('key order is canonical, whatever order the options were written in', () => {
  const a = toStructuralSchema(Type.String({ maxLength: 2, description: 'd', minLength: 1 }), at);
  const b = toStructuralSchema(Type.String({ description: 'd', minLength: 1, maxLength: 2 }), at);
  assert.deepEqual(Object.keys(a), Object.keys(b));
});

// Every refused shape must name the exact field, so the fix can be found in the TypeScript source.
void test('refuses $ref', () => refused(Type.Object({ a: Type.Ref('X') }), 'Message.spec.a', /\$ref/));
void test('refuses recursive types', () => {
  refused(
    Type.Recursive((self) => Type.Object({ a: Type.Array(self) })),
    'Message.spec.a[*]',
    /\$ref/,
  );
});
void test('refuses definitions', () => {
  refused({ type: 'object', properties: { a: { type: 'string' } }, definitions: {} }, 'Message.spec', /definitions/);
  refused({ type: 'object', $defs: { X: { type: 'string' } }, properties: {} }, 'Message.spec', /definitions/);
});
void test('refuses patternProperties other than a plain string record', () => {
  refused(Type.Object({ byIndex: Type.Record(Type.Number(), Type.String()) }), 'Message.spec.byIndex', /patternProperties/);
});
void test('refuses type: null', () => refused(Type.Object({ nothing: Type.Null() }), 'Message.spec.nothing', /type: null/));
void test('refuses tuples', () => {
  refused(Type.Object({ pair: Type.Tuple([Type.String(), Type.Number()]) }), 'Message.spec.pair', /tuple/);
});
void test('refuses additionalProperties beside properties', () => {
  refused(
    Type.Object({ labels: Type.Object({ a: Type.String() }, { additionalProperties: Type.String() }) }),
    'Message.spec.labels',
    /additionalProperties beside properties/,
  );
});
void test('refuses a missing type (Any, Unknown)', () => {
  refused(Type.Object({ data: Type.Any() }), 'Message.spec.data', /no type/);
  refused(Type.Object({ data: Type.Unknown() }), 'Message.spec.data', /no type/);
});
void test('refuses non-JSON types', () => {
  refused(Type.Object({ when: Type.Date() }), 'Message.spec.when', /not a JSON type/);
  refused(Type.Object({ raw: Type.Uint8Array() }), 'Message.spec.raw', /not a JSON type/);
});
void test('refuses unions of different types', () => {
  refused(Type.Object({ v: Type.Union([Type.String(), Type.Boolean()]) }), 'Message.spec.v', /different types/);
  refused(Type.Object({ v: Type.Union([Type.Literal('a'), Type.Literal(1)]) }), 'Message.spec.v', /different types/);
});
void test('refuses unions of objects', () => {
  const v = Type.Union([Type.Object({ a: Type.String() }), Type.Object({ b: Type.String() })]);
  refused(Type.Object({ v }), 'Message.spec.v', /union of 2 non-literal object/);
});
void test('refuses intersections', () => {
  const v = Type.Intersect([Type.Object({ a: Type.String() }), Type.Object({ b: Type.String() })]);
  refused(Type.Object({ v }), 'Message.spec.v', /Type\.Composite/);
});
void test('refuses uniqueItems', () => {
  refused(Type.Object({ tags: Type.Array(Type.String(), { uniqueItems: true }) }), 'Message.spec.tags', /uniqueItems/);
});
void test('refuses unknown keywords and extensions', () => {
  refused(Type.Object({ s: Type.String({ contentEncoding: 'base64' }) }), 'Message.spec.s', /contentEncoding/);
  refused(Type.Object({ s: Type.String({ 'x-kubernetes-bogus': true }) }), 'Message.spec.s', /x-kubernetes-bogus/);
});
void test('refuses an object schema without properties (everything would be pruned)', () => {
  refused(Type.Object({ config: Type.Unsafe({ type: 'object' }) }), 'Message.spec.config', /no properties/);
});
void test('accepts an explicitly empty object', () => {
  assert.deepEqual(toStructuralSchema(Type.Object({}), at), { type: 'object', properties: {} });
});
void test('refuses an array without items', () => refused({ type: 'array' }, 'Message.spec', /without an items/));
void test('refuses a CEL rule without rule text', () => {
  refused(Type.Object({}, { 'x-kubernetes-validations': [{ message: 'x' }] }), 'Message.spec', /has no rule/);
});
void test('errors in nested arrays name the item path', () => {
  refused(Type.Object({ items: Type.Array(Type.Object({ when: Type.Date() })) }), 'Message.spec.items[*].when', /not a JSON type/);
  refused(Type.Object({ m: Type.Record(Type.String(), Type.Null()) }), 'Message.spec.m.*', /type: null/);
});
void test('refuses list-type map lists that Kubernetes would refuse', () => {
  const item = Type.Object({ name: Type.Optional(Type.String()), port: Type.Integer() });
  const map = (keys: string[]) => Type.Array(item, { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': keys });
  refused(Type.Object({ ports: map(['name']) }), 'Message.spec.ports[*].name', /optional and has no default/);
  refused(Type.Object({ ports: map(['nope']) }), 'Message.spec.ports', /map key "nope"/);
  refused(Type.Object({ ports: map([]) }), 'Message.spec.ports', /without x-kubernetes-list-map-keys/);
  refused(
    Type.Object({ ports: Type.Array(Type.String(), { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['a'] }) }),
    'Message.spec.ports',
    /items are not objects/,
  );
  refused(Type.Object({ s: Type.String({ 'x-kubernetes-list-type': 'set' }) }), 'Message.spec.s', /not an array/);
  assert.ok(toStructuralSchema(Type.Object({ ports: map(['port']) }), at));
});
