import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type TestEnv, startTestEnv } from '../tooling/envtest/testenv.js';
import { KubeClient } from './client.js';
import { ApiError, isConflict, isNotFound, isAlreadyExists } from './errors.js';
import { ConfigMap, Pod } from './resources.js';
import type { KubeObject } from './types.js';

let env: TestEnv;
let client: KubeClient;
let ns: string;

before(async () => {
  env = await startTestEnv();
  client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  ns = await env.namespace('client');
});

after(async () => {
  client?.close();
  await env?.cleanup();
});

interface CM extends KubeObject {
  data?: Record<string, string>;
}

void test('create, get, list pages, and errors that name verb, object and server message', async () => {
  await client.create<CM>(ConfigMap, { metadata: { namespace: ns, name: 'a' }, data: { k: 'v' } });
  await client.create<CM>(ConfigMap, { metadata: { namespace: ns, name: 'b' } });
  const got = await client.get<CM>(ConfigMap, ns, 'a');
  assert.equal(got.data?.k, 'v');

  const dup = await client.create(ConfigMap, { metadata: { namespace: ns, name: 'a' } }).catch((e: unknown) => e);
  assert.ok(dup instanceof ApiError);
  assert.ok(isConflict(dup) && isAlreadyExists(dup));
  assert.match(dup.message, new RegExp(`^create ConfigMap ${ns}/a: 409 AlreadyExists: .*already exists`));

  const missing = await client.get(ConfigMap, ns, 'nope').catch((e: unknown) => e);
  assert.ok(isNotFound(missing));

  // kube-root-ca.crt is there too, so 3 objects in pages of 2.
  const p1 = await client.list<CM>(ConfigMap, { namespace: ns, limit: 2 });
  assert.equal(p1.items.length, 2);
  assert.ok(p1.continue);
  assert.equal(p1.items[0]?.kind, 'ConfigMap', 'list items get their kind filled in');
  const p2 = await client.list<CM>(ConfigMap, { namespace: ns, limit: 2, continue: p1.continue });
  assert.equal(p2.items.length, 1);
  assert.equal(p2.continue, undefined);
});

void test('server-side apply, patches of every type, status subresource, delete', async () => {
  const applied = await client.apply<CM>(
    ConfigMap,
    { metadata: { namespace: ns, name: 'ssa' }, data: { x: '1' } },
    { fieldManager: 'bosun-test' },
  );
  assert.equal(applied.data?.x, '1');
  assert.equal(applied.metadata.managedFields?.length, 1);
  assert.deepEqual((await client.patch<CM>(ConfigMap, ns, 'ssa', { data: { y: '2' } }, 'merge')).data, { x: '1', y: '2' });
  const jp = await client.patch<CM>(ConfigMap, ns, 'ssa', [{ op: 'add', path: '/data/z', value: '3' }], 'json');
  assert.equal(jp.data?.z, '3');
  const sp = await client.patch<CM>(ConfigMap, ns, 'ssa', { metadata: { labels: { s: '1' } } }, 'strategic');
  assert.equal(sp.metadata.labels?.s, '1');

  // Bound to a node nobody runs, so neither the scheduler nor kwok writes this Pod while the test does.
  await client.apply(
    Pod,
    { metadata: { namespace: ns, name: 'p' }, spec: { nodeName: 'no-such-node', containers: [{ name: 'c', image: 'busybox' }] } },
    { fieldManager: 'bosun-test' },
  );
  const st = await client.applyStatus(
    Pod,
    { metadata: { namespace: ns, name: 'p' }, status: { conditions: [{ type: 'Smoke', status: 'True' }] } },
    { fieldManager: 'bosun-status', force: true },
  );
  assert.ok((st.status as { conditions?: { type: string }[] }).conditions?.some((c) => c.type === 'Smoke'));
  const cur = await client.get(Pod, ns, 'p');
  const rs = await client.replaceStatus(Pod, { ...cur, status: { ...(cur.status as object), message: 'hi' } });
  assert.equal((rs.status as { message?: string }).message, 'hi');
  const stale = await client.replaceStatus(Pod, cur).catch((e: unknown) => e);
  assert.ok(isConflict(stale), 'a stale resourceVersion is a 409 conflict');

  const wrongUid = await client.delete(ConfigMap, ns, 'ssa', { preconditions: { uid: 'not-the-uid' } }).catch((e: unknown) => e);
  assert.ok(isConflict(wrongUid));
  await client.delete(ConfigMap, ns, 'ssa', { propagationPolicy: 'Background' });
  assert.ok(isNotFound(await client.get(ConfigMap, ns, 'ssa').catch((e: unknown) => e)));
});

// A 410 from a real server is not provoked here: a young cluster still serves old revisions from its
// watch cache, so the watcher's 410 handling is pinned by its unit tests (src/watcher/watcher.test.ts).
void test('watch streams events from a resourceVersion', async () => {
  const list = await client.list(ConfigMap, { namespace: ns });
  const ac = new AbortController();
  const seen: string[] = [];
  const done = (async () => {
    for await (const ev of client.watch(
      ConfigMap,
      { namespace: ns, resourceVersion: list.resourceVersion, timeoutSeconds: 30 },
      ac.signal,
    )) {
      seen.push(`${ev.type} ${ev.object.metadata.name ?? ''}`);
      if (seen.length === 2) ac.abort();
    }
  })();
  await client.create(ConfigMap, { metadata: { namespace: ns, name: 'w' } });
  await client.delete(ConfigMap, ns, 'w');
  await done;
  assert.deepEqual(seen, ['ADDED w', 'DELETED w']);
});

void test('the write gate is asked again as the request is handed to a connection: a write it refuses by then is not sent', async () => {
  const gated = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  try {
    // Passes when the call starts, refuses from then on: what a process frozen while it waited for its connection sees.
    let checks = 0;
    gated.setWriteGate((t) => (++checks === 1 ? undefined : new Error(`refused to ${t.verb}: the term ran out`)));
    await assert.rejects(
      gated.create(ConfigMap, { metadata: { name: 'gated', namespace: ns }, data: { a: '1' } }),
      /refused to create: the term ran out/,
    );
    assert.equal(checks, 2);
    await assert.rejects(client.get(ConfigMap, ns, 'gated'), (e: unknown) => isNotFound(e));
  } finally {
    gated.close();
  }
});

void test('metadataOnly: create, patch and apply answer with the written object metadata only', async () => {
  const big = 'x'.repeat(4000);
  const created = await client.create<CM>(
    ConfigMap,
    { metadata: { namespace: ns, name: 'meta-only' }, data: { k: big } },
    { metadataOnly: true },
  );
  assert.equal(created.kind, 'PartialObjectMetadata');
  assert.equal(created.metadata.name, 'meta-only');
  assert.ok(created.metadata.uid && created.metadata.resourceVersion);
  assert.equal(created.data, undefined, 'no data in the answer');
  const patched = await client.patch<CM>(ConfigMap, ns, 'meta-only', { data: { k: 'small' } }, 'merge', { metadataOnly: true });
  assert.equal(patched.kind, 'PartialObjectMetadata');
  assert.notEqual(patched.metadata.resourceVersion, created.metadata.resourceVersion);
  const applied = await client.apply<CM>(
    ConfigMap,
    { metadata: { namespace: ns, name: 'meta-only' }, data: { k: 'applied' } },
    { fieldManager: 'meta-test', force: true, metadataOnly: true },
  );
  assert.equal(applied.kind, 'PartialObjectMetadata');
  assert.equal(applied.data, undefined);
  assert.equal((await client.get<CM>(ConfigMap, ns, 'meta-only')).data?.k, 'applied', 'the write itself is whole');
  const full = await client.patch<CM>(ConfigMap, ns, 'meta-only', { data: { k: 'again' } }, 'merge');
  assert.equal(full.data?.k, 'again', 'without the option the answer is the whole object');
});
