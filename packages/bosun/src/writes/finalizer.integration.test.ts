// Finalizer writes against a real API server: only the server shows which refusal a lost race
// gets (a failed JSON-patch test is an opaque 422) and how a set list is shared between managers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient } from '../client/client.js';
import { isConflict, isNotFound } from '../client/errors.js';
import { ConfigMap } from '../client/resources.js';
import type { KubeObject } from '../client/types.js';
import { startTestEnv, type TestEnv } from '../tooling/envtest/testenv.js';
import { withFinalizer, type FinalizerContext } from './finalizer.js';

let env: TestEnv;
let ns: string;
let client: KubeClient;
let ctx: FinalizerContext;

const A = 'test.bosun.dev/a';
const B = 'test.bosun.dev/b';

before(async () => {
  env = await startTestEnv();
  ns = await env.namespace('finalizer');
  client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  ctx = { client, fieldManager: 'bosun-test' };
});

after(async () => {
  client?.close();
  await env?.cleanup();
});

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return undefined;
}

function configMap(name: string, finalizers?: string[]): Promise<KubeObject> {
  return client.create<KubeObject>(ConfigMap, { metadata: { name, namespace: ns, ...(finalizers ? { finalizers } : {}) } });
}

const noop = { apply: () => 'applied', cleanup: () => {} };

void test('withFinalizer: adding to an object deleted and re-created since it was read is a 409 conflict, not a 422', async () => {
  const stale = await configMap('recreated');
  await client.delete(ConfigMap, ns, 'recreated');
  await configMap('recreated');
  const err = await errorOf(withFinalizer(ctx, ConfigMap, stale, A, noop));
  assert.ok(isConflict(err), `want a 409 conflict, got ${String(err)}`);
  assert.equal((await client.get(ConfigMap, ns, 'recreated')).metadata.finalizers, undefined, 'the new object must not get the finalizer');
});

void test('withFinalizer: adding to an object that began deleting since it was read is a 409 conflict', async () => {
  const stale = await configMap('deleting', ['other.example/keep']);
  await client.delete(ConfigMap, ns, 'deleting');
  const err = await errorOf(withFinalizer(ctx, ConfigMap, stale, A, noop));
  assert.ok(isConflict(err), `want a 409 conflict, got ${String(err)}`);
  await client.patch(ConfigMap, ns, 'deleting', { metadata: { finalizers: null } }, 'merge');
});

void test('withFinalizer: an object deleted since it was read is a conflict and is not re-created', async () => {
  const stale = await configMap('gone');
  await client.delete(ConfigMap, ns, 'gone');
  const err = await errorOf(withFinalizer(ctx, ConfigMap, stale, A, noop));
  assert.ok(isConflict(err), `want a 409 conflict, got ${String(err)}`);
  assert.ok(isNotFound(await errorOf(client.get(ConfigMap, ns, 'gone'))));
});

void test('withFinalizer: two controllers adding their finalizers from one stale copy both succeed and keep the other entry', async () => {
  const stale = await configMap('two', ['other.example/keep']);
  assert.equal(await withFinalizer(ctx, ConfigMap, stale, A, noop), 'applied');
  assert.equal(await withFinalizer({ client, fieldManager: 'another-controller' }, ConfigMap, stale, B, noop), 'applied');
  assert.deepEqual((await client.get(ConfigMap, ns, 'two')).metadata.finalizers?.sort(), ['other.example/keep', A, B].sort());
});

void test('withFinalizer: apply sees the object with the finalizer already on it', async () => {
  const obj = await configMap('apply-sees');
  const seen = await withFinalizer(ctx, ConfigMap, obj, A, { apply: (o) => o.metadata.finalizers, cleanup: () => {} });
  assert.deepEqual(seen, [A]);
});

void test('withFinalizer: cleanup runs on deletion and the finalizer goes only after it succeeded, from a stale copy, keeping others', async () => {
  const fresh = await configMap('cleanup');
  await withFinalizer(ctx, ConfigMap, fresh, A, noop);
  await withFinalizer({ client, fieldManager: 'another-controller' }, ConfigMap, fresh, B, noop);
  await client.delete(ConfigMap, ns, 'cleanup');
  const deleting = await client.get<KubeObject>(ConfigMap, ns, 'cleanup');
  // Another controller removes its finalizer first: our copy is now stale.
  await withFinalizer({ client, fieldManager: 'another-controller' }, ConfigMap, deleting, B, noop);

  let cleanups = 0;
  const failing = {
    apply: () => assert.fail('apply must not run on a deleted object'),
    cleanup: () => {
      cleanups++;
      throw new Error('external system down');
    },
  };
  await assert.rejects(withFinalizer(ctx, ConfigMap, deleting, A, failing), /external system down/);
  assert.deepEqual((await client.get(ConfigMap, ns, 'cleanup')).metadata.finalizers, [A], 'a failed cleanup keeps the finalizer');

  await withFinalizer(ctx, ConfigMap, deleting, A, {
    apply: () => assert.fail('no apply'),
    cleanup: () => {
      cleanups++;
    },
  });
  assert.equal(cleanups, 2);
  assert.ok(isNotFound(await errorOf(client.get(ConfigMap, ns, 'cleanup'))), 'the object is gone once the last finalizer went');
});

void test('withFinalizer: removes a finalizer another manager co-owns (written by an update, as bosun 0.1 did)', async () => {
  await configMap('legacy', [A, 'other.example/keep']);
  await client.delete(ConfigMap, ns, 'legacy');
  const deleting = await client.get<KubeObject>(ConfigMap, ns, 'legacy');
  await withFinalizer(ctx, ConfigMap, deleting, A, noop);
  assert.deepEqual((await client.get(ConfigMap, ns, 'legacy')).metadata.finalizers, ['other.example/keep']);
  await client.patch(ConfigMap, ns, 'legacy', { metadata: { finalizers: null } }, 'merge');
});

void test('withFinalizer: a deleted object without the finalizer runs nothing', async () => {
  await configMap('bare', ['other.example/keep']);
  await client.delete(ConfigMap, ns, 'bare');
  const deleting = await client.get<KubeObject>(ConfigMap, ns, 'bare');
  const r = await withFinalizer(ctx, ConfigMap, deleting, A, {
    apply: () => assert.fail('no apply'),
    cleanup: () => assert.fail('no cleanup'),
  });
  assert.equal(r, undefined);
  await client.patch(ConfigMap, ns, 'bare', { metadata: { finalizers: null } }, 'merge');
});
