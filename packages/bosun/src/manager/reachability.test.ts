import { strict as assert } from 'node:assert';
import { createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { ServerUnreachableError, connectOnce, probeReachability } from './reachability.js';

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('connectOnce: undefined for a listening port, ECONNREFUSED for a closed one', async () => {
  const srv = createServer((s) => s.destroy());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    assert.equal(await connectOnce(`https://127.0.0.1:${(srv.address() as AddressInfo).port}`, 2000), undefined);
  } finally {
    srv.close();
  }
  assert.equal(await connectOnce(`https://127.0.0.1:${await closedPort()}`, 2000), 'ECONNREFUSED');
});

test('probeReachability reports a refused server at once, backs off, and stops when it listens', async () => {
  const port = await closedPort();
  const server = `https://127.0.0.1:${port}`;
  const failures: ServerUnreachableError[] = [];
  const srv = createServer((s) => s.destroy());
  const done = probeReachability(
    server,
    new AbortController().signal,
    (err) => {
      failures.push(err);
      // The server comes up after the second failure: the next connect succeeds and the probe ends.
      if (failures.length === 2) srv.listen(port, '127.0.0.1');
    },
    { initialDelayMs: 20, maxDelayMs: 40 },
  );
  try {
    assert.equal(await done, undefined);
  } finally {
    srv.close();
  }
  assert.equal(failures.length, 2);
  assert.equal(
    failures[0]!.message,
    `cannot connect to ${server} (ECONNREFUSED): is the API server running, and is the kubeconfig's server right?`,
  );
});

test('probeReachability returns the last failure when aborted while the server stays away', async () => {
  const ac = new AbortController();
  const failures: string[] = [];
  const last = await probeReachability(
    `https://127.0.0.1:${await closedPort()}`,
    ac.signal,
    (err) => {
      failures.push(err.errno);
      ac.abort();
    },
    { initialDelayMs: 60_000 },
  );
  assert.deepEqual(failures, ['ECONNREFUSED']);
  assert.equal(last?.errno, 'ECONNREFUSED');
});
