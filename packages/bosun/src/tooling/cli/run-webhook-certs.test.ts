// `bosun run --webhook-certs-secret`: the Manager's webhookCerts it gives, as config/certs-self runs it in a Pod.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from 'commander';
import { webhookCertsFor, type RunOptions } from './run.js';

const base = { metricsAddr: '0', healthAddr: '0', namespace: [], webhookCertDir: '/certs' } as unknown as RunOptions;
const project = { prefix: 'shop', namespace: 'shop-system' };
const served = { webhooks: [{ type: 'validating' }], versions: [{ crdName: 'orders.shop.example.com' }] };

void test('the Secret in the Pod namespace, the Service and configuration bosun generate names, only the kinds served', () => {
  const saved = process.env.POD_NAMESPACE;
  try {
    process.env.POD_NAMESPACE = 'prod';
    assert.deepEqual(webhookCertsFor({ ...base, webhookCertsSecret: 'shop-webhook-server-cert' }, project, served), {
      secret: { namespace: 'prod', name: 'shop-webhook-server-cert' },
      service: { namespace: 'prod', name: 'shop-webhook-service' },
      validatingWebhookConfigurations: ['shop-webhooks'],
      mutatingWebhookConfigurations: [],
      crds: ['orders.shop.example.com'],
    });
    const named = webhookCertsFor({ ...base, webhookCertsSecret: 'other/s' }, project, served);
    assert.deepEqual(named.secret, { namespace: 'other', name: 's' });
    assert.equal(named.service.namespace, 'prod', "a namespace in the flag is the Secret's only: the Service is the Pod's");
    delete process.env.POD_NAMESPACE;
    assert.equal(webhookCertsFor({ ...base, webhookCertsSecret: 's' }, project, served).secret.namespace, 'shop-system');
  } finally {
    if (saved === undefined) delete process.env.POD_NAMESPACE;
    else process.env.POD_NAMESPACE = saved;
  }
});

void test('--webhook-certs-secret without --webhook-cert-dir is refused, naming both flags', () => {
  assert.throws(
    () => webhookCertsFor({ ...base, webhookCertDir: undefined, webhookCertsSecret: 's' }, project, served),
    (err: unknown) => err instanceof InvalidArgumentError && /--webhook-certs-secret needs --webhook-cert-dir/.test(err.message),
  );
});
