import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient } from '../client/client.js';
import { ConfigMap } from '../client/resources.js';
import { type TestEnv, eventually, startTestEnv } from '../tooling/envtest/testenv.js';
import { Informer } from './informer.js';
import { clientListWatcher } from '../watch/watcher.js';
import { LABEL_INDEX } from './store.js';

let env: TestEnv;
let client: KubeClient;

before(async () => {
  env = await startTestEnv();
  client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
});

after(async () => {
  client?.close();
  await env?.cleanup();
});

void test('an informer over two namespaces tracks kubectl changes across watch reconnects', async (t) => {
  const [a, b] = [await env.namespace('inf'), await env.namespace('inf')];
  const restarts: string[] = [];
  const inf = Informer.forType(client, ConfigMap, {
    namespaces: [a, b],
    // Server timeouts of 1–2 s force several clean reconnects during the test.
    watcher: { minTimeoutSeconds: 1, maxTimeoutSeconds: 2, hooks: { onRestart: (r) => restarts.push(r) } },
  });
  const log: string[] = [];
  inf.subscribe((c) => log.push(`${c.type} ${c.object.metadata.name}`));
  const ctrl = new AbortController();
  t.after(() => ctrl.abort());
  const run = inf.start(ctrl.signal);
  assert.equal(await inf.waitForSync(), true);
  assert.ok(inf.store.get(`${a}/kube-root-ca.crt`), 'first list is stored');
  assert.equal(inf.store.get(`${a}/kube-root-ca.crt`)?.metadata.managedFields, undefined, 'managedFields stripped');

  await env.kubectlOk(['-n', a, 'create', 'configmap', 'one', '--from-literal=k=v']);
  await new Promise((r) => setTimeout(r, 2500));
  await env.kubectlOk(['-n', a, 'label', 'configmap', 'one', 'app=x']);
  await env.kubectlOk(['-n', b, 'create', 'configmap', 'two']);
  await env.kubectlOk(['-n', a, 'delete', 'configmap', 'one']);
  await eventually(
    'informer to see the delete',
    async () => (log.includes('delete one') && inf.store.get(`${b}/two`) ? true : undefined),
    10_000,
  );
  assert.deepEqual(
    log.filter((l) => !l.includes('kube-root-ca')),
    ['add one', 'update one', 'add two', 'delete one'],
  );
  inf.store.ensureIndex(LABEL_INDEX);
  assert.deepEqual(inf.store.byIndex(LABEL_INDEX, 'app=x'), []);
  assert.ok(restarts.includes('closed'), `expected clean reconnects, got ${restarts.join(',')}`);
  ctrl.abort();
  await run;
});

void test('an informer takes its state from the watch itself (WatchList), with no list request, and follows changes after it', async (t) => {
  const ns = await env.namespace('wl');
  for (const name of ['w1', 'w2', 'w3']) await env.kubectlOk(['-n', ns, 'create', 'configmap', name]);
  const lists: unknown[] = [];
  const source = clientListWatcher(client, ConfigMap, { namespace: ns });
  const inf = new Informer(() => ({ ...source, list: (o) => (lists.push(o), source.list(o)) }), { namespaces: [ns] });
  const ctrl = new AbortController();
  t.after(() => ctrl.abort());
  const run = inf.start(ctrl.signal);
  assert.equal(await inf.waitForSync(), true);
  assert.equal(lists.length, 0, 'the API server streamed the state: no list, no fallback');
  assert.deepEqual(inf.store.keys().sort(), [`${ns}/kube-root-ca.crt`, `${ns}/w1`, `${ns}/w2`, `${ns}/w3`]);
  await env.kubectlOk(['-n', ns, 'delete', 'configmap', 'w2']);
  await eventually('the delete after the state', async () => (inf.store.get(`${ns}/w2`) ? undefined : true), 10_000);
  ctrl.abort();
  await run;
});
