// Which cache a controller's reads land in, through a real manager: the scopes come from the watches
// each controller declares, and only the API server's label-selected lists show what each cache holds.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient } from '../client/client.js';
import { ConfigMap, Pod } from '../client/resources.js';
import type { KubeObject } from '../client/types.js';
import { controller } from '../controller/builder.js';
import { eventually, startTestEnv, type TestEnv } from '../tooling/envtest/testenv.js';
import { silentLogger } from '../telemetry/logger.js';
import { Manager } from '../manager/manager.js';

let env: TestEnv;
let admin: KubeClient;

before(async () => {
  env = await startTestEnv();
  admin = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
});

after(async () => {
  admin?.close();
  await env?.cleanup();
});

function pod(ns: string, name: string, labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { namespace: ns, name, labels },
    spec: { containers: [{ name: 'main', image: 'busybox' }] },
  };
}

void test('two controllers watching Pods with and without a label filter each read from the cache their own watch declared', async (t) => {
  const ns = await env.namespace('reader');
  let filteredSaw: string[] = [];
  const allSaw = new Map<string, boolean>();
  // Added first, so a reader that takes the first informer registered for Pods would take this filtered one.
  const filtered = controller('team-a-pods')
    .for(ConfigMap)
    .watches(Pod, () => [{ namespace: ns, name: 'trigger' }], { labels: { team: 'a' } })
    .reconcile(async (req, ctx) => {
      if (req.name !== 'trigger') return;
      filteredSaw = ctx.cache.list(Pod, { namespace: ns }).map((p) => p.metadata.name ?? '');
    });
  const all = controller('all-pods')
    .for(Pod)
    .reconcile(async (req, ctx) => {
      allSaw.set(req.name, ctx.cache.get(Pod, req.namespace, req.name) !== undefined);
    });
  const m = new Manager({ client: KubeClient.fromConfig({ kubeconfig: env.kubeconfig }), namespaces: [ns], logger: silentLogger() });
  m.add(filtered).add(all);
  const stop = new AbortController();
  const run = m.start(stop.signal);
  t.after(async () => {
    stop.abort();
    await run.catch(() => undefined);
  });

  await admin.create(Pod, pod(ns, 'team-a', { team: 'a' }));
  await admin.create(Pod, pod(ns, 'plain'));
  await admin.create(ConfigMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace: ns, name: 'trigger' } });

  await eventually(
    'the all-Pods controller to reconcile both Pods',
    async () => (allSaw.has('team-a') && allSaw.has('plain') ? true : undefined),
    20_000,
  );
  assert.deepEqual(Object.fromEntries(allSaw), { 'team-a': true, plain: true }, 'the unfiltered controller reads the unfiltered cache');
  await eventually('the filtered controller to see its Pod', async () => (filteredSaw.includes('team-a') ? true : undefined), 20_000);
  assert.deepEqual(filteredSaw, ['team-a'], 'the filtered controller reads its own label-filtered cache');
});
