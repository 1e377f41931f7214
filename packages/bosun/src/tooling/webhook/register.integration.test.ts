// Registration of local webhooks with the real API server of the test cluster: what is applied, replaced and
// removed, and the refusals that name the fix. Nothing here calls a webhook (the URLs point at port 1).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { KubeClient } from '../../client/client.js';
import { toMultiVersionCrd, toVersionedBaseCrd } from '../generate/crd.js';
import { startTestEnv, type TestEnv } from '../envtest/testenv.js';
import { ensureWebhookCerts } from './certs.js';
import { gadgetApi } from './testdata/gadgets.js';
import { registerWebhooks, unregisterWebhooks, WebhookRegistrationError } from './register.js';

let env: TestEnv;
let client: KubeClient;
let caBundle: string;
let tmp: string;
const api = gadgetApi();

before(async () => {
  env = await startTestEnv();
  client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  tmp = await mkdtemp(join(tmpdir(), 'bosun-register-'));
  caBundle = (await ensureWebhookCerts(tmp)).caBundle;
});

after(async () => {
  client?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

void test('registering again under the same name replaces the registration; unregister removes it; names keep registrations apart', async () => {
  const name = `bosun-test-replace-${api.group.split('.')[0]}`;
  const other = `${name}-other`;
  const base = {
    client,
    baseUrl: 'https://127.0.0.1:1',
    caBundle,
    namespaceSelector: { matchLabels: { none: 'x' } },
  };
  const first = await registerWebhooks({ ...base, name, webhooks: [api.size, api.defaults] });
  assert.deepEqual([first.validating, first.mutating], [name, name]);
  await registerWebhooks({ ...base, name: other, webhooks: [api.size] });
  const second = await registerWebhooks({ ...base, name, webhooks: [api.size] });
  assert.deepEqual([second.validating, second.mutating], [name, undefined]);
  assert.equal((await env.kubectl(['get', 'mutatingwebhookconfiguration', name])).code, 1, 'the mutating configuration is gone');
  const v = JSON.parse(await env.kubectlOk(['get', 'validatingwebhookconfiguration', name, '-o', 'json'])) as {
    metadata: { labels: Record<string, string> };
    webhooks: { name: string; clientConfig: { url: string; caBundle: string }; namespaceSelector: unknown }[];
  };
  assert.deepEqual(
    v.webhooks.map((w) => [w.name, w.clientConfig.url, w.clientConfig.caBundle === caBundle]),
    [[`size.gadgets.${api.group}`, `https://127.0.0.1:1/validate/size.gadgets.${api.group}`, true]],
  );
  assert.equal(v.metadata.labels['bosun.dev/local-webhooks'], name);
  await second.unregister();
  assert.equal((await env.kubectl(['get', 'validatingwebhookconfiguration', name])).code, 1, 'unregistered');
  await env.kubectlOk(['get', 'validatingwebhookconfiguration', other]);
  await unregisterWebhooks(client, other);
  await unregisterWebhooks(client, other);
  assert.equal((await env.kubectl(['get', 'validatingwebhookconfiguration', other])).code, 1);
});

void test('registering versions of a CRD that is missing, or lacks a version, names the CRD and the fix', async () => {
  const missing = gadgetApi();
  const base = { client, name: 'bosun-test-never-applied', baseUrl: 'https://127.0.0.1:1', caBundle: caBundle };
  await assert.rejects(
    registerWebhooks({ ...base, versions: [missing.versions], webhooks: [missing.size] }),
    (err: Error) =>
      err instanceof WebhookRegistrationError &&
      err.message ===
        `CRD gadgets.${missing.group} does not exist, so its conversion webhook cannot be registered. Fix: apply the CRDs first (bosun generate, then kubectl apply -f config/crd)`,
  );
  // Refused before any admission configuration was applied.
  assert.equal((await env.kubectl(['get', 'validatingwebhookconfiguration', base.name])).code, 1);
  // A CRD of the same group serving v1 only.
  const single = structuredClone(toMultiVersionCrd(missing.versions, { clientConfig: { url: 'https://127.0.0.1:1/x' } }));
  delete single.spec.conversion;
  single.spec.versions = single.spec.versions.filter((x) => x.name === 'v1');
  await env.kubectlOk(['apply', '--server-side', '-f', '-'], JSON.stringify(single));
  try {
    await assert.rejects(
      registerWebhooks({ ...base, versions: [missing.versions] }),
      (err: Error) =>
        err instanceof WebhookRegistrationError &&
        err.message.startsWith(`CRD gadgets.${missing.group} has no version v2 (its spec.versions: v1), which its versions declare. Fix:`),
    );
    // The CRD as config/crd holds it: v2 present but not served. Left as it is, and said so with the fix.
    await env.kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify(toVersionedBaseCrd(missing.versions)));
    const r = await registerWebhooks({ ...base, versions: [missing.versions] });
    assert.deepEqual(r.crds, []);
    assert.equal(r.unserved.length, 1);
    assert.match(
      r.unserved[0]!,
      new RegExp(
        `^CRD gadgets\\.${missing.group.replace(/\./g, '\\.')} serves v1 alone: v2 and the conversion webhook are off, so it is left as it is\\. Fix, to serve them from this server: kubectl patch crd gadgets\\.${missing.group.replace(/\./g, '\\.')} --type=json --patch-file config/webhook/`,
      ),
    );
    const crd = JSON.parse(await env.kubectlOk(['get', 'crd', `gadgets.${missing.group}`, '-o', 'json'])) as {
      spec: { conversion?: { strategy: string }; versions: { name: string; served: boolean }[] };
    };
    assert.deepEqual(
      crd.spec.versions.map((v) => [v.name, v.served]),
      [
        ['v1', true],
        ['v2', false],
      ],
    );
    assert.equal(crd.spec.conversion?.strategy ?? 'None', 'None');
    await r.unregister();
  } finally {
    await env.kubectl(['delete', 'crd', `gadgets.${missing.group}`, '--wait=false']);
  }
});

void test("a CRD applied with the in-cluster Service as its converter is pointed at the local server's url instead", async () => {
  const crd = toMultiVersionCrd(api.versions, {
    clientConfig: { service: { name: 'webhook-service', namespace: 'system', path: api.versions.path, port: 443 } },
  });
  await env.kubectlOk(['apply', '--server-side', '-f', '-'], JSON.stringify(crd));
  try {
    const r = await registerWebhooks({
      client,
      name: 'bosun-test-conversion',
      baseUrl: 'https://127.0.0.1:1/',
      caBundle,
      versions: [api.versions],
    });
    assert.deepEqual(r.crds, [api.versions.crdName]);
    const got = JSON.parse(await env.kubectlOk(['get', 'crd', api.versions.crdName, '-o', 'json'])) as { spec: { conversion: unknown } };
    assert.deepEqual(got.spec.conversion, {
      strategy: 'Webhook',
      webhook: {
        clientConfig: { url: `https://127.0.0.1:1/convert/${api.versions.crdName}`, caBundle },
        conversionReviewVersions: ['v1'],
      },
    });
    // No admission webhooks declared: no configuration of either kind.
    assert.equal((await env.kubectl(['get', 'validatingwebhookconfiguration', 'bosun-test-conversion'])).code, 1);
  } finally {
    await env.kubectl(['delete', 'crd', api.versions.crdName, '--wait=false']);
  }
});

void test('unregister with onlyUrl removes a configuration only while it points at that server (local replicas share a name)', async () => {
  const name = `bosun-test-replicas-${api.group.split('.')[0]}`;
  const base = { client, name, caBundle, webhooks: [api.size], namespaceSelector: { matchLabels: { none: 'x' } } };
  try {
    await registerWebhooks({ ...base, baseUrl: 'https://127.0.0.1:1111' });
    // A second replica starts and registers its own server under the same name: its URL wins.
    await registerWebhooks({ ...base, baseUrl: 'https://127.0.0.1:2222' });
    // The first replica stops: it must not remove what now points at the second.
    assert.deepEqual(await unregisterWebhooks(client, name, { onlyUrl: 'https://127.0.0.1:1111' }), []);
    await env.kubectlOk(['get', 'validatingwebhookconfiguration', name]);
    // A port that only shares a prefix is another server.
    assert.deepEqual(await unregisterWebhooks(client, name, { onlyUrl: 'https://127.0.0.1:222' }), []);
    assert.deepEqual(await unregisterWebhooks(client, name, { onlyUrl: 'https://127.0.0.1:2222' }), ['ValidatingWebhookConfiguration']);
    assert.equal((await env.kubectl(['get', 'validatingwebhookconfiguration', name])).code, 1);
  } finally {
    await unregisterWebhooks(client, name);
  }
});
