// Many requests in flight under one caller signal (a reconcile's, the manager's) are the normal case, not a listener
// leak: Node must not warn "MaxListenersExceededWarning" for them, and each request's listener must go when it ends.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KubeClient } from './client.js';

void test('20 requests under one caller signal: no MaxListenersExceededWarning, no listener left after them', async () => {
  const held: Socket[] = [];
  const server = createServer((sock) => held.push(sock)); // never answers: every request stays in flight
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const dir = await mkdtemp(join(tmpdir(), 'bosun-signal-'));
  const kubeconfig = join(dir, 'config');
  await writeFile(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters: [{ name: c, cluster: { server: 'https://127.0.0.1:${port}', insecure-skip-tls-verify: true } }]\nusers: [{ name: u, user: { token: t } }]\ncontexts: [{ name: x, context: { cluster: c, user: u } }]\ncurrent-context: x\n`,
  );
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  const client = KubeClient.fromConfig({ kubeconfig, requestTimeoutMs: 0, transport: 'http1' });
  const caller = new AbortController();
  try {
    const requests = Array.from({ length: 20 }, () =>
      client.request({ method: 'GET', path: '/api/v1/namespaces', signal: caller.signal }).catch(() => undefined),
    );
    await new Promise((r) => setTimeout(r, 300));
    caller.abort(new Error('stop'));
    await Promise.all(requests);
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    assert.deepEqual(
      warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')),
      [],
    );
    assert.equal(getEventListeners(caller.signal, 'abort').length, 0);
  } finally {
    process.off('warning', onWarning);
    client.close();
    for (const s of held) s.destroy();
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
