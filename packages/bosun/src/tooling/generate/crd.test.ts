import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { defineResource } from '../../resource/resource.js';
import { defineVersions, spoke } from '../../webhook/declare.js';
import { toCustomResourceDefinition, toMultiVersionCrd } from './crd.js';
import type { WebhookClientConfig } from './webhook.js';

const base = {
  group: 'example.com',
  kind: 'Gadget',
  plural: 'gadgets',
  scope: 'Namespaced' as const,
  description: 'test',
  shortNames: ['gd'],
  status: Type.Object({ phase: Type.Optional(Type.String()) }),
};
const V1 = defineResource({
  ...base,
  version: 'v1',
  spec: Type.Object({ size: Type.Integer() }),
  printerColumns: [{ name: 'Size', jsonPath: '.spec.size' }],
});
const V2 = defineResource({
  ...base,
  version: 'v2',
  spec: Type.Object({ dimensions: Type.Object({ width: Type.Integer(), height: Type.Integer() }) }),
  printerColumns: [{ name: 'Width', jsonPath: '.spec.dimensions.width' }],
});
const clientConfig: WebhookClientConfig = {
  service: { name: 'g-webhook-service', namespace: 'g-system', path: '/convert/gadgets.example.com', port: 443 },
};
const versions = defineVersions(V2, {
  spokes: [
    spoke(V2, {
      resource: V1,
      toHub: (o) => ({ ...o, spec: { dimensions: { width: o.spec?.size ?? 0, height: o.spec?.size ?? 0 } } }),
      fromHub: (o) => ({ ...o, spec: { size: o.spec?.dimensions.width ?? 0 } }),
    }),
  ],
  storage: V1,
});

void test('every version is served with its own schema and columns, the storage version first; only it stores', () => {
  const crd = toMultiVersionCrd(versions, { clientConfig });
  assert.equal(crd.metadata.name, 'gadgets.example.com');
  assert.deepEqual(crd.spec.names, toCustomResourceDefinition(V2).spec.names);
  assert.equal(crd.spec.scope, 'Namespaced');
  assert.deepEqual(
    crd.spec.versions.map((v) => [v.name, v.served, v.storage]),
    [
      ['v1', true, true],
      ['v2', true, false],
    ],
  );
  const [v1, v2] = crd.spec.versions;
  assert.deepEqual(v1?.schema, toCustomResourceDefinition(V1).spec.versions[0]?.schema);
  assert.deepEqual(v2?.schema, toCustomResourceDefinition(V2).spec.versions[0]?.schema);
  assert.deepEqual(
    v2?.additionalPrinterColumns.map((c) => c.name),
    ['Width', 'Age'],
  );
  assert.deepEqual(
    v1?.additionalPrinterColumns.map((c) => c.name),
    ['Size', 'Age'],
  );
  assert.deepEqual(v1?.subresources, { status: {} });
  assert.deepEqual(v2?.subresources, { status: {} });
});

void test('the conversion goes to the webhook at the client config, reviewed as v1', () => {
  const crd = toMultiVersionCrd(versions, { clientConfig });
  assert.deepEqual(crd.spec.conversion, { strategy: 'Webhook', webhook: { clientConfig, conversionReviewVersions: ['v1'] } });
  assert.notEqual(crd.spec.conversion?.webhook.clientConfig, clientConfig, 'a copy of the caller object');
  const local = toMultiVersionCrd(defineVersions(V2, { spokes: versions.spokes.slice() }), {
    clientConfig: { url: 'https://127.0.0.1:9443/convert/gadgets.example.com', caBundle: 'Q0E=' },
  });
  assert.deepEqual(
    local.spec.versions.map((v) => [v.name, v.storage]),
    [
      ['v2', true],
      ['v1', false],
    ],
    'storage defaults to the hub',
  );
  assert.deepEqual(local.spec.conversion?.webhook.clientConfig, {
    url: 'https://127.0.0.1:9443/convert/gadgets.example.com',
    caBundle: 'Q0E=',
  });
});

void test('a single-version CRD has no conversion stanza (its output is unchanged)', () => {
  assert.equal('conversion' in toCustomResourceDefinition(V1).spec, false);
  assert.equal('annotations' in toCustomResourceDefinition(V1).metadata, false);
});
