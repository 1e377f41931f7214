// The checks of `webhookCerts` before anything runs: each refusal names the field and the fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeClient } from '../client/client.js';
import { Manager } from '../manager/manager.js';
import { silentLogger } from '../telemetry/logger.js';
import { webhookCertsSettings, WebhookCertsConfigError, type WebhookCertsOptions } from './rotator.js';

const ok: WebhookCertsOptions = { secret: { namespace: 'ops', name: 'certs' }, service: { namespace: 'ops', name: 'hooks' } };
const YEAR = 365 * 24 * 3600 * 1000;

void test('webhookCerts defaults: a year, a CA of ten years, a 60 s overlap, the margin left to each certificate', () => {
  assert.deepEqual(webhookCertsSettings(ok), { validityMs: YEAR, caValidityMs: 10 * YEAR, renewBeforeMs: undefined, overlapMs: 60_000 });
  assert.deepEqual(webhookCertsSettings({ ...ok, validityMs: 6_000, caValidityMs: 12_000, renewBeforeMs: 3_000, overlapMs: 1_000 }), {
    validityMs: 6_000,
    caValidityMs: 12_000,
    renewBeforeMs: 3_000,
    overlapMs: 1_000,
  });
});

void test('webhookCerts that cannot work are refused, naming the field and the fix', () => {
  const refused: [Partial<WebhookCertsOptions>, RegExp][] = [
    [{ secret: { namespace: '', name: 'x' } }, /webhookCerts\.secret needs a namespace and a name\. Fix:/],
    [{ service: undefined as never }, /webhookCerts\.service needs a namespace and a name/],
    [{ crds: ['*'] }, /webhookCerts\.crds has an empty or wildcard name/],
    [{ validatingWebhookConfigurations: [''] }, /webhookCerts\.validatingWebhookConfigurations has an empty/],
    [{ validityMs: 0 }, /webhookCerts\.validityMs is 0\. Fix: give a lifetime above 0 ms/],
    [{ validityMs: 5_000, renewBeforeMs: 5_000 }, /webhookCerts\.renewBeforeMs \(5000 ms\) is not shorter than validityMs/],
    [
      { renewBeforeMs: 1_000, overlapMs: 1_000 },
      /webhookCerts\.overlapMs \(1000 ms\) is not shorter than the renewal margin of validityMs .* Fix: shorten overlapMs/,
    ],
    [{ overlapMs: -1 }, /webhookCerts\.overlapMs is -1/],
  ];
  for (const [change, message] of refused)
    assert.throws(
      () => webhookCertsSettings({ ...ok, ...change }),
      (err: unknown) => err instanceof WebhookCertsConfigError && message.test(err.message),
    );
});

void test('a Manager with webhookCerts and no webhookServer is refused at construction', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bosun-rotator-unit-'));
  try {
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    const client = KubeClient.fromConfig({ kubeconfig });
    assert.throws(
      () => new Manager({ client, logger: silentLogger(), webhookCerts: ok }),
      (err: unknown) => err instanceof WebhookCertsConfigError && /without webhookServer.*Fix: set webhookServer/.test(err.message),
    );
    client.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
