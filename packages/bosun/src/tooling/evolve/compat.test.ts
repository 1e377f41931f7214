import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JSONSchemaProps } from '../../resource/structural.js';
import { compareCrdSets, compareCrds, formatFinding, type CrdDoc, type CrdVersionDoc, type FindingKind } from './compat.js';

function spec(): JSONSchemaProps {
  return {
    type: 'object',
    required: ['from'],
    properties: {
      from: { type: 'string', description: 'IATA code', pattern: '^[A-Z]{3}$' },
      seats: { type: 'integer', minimum: 1, maximum: 9 },
      cabin: { type: 'string', enum: ['economy', 'business'] },
      name: { type: 'string', minLength: 1, maxLength: 64 },
      tags: { type: 'array', maxItems: 10, items: { type: 'string', maxLength: 20 } },
      labels: { type: 'object', additionalProperties: { type: 'string' } },
    },
    'x-kubernetes-validations': [{ rule: 'self.seats <= 9', message: 'at most 9 seats' }],
  };
}

function schema(s: JSONSchemaProps = spec()): { openAPIV3Schema: JSONSchemaProps } {
  return { openAPIV3Schema: { type: 'object', properties: { apiVersion: { type: 'string' }, spec: s, status: { type: 'object' } } } };
}

function version(name: string, over: Partial<CrdVersionDoc> = {}): CrdVersionDoc {
  return { name, served: true, storage: name === 'v1', schema: schema(), ...over };
}

function crd(versions: CrdVersionDoc[] = [version('v1')], conversion?: CrdDoc['spec']['conversion']): CrdDoc {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'flighttickets.flights.com' },
    spec: { group: 'flights.com', versions, ...(conversion ? { conversion } : {}) },
  };
}

/** The release's CRD with one change made to v1's spec schema. */
function withSpec(change: (s: JSONSchemaProps) => void): CrdDoc {
  const s = spec();
  change(s);
  return crd([version('v1', { schema: schema(s) })]);
}

function only(old: CrdDoc, next: CrdDoc, kind: FindingKind, path: string): string {
  const findings = compareCrds(old, next);
  assert.equal(findings.length, 1, `expected one finding, got:\n${findings.map(formatFinding).join('\n')}`);
  const [f] = findings;
  assert.equal(f!.kind, kind);
  assert.equal(f!.crd, 'flighttickets.flights.com');
  assert.equal(f!.path, path);
  assert.ok(f!.fix.length > 0);
  return formatFinding(f!);
}

void test('an identical CRD has no findings', () => {
  assert.deepEqual(compareCrds(crd(), crd()), []);
});

void test('compatible changes are accepted: a new optional field, loosened bounds, a wider enum, a new served version, a new description', () => {
  const next = withSpec((s) => {
    s.properties!.meal = { type: 'string', maxLength: 10 };
    s.properties!.seats = { type: 'integer', minimum: 0, maximum: 20 };
    s.properties!.cabin = { type: 'string', enum: ['economy', 'business', 'first'] };
    s.properties!.name = { type: 'string', maxLength: 128 };
    s.properties!.tags!.maxItems = 50;
    s.properties!.from!.description = 'the departure airport, an IATA code';
    s.properties!.labels!.additionalProperties = { type: 'string', description: 'a label' };
    s['x-kubernetes-validations'] = [];
  });
  next.spec.versions.push(version('v2'));
  assert.deepEqual(compareCrds(crd(), next).map(formatFinding), []);
});

void test('a removed served version is refused, naming the migration', () => {
  const old = crd([version('v1', { storage: false }), version('v2', { storage: true })]);
  const msg = only(old, crd([version('v2', { storage: true })]), 'version-removed', '');
  assert.match(msg, /v1.*bosun crd migrate flighttickets\.flights\.com/);
});

void test('removing a version the last release no longer served is accepted', () => {
  const old = crd([version('v1', { storage: false, served: false, deprecated: true }), version('v2', { storage: true })]);
  assert.deepEqual(compareCrds(old, crd([version('v2', { storage: true })])), []);
});

void test('a version that stops being served without a deprecation first is refused', () => {
  const old = crd([version('v1', { storage: false }), version('v2', { storage: true })]);
  const next = crd([version('v1', { storage: false, served: false }), version('v2', { storage: true })]);
  assert.match(only(old, next, 'served-version-removed', ''), /deprecated: true/);
});

void test('a version deprecated in the last release may stop being served', () => {
  const old = crd([version('v1', { storage: false, deprecated: true }), version('v2', { storage: true })]);
  const next = crd([version('v1', { storage: false, served: false }), version('v2', { storage: true })]);
  assert.deepEqual(compareCrds(old, next), []);
});

void test('a removed field is refused', () => {
  const msg = only(
    crd(),
    withSpec((s) => delete s.properties!.cabin),
    'field-removed',
    'spec.cabin',
  );
  assert.match(msg, /^flighttickets\.flights\.com v1 spec\.cabin: .*Fix: keep spec\.cabin/);
});

void test('a change under an array is named by its full path', () => {
  only(
    crd(),
    withSpec((s) => (s.properties!.tags!.items = { type: 'object', properties: {} })),
    'type-changed',
    'spec.tags[*]',
  );
});

void test('a type change is refused', () => {
  assert.match(
    only(
      crd(),
      withSpec((s) => (s.properties!.seats = { type: 'string' })),
      'type-changed',
      'spec.seats',
    ),
    /from integer to string/,
  );
});

void test('a new required field without a default is refused; with a default it is accepted', () => {
  const next = withSpec((s) => {
    s.properties!.to = { type: 'string' };
    s.required = ['from', 'to'];
  });
  only(crd(), next, 'required-added', 'spec.to');
  const defaulted = withSpec((s) => {
    s.properties!.to = { type: 'string', default: 'AMS' };
    s.required = ['from', 'to'];
  });
  assert.deepEqual(compareCrds(crd(), defaulted), []);
});

void test('an existing optional field made required is refused', () => {
  only(
    crd(),
    withSpec((s) => (s.required = ['from', 'seats'])),
    'required-added',
    'spec.seats',
  );
});

void test('each tightened bound is refused', () => {
  const cases: Array<[string, (s: JSONSchemaProps) => void, string]> = [
    ['minimum raised', (s) => (s.properties!.seats!.minimum = 2), 'spec.seats'],
    ['maximum lowered', (s) => (s.properties!.seats!.maximum = 4), 'spec.seats'],
    ['minLength raised', (s) => (s.properties!.name!.minLength = 3), 'spec.name'],
    ['maxLength lowered', (s) => (s.properties!.name!.maxLength = 32), 'spec.name'],
    ['maxLength added', (s) => (s.properties!.labels!.additionalProperties = { type: 'string', maxLength: 63 }), 'spec.labels.*'],
    ['minItems added', (s) => (s.properties!.tags!.minItems = 1), 'spec.tags'],
    ['maxItems lowered', (s) => (s.properties!.tags!.maxItems = 5), 'spec.tags'],
    ['nested maxLength lowered', (s) => (s.properties!.tags!.items!.maxLength = 10), 'spec.tags[*]'],
    ['exclusiveMaximum set', (s) => (s.properties!.seats!.exclusiveMaximum = true), 'spec.seats'],
  ];
  for (const [name, change, path] of cases) {
    const findings = compareCrds(crd(), withSpec(change));
    assert.deepEqual(
      findings.map((f) => [f.kind, f.path]),
      [['bound-tightened', path]],
      name,
    );
  }
});

void test('a changed or added pattern is refused', () => {
  only(
    crd(),
    withSpec((s) => (s.properties!.from!.pattern = '^[A-Z]{3,4}$')),
    'pattern-changed',
    'spec.from',
  );
  only(
    crd(),
    withSpec((s) => (s.properties!.name!.pattern = '^[a-z]+$')),
    'pattern-changed',
    'spec.name',
  );
});

void test('a narrowed enum is refused, naming the lost values; an added enum too', () => {
  assert.match(
    only(
      crd(),
      withSpec((s) => (s.properties!.cabin!.enum = ['economy'])),
      'enum-narrowed',
      'spec.cabin',
    ),
    /loses "business"/,
  );
  only(
    crd(),
    withSpec((s) => (s.properties!.name!.enum = ['a', 'b'])),
    'enum-narrowed',
    'spec.name',
  );
});

void test('a new CEL rule without oldSelf is refused; a ratcheting one is accepted', () => {
  const plain = withSpec((s) => s['x-kubernetes-validations']!.push({ rule: "self.from != 'XXX'" }));
  assert.match(only(crd(), plain, 'validation-added', 'spec'), /optionalOldSelf/);
  const ratcheting = withSpec((s) =>
    s['x-kubernetes-validations']!.push({ rule: "(oldSelf.hasValue() && oldSelf.value() == self) || self.from != 'XXX'" }),
  );
  assert.deepEqual(compareCrds(crd(), ratcheting), []);
});

void test('a storage-version change with strategy None and differing schemas is refused; same schemas or a Webhook conversion are accepted', () => {
  const old = crd([version('v1'), version('v2', { storage: false })]);
  const v2 = spec();
  v2.properties!.route = { type: 'string' };
  const differing = (conversion?: CrdDoc['spec']['conversion']) =>
    crd([version('v1', { storage: false }), version('v2', { storage: true, schema: schema(v2) })], conversion);
  const oldWithV2 = crd([version('v1'), version('v2', { storage: false, schema: schema(v2) })]);
  assert.match(only(oldWithV2, differing(), 'storage-without-conversion', ''), /from v1 to v2/);
  assert.match(only(oldWithV2, differing({ strategy: 'None' }), 'storage-without-conversion', ''), /strategy None/);
  assert.deepEqual(compareCrds(oldWithV2, differing({ strategy: 'Webhook' })), []);
  const described = spec();
  described.properties!.from!.description = 'another description';
  const same = crd([version('v1', { storage: false }), version('v2', { storage: true, schema: schema(described) })]);
  assert.deepEqual(compareCrds(old, same), []);
});

void test('a CRD of the release that is no longer generated is refused; a new CRD is accepted', () => {
  const other: CrdDoc = { ...crd(), metadata: { name: 'messages.myorg.dev' } };
  assert.deepEqual(
    compareCrdSets([crd(), other], [crd()]).map((f) => [f.kind, f.crd]),
    [['crd-removed', 'messages.myorg.dev']],
  );
  assert.deepEqual(compareCrdSets([crd()], [crd(), other]), []);
});

void test('a field with the name "description" is compared like any other', () => {
  const old = withSpec((s) => (s.properties!.description = { type: 'string' }));
  only(old, crd(), 'field-removed', 'spec.description');
});
