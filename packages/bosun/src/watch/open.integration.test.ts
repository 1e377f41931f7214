// The watcher's sign of a healthy quiet stream, from a real API server: the client reports the
// server's 2xx answer to a watch before any event, and never for a watch the server refuses.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../client/errors.js';
import { KubeClient } from '../client/client.js';
import { ConfigMap } from '../client/resources.js';
import type { ResourceType } from '../client/types.js';
import { type TestEnv, startTestEnv } from '../tooling/envtest/testenv.js';
import { clientListWatcher } from './watcher.js';

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

void test('a watch of a namespace where nothing changes reports the server accepted it, before any event', async () => {
  const ns = await env.namespace('watch-open');
  const source = clientListWatcher(client, ConfigMap, { namespace: ns, labelSelector: 'bosun-test=none' });
  const ctrl = new AbortController();
  const list = await source.list({ limit: 0, signal: ctrl.signal });
  let opened = 0;
  const accepted = new Promise<void>((resolve) => {
    const stream = source.watch(
      {
        resourceVersion: list.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: 30,
        onOpen: () => {
          opened++;
          resolve();
        },
      },
      ctrl.signal,
    );
    void (async () => {
      for await (const ev of stream) assert.fail(`no event expected in an empty selection, got ${ev.type}`);
    })();
  });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 10_000)));
  const outcome = await Promise.race([accepted, late]);
  clearTimeout(timer);
  ctrl.abort();
  assert.notEqual(outcome, 'late', 'the watch was not reported accepted within 10 s');
  assert.equal(opened, 1);
});

void test('a watch the server refuses (404: no such resource) does not report itself accepted', async () => {
  const ns = await env.namespace('watch-open');
  const missing: ResourceType = { group: 'bosun.test', version: 'v1', kind: 'Nothing', plural: 'nothings', namespaced: true };
  let opened = false;
  const stream = clientListWatcher(client, missing, { namespace: ns }).watch(
    { resourceVersion: '', allowWatchBookmarks: true, timeoutSeconds: 30, onOpen: () => (opened = true) },
    AbortSignal.timeout(10_000),
  );
  await assert.rejects(
    (async () => {
      for await (const _ of stream) assert.fail('no event expected');
    })(),
    (err: unknown) => err instanceof ApiError && err.status === 404,
  );
  assert.equal(opened, false);
});
