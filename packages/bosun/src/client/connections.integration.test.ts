import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestEnv, eventually, startTestEnv } from '../tooling/envtest/testenv.js';
import { type FaultProxy, startFaultProxy, writeProxyKubeconfig } from '../tooling/envtest/faultproxy.js';
import { KubeClient, type KubeClientConfig, type WatchEvent } from './client.js';
import { TransportError } from './errors.js';
import { ConfigMap } from './resources.js';

let env: TestEnv;
let admin: KubeClient;
let ns: string;

before(async () => {
  env = await startTestEnv();
  admin = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  ns = await env.namespace('conn');
});

after(async () => {
  admin?.close();
  await env?.cleanup();
});

/** Opens a watch on ConfigMaps in `ns` from now, recording events until `ac` aborts or the stream fails. */
function openWatch(client: KubeClient, rv: string, ac: AbortController): { seen: string[]; done: Promise<unknown>; ended: () => boolean } {
  const seen: string[] = [];
  let ended = false;
  const done = (async () => {
    try {
      for await (const ev of client.watch(
        ConfigMap,
        { namespace: ns, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 120 },
        ac.signal,
      ) as AsyncIterable<WatchEvent>) {
        seen.push(`${ev.type} ${ev.object.metadata.name ?? ''}`);
      }
      return 'ended';
    } catch (err) {
      return err;
    } finally {
      ended = true;
    }
  })();
  return { seen, done, ended: () => ended };
}

async function elapsed<T>(p: Promise<T>): Promise<{ value: T | undefined; error: unknown; ms: number }> {
  const t0 = Date.now();
  try {
    const value = await p;
    return { value, error: undefined, ms: Date.now() - t0 };
  } catch (error) {
    return { value: undefined, error, ms: Date.now() - t0 };
  }
}

for (const transport of ['http1', 'h2'] as const) {
  void describe(`transport ${transport}`, () => {
    void test('more watches than the request pool has sockets never starve a get', { timeout: 20_000 }, async () => {
      const client = KubeClient.fromConfig({
        kubeconfig: env.kubeconfig,
        transport,
        maxSockets: 4,
        requestTimeoutMs: 5000,
      } as KubeClientConfig);
      const ac = new AbortController();
      try {
        const rv = (await client.list(ConfigMap, { namespace: ns, limit: 1 })).resourceVersion;
        const watches = Array.from({ length: 12 }, () => openWatch(client, rv, ac));
        const name = `starve-${transport}`;
        await admin.create(ConfigMap, { metadata: { namespace: ns, name } });
        // At least as many watches as the pool has sockets are open and streaming.
        const seeing = (): number => watches.filter((w) => w.seen.includes(`ADDED ${name}`)).length;
        await eventually('4 watches to see the create', async () => (seeing() >= 4 ? true : undefined), 10_000);
        const r = await elapsed(client.get(ConfigMap, ns, name));
        assert.equal(r.error, undefined, `get failed after ${r.ms} ms: ${String(r.error)}`);
        assert.ok(r.ms < 5000, `get took ${r.ms} ms`);
        await eventually('all 12 watches to see the create', async () => (seeing() === 12 ? true : undefined), 10_000);
      } finally {
        ac.abort();
        client.close();
      }
    });
  });
}

void test(
  'http1: a request whose deadline passes while it waits for a socket rejects on time; so does an abort',
  { timeout: 20_000 },
  async () => {
    const client = KubeClient.fromConfig({ kubeconfig: env.kubeconfig, transport: 'http1', maxSockets: 1 } as KubeClientConfig);
    try {
      // A non-watch request that holds the only request socket for 4 s: a watch read to its server-side end.
      const hold = client.request({
        method: 'GET',
        path: `/api/v1/namespaces/${ns}/configmaps`,
        query: { watch: 1, timeoutSeconds: 4 },
        timeoutMs: 0,
      });
      await new Promise((r) => setTimeout(r, 300));
      const timed = await elapsed(client.request({ method: 'GET', path: `/api/v1/namespaces/${ns}/configmaps`, timeoutMs: 500 }));
      assert.ok(timed.error instanceof TransportError, `expected a TransportError, got ${String(timed.error)}`);
      assert.match(timed.error.message, /timed out after 500 ms/);
      assert.ok(timed.ms < 1500, `rejected after ${timed.ms} ms`);

      const aborted = await elapsed(client.get(ConfigMap, ns, 'whatever', AbortSignal.timeout(300)));
      assert.ok(aborted.error instanceof TransportError, `expected a TransportError, got ${String(aborted.error)}`);
      assert.ok(aborted.ms < 1300, `rejected after ${aborted.ms} ms`);
      // Its body is a watch stream, not one JSON document: only its holding the socket mattered.
      await hold.catch(() => undefined);
    } finally {
      client.close();
    }
  },
);

void describe('a silently dead connection', () => {
  let proxy: FaultProxy;
  let kubeconfig: string;
  before(async () => {
    const target = new URL(env.state.apiserverUrl);
    proxy = await startFaultProxy({ target: { host: target.hostname, port: Number(target.port) } });
    kubeconfig = await writeProxyKubeconfig(env.kubeconfig, proxy.url, join(mkdtempSync(join(tmpdir(), 'bosun-conn-')), 'kubeconfig'));
  });
  after(async () => {
    await proxy?.close();
  });

  for (const transport of ['h2', 'http1'] as const) {
    void test(
      `${transport}: after every connection is cut, the watch fails at once and the next get opens a new connection`,
      { timeout: 20_000 },
      async () => {
        const client = KubeClient.fromConfig({ kubeconfig, transport } as KubeClientConfig);
        const ac = new AbortController();
        try {
          const rv = (await client.list(ConfigMap, { namespace: ns, limit: 1 })).resourceVersion;
          const w = openWatch(client, rv, ac);
          const name = `cut-${transport}`;
          await admin.create(ConfigMap, { metadata: { namespace: ns, name } });
          await eventually('the watch to see the create', async () => (w.seen.includes(`ADDED ${name}`) ? true : undefined), 10_000);
          const accepted = proxy.stats().accepted;
          proxy.cut();
          const watchEnd = await elapsed(w.done);
          assert.ok(watchEnd.value instanceof TransportError, `the watch ended with ${String(watchEnd.value)}`);
          assert.ok(watchEnd.ms < 1000, `the watch failed after ${watchEnd.ms} ms`);
          const got = await client.get(ConfigMap, ns, name);
          assert.equal(got.metadata.name, name);
          assert.ok(proxy.stats().accepted > accepted, 'a new connection was opened');
        } finally {
          ac.abort();
          client.close();
        }
      },
    );

    void test(
      `${transport}: a watch fails and a get succeeds on a new connection within the bound; a write fails`,
      { timeout: 30_000 },
      async () => {
        // Short timings: h2 pings after 1 s read-idle and gives up 1 s later; HTTP/1.1 watch sockets die after 1.5 s of silence.
        const client = KubeClient.fromConfig({
          kubeconfig,
          transport,
          readIdleTimeoutMs: 1000,
          pingTimeoutMs: 1000,
          watchIdleTimeoutMs: 1500,
          requestTimeoutMs: 30_000,
        } as KubeClientConfig);
        const ac = new AbortController();
        try {
          const rv = (await client.list(ConfigMap, { namespace: ns, limit: 1 })).resourceVersion;
          const w = openWatch(client, rv, ac);
          const name = `dead-${transport}`;
          await admin.create(ConfigMap, { metadata: { namespace: ns, name } });
          await eventually('the watch to see the create', async () => (w.seen.includes(`ADDED ${name}`) ? true : undefined), 10_000);
          // Two pooled request connections for HTTP/1.1 (one each for the get and the patch below); h2 multiplexes them.
          await Promise.all([client.get(ConfigMap, ns, name), client.get(ConfigMap, ns, name)]);
          assert.equal(w.ended(), false, 'the watch is still open when the connections freeze');

          proxy.freeze();
          const t0 = Date.now();
          const [watchEnd, get, patch] = await Promise.all([
            elapsed(w.done),
            elapsed(client.get(ConfigMap, ns, name)),
            elapsed(client.patch(ConfigMap, ns, name, { data: { k: 'v' } })),
          ]);
          const bound = 4000;
          assert.ok(watchEnd.value instanceof TransportError, `the watch ended with ${String(watchEnd.value)}`);
          assert.ok(watchEnd.ms < bound, `the watch failed after ${watchEnd.ms} ms`);
          assert.equal(get.error, undefined, `get: ${String(get.error)}`);
          assert.ok(get.ms < bound + 2000, `the get took ${get.ms} ms (retried on a new connection)`);
          // A PATCH is not resent after an unanswered attempt (it may have been applied): it fails, within the bound.
          assert.ok(patch.error instanceof TransportError, `patch: ${String(patch.error ?? 'succeeded')}`);
          assert.ok(patch.ms < bound, `the patch failed after ${patch.ms} ms`);
          assert.ok(Date.now() - t0 < bound + 2000);
        } finally {
          ac.abort();
          client.close();
          // Cut before unfreezing: connections unfrozen and cut in the same tick leave the proxy's process spinning.
          proxy.cut();
          proxy.unfreeze();
        }
      },
    );
  }
});
