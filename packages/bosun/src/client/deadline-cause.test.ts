// A request whose deadline passes after an attempt failed must say how that attempt failed: "timed out" alone hides
// a server that refused or reset the connection. The server here resets the first connection and leaves the
// second unanswered, so the first attempt's failure is followed by a retry the deadline cuts short, every time.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KubeClient } from './client.js';
import { RequestTimeoutError, TransportError } from './errors.js';

void test('a deadline that cuts a retry short names the failure of the attempt before it', async () => {
  const held: Socket[] = [];
  let connections = 0;
  const server = createServer((sock) => {
    connections++;
    if (connections === 1) sock.resetAndDestroy();
    else held.push(sock);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const dir = await mkdtemp(join(tmpdir(), 'bosun-deadline-'));
  const kubeconfig = join(dir, 'config');
  await writeFile(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{ name: c, cluster: { server: 'https://127.0.0.1:${port}', insecure-skip-tls-verify: true } }]`,
      'users: [{ name: u, user: { token: t } }]',
      'contexts: [{ name: x, context: { cluster: c, user: u } }]',
      'current-context: x',
      '',
    ].join('\n'),
  );
  const client = KubeClient.fromConfig({ kubeconfig, requestTimeoutMs: 1500, transport: 'http1' });
  try {
    const err = await client.request({ method: 'GET', path: '/api/v1/namespaces' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(connections, 2, 'one attempt reset, one retry left unanswered');
    assert.ok(err instanceof TransportError, String(err));
    assert.ok(err.cause instanceof RequestTimeoutError, 'still reported as a timeout (the deadline ended it)');
    assert.match(err.message, /timed out after 1500 ms/);
    assert.match(
      err.message,
      new RegExp(`timed out after 1500 ms; the attempt before failed: (connect ECONNRESET 127\\.0\\.0\\.1:${port}|socket hang up)$`),
      err.message,
    );
  } finally {
    client.close();
    for (const s of held) s.destroy();
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
