import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { parseAllDocuments } from 'yaml';
import { defineResource } from '../../resource/resource.js';
import { Namespace } from '../../client/resources.js';
import { allow, mutatingWebhook, validatingWebhook } from '../../webhook/declare.js';
import { excludeNamespaces, renderWebhookConfigurations, toWebhookConfigurations, type WebhookClientConfig } from './webhook.js';

const Widget = defineResource({
  group: 'example.com',
  version: 'v2',
  kind: 'Widget',
  plural: 'widgets',
  scope: 'Namespaced',
  description: 'test',
  spec: Type.Object({ size: Type.Integer() }),
  status: Type.Object({}),
});

const size = validatingWebhook({
  name: 'size.widgets.example.com',
  resource: Widget,
  failurePolicy: 'Fail',
  failurePolicyReason: 'a widget of the wrong size\nbreaks the line',
  timeoutSeconds: 5,
  validate: () => allow(),
});
const defaults = mutatingWebhook({
  name: 'defaults.widgets.example.com',
  resource: Widget,
  failurePolicy: 'Ignore',
  failurePolicyReason: 'the controller defaults too',
  operations: ['CREATE'],
  mutate: (o) => o,
});
const namespaces = validatingWebhook({
  name: 'names.namespaces.example.com',
  resource: Namespace,
  failurePolicy: 'Ignore',
  failurePolicyReason: 'advisory',
  validate: () => allow(),
});

const service = (path: string): WebhookClientConfig => ({ service: { name: 'w-webhook-service', namespace: 'w-system', path, port: 443 } });

void test('one entry per webhook, with the rules, policies and selector the declaration and kubebuilder give', () => {
  const { validating, mutating } = toWebhookConfigurations([size, defaults, namespaces], {
    name: 'w',
    clientConfig: service,
    namespace: 'w-system',
  });
  assert.ok(validating && mutating);
  assert.equal(validating.kind, 'ValidatingWebhookConfiguration');
  assert.equal(validating.metadata.name, 'w');
  assert.deepEqual(validating.webhooks[0], {
    name: 'size.widgets.example.com',
    clientConfig: { service: { name: 'w-webhook-service', namespace: 'w-system', path: '/validate/size.widgets.example.com', port: 443 } },
    rules: [
      { apiGroups: ['example.com'], apiVersions: ['v2'], resources: ['widgets'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' },
    ],
    failurePolicy: 'Fail',
    matchPolicy: 'Equivalent',
    sideEffects: 'None',
    timeoutSeconds: 5,
    admissionReviewVersions: ['v1'],
    namespaceSelector: {
      matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'w-system'] }],
    },
  });
  assert.deepEqual(validating.webhooks[1]?.rules, [
    { apiGroups: [''], apiVersions: ['v1'], resources: ['namespaces'], operations: ['CREATE', 'UPDATE'], scope: 'Cluster' },
  ]);
  assert.equal(mutating.kind, 'MutatingWebhookConfiguration');
  assert.equal(mutating.webhooks.length, 1);
  const m = mutating.webhooks[0]!;
  assert.equal(m.reinvocationPolicy, 'IfNeeded');
  assert.equal(m.failurePolicy, 'Ignore');
  assert.equal(m.timeoutSeconds, 10);
  assert.deepEqual(m.rules[0]?.operations, ['CREATE']);
  assert.deepEqual(m.clientConfig, service('/mutate/defaults.widgets.example.com'));
  assert.equal('reinvocationPolicy' in validating.webhooks[0]!, false);
});

void test('a kind with no webhook is absent; a given namespaceSelector and url client config are used as given', () => {
  const selector = { matchLabels: { 'kubernetes.io/metadata.name': 'test-ns' } };
  const out = toWebhookConfigurations([size], {
    name: 'local',
    clientConfig: (path) => ({ url: `https://127.0.0.1:9443${path}`, caBundle: 'Q0E=' }),
    namespaceSelector: selector,
  });
  assert.equal(out.mutating, undefined);
  assert.deepEqual(out.validating?.webhooks[0]?.clientConfig, {
    url: 'https://127.0.0.1:9443/validate/size.widgets.example.com',
    caBundle: 'Q0E=',
  });
  assert.deepEqual(out.validating?.webhooks[0]?.namespaceSelector, selector);
  assert.notEqual(out.validating?.webhooks[0]?.namespaceSelector, selector, 'a copy: a caller editing one entry cannot change another');
  assert.deepEqual(toWebhookConfigurations([], { name: 'none', clientConfig: service }), {});
});

void test('without an operator namespace the default selector still keeps kube-system out', () => {
  const out = toWebhookConfigurations([size], { name: 'w', clientConfig: service });
  assert.deepEqual(out.validating?.webhooks[0]?.namespaceSelector, excludeNamespaces());
  assert.deepEqual(excludeNamespaces(), {
    matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] }],
  });
});

void test('the YAML has each failurePolicyReason on one line beside its failurePolicy, and parses back to the objects', () => {
  const webhooks = [size, defaults];
  const configs = toWebhookConfigurations(webhooks, {
    name: 'w',
    clientConfig: service,
    annotations: { 'cert-manager.io/inject-ca-from': 'w-system/w-serving-cert' },
  });
  const text = renderWebhookConfigurations(configs, webhooks);
  assert.match(text, /^ {4}failurePolicy: Fail # a widget of the wrong size breaks the line$/m);
  assert.match(text, /^ {4}failurePolicy: Ignore # the controller defaults too$/m);
  const docs = parseAllDocuments(text).map((d) => d.toJS() as unknown);
  assert.deepEqual(docs, [configs.mutating, configs.validating]);
});
