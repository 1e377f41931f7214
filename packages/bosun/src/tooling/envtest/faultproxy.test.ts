import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { FaultProxyError, startFaultProxy, writeProxyKubeconfig, type FaultProxy } from './faultproxy.js';

/** An echo server that also records what each connection sent it. */
interface Echo {
  server: Server;
  port: number;
  received: string[];
}

async function startEcho(): Promise<Echo> {
  const received: string[] = [];
  const server = createServer((s) => {
    const i = received.push('') - 1;
    s.on('data', (d: Buffer) => {
      received[i] += d.toString();
      s.write(d);
    });
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, received };
}

/** A client connection with everything it read so far and how it ended. */
interface Client {
  socket: Socket;
  read: () => string;
  until: (text: string) => Promise<void>;
  closed: Promise<{ error?: string; ended: boolean }>;
}

async function open(proxy: FaultProxy): Promise<Client> {
  const socket = connect({ host: proxy.host, port: proxy.port });
  let buf = '';
  let ended = false;
  const waiters: (() => void)[] = [];
  socket.on('data', (d: Buffer) => {
    buf += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  socket.on('end', () => {
    ended = true;
  });
  const closed = new Promise<{ error?: string; ended: boolean }>((res) => {
    let error: string | undefined;
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    socket.on('close', () => res({ error, ended }));
  });
  await new Promise<void>((r, j) => {
    socket.once('connect', r);
    socket.once('error', j);
  });
  const until = async (text: string) => {
    while (!buf.includes(text)) await new Promise<void>((r) => waiters.push(r));
  };
  return { socket, read: () => buf, until, closed };
}

describe('fault proxy', () => {
  let echo: Echo;
  before(async () => {
    echo = await startEcho();
  });
  after(() => new Promise<void>((r) => echo.server.close(() => r())));

  it('forwards bytes both ways and counts open connections', async () => {
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: echo.port } });
    try {
      assert.match(proxy.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const c = await open(proxy);
      c.socket.write('hello');
      await c.until('hello');
      assert.equal(proxy.connections(), 1);
      c.socket.end();
      await c.closed;
      while (proxy.connections() > 0) await new Promise((r) => setImmediate(r));
      assert.equal(proxy.stats().accepted, 1);
    } finally {
      await proxy.close();
    }
  });

  it('freeze holds the bytes of the connections open at that moment without closing them, while new connections pass', async () => {
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: echo.port } });
    try {
      const old = await open(proxy);
      old.socket.write('a');
      await old.until('a');
      const first = echo.received.length - 1;
      proxy.freeze();
      assert.equal(proxy.stats().frozen, 1);
      old.socket.write('frozen-bytes');
      // A round trip on a new connection passes while the old one is frozen.
      const fresh = await open(proxy);
      fresh.socket.write('fresh');
      await fresh.until('fresh');
      assert.equal(echo.received[first], 'a', 'the frozen connection forwarded nothing to the server');
      assert.equal(old.read(), 'a', 'the frozen connection delivered nothing to the client');
      assert.equal(old.socket.destroyed, false);
      assert.equal(proxy.connections(), 2);
      assert.equal(proxy.stats().frozen, 1);
      proxy.unfreeze();
      await old.until('frozen-bytes');
      assert.equal(old.read(), 'afrozen-bytes');
      old.socket.destroy();
      fresh.socket.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('freeze with newConnections freezes connections accepted later until unfreeze', async () => {
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: echo.port } });
    try {
      proxy.freeze({ newConnections: true });
      const c = await open(proxy);
      c.socket.write('later');
      const probe = await startFaultProxy({ target: { host: '127.0.0.1', port: echo.port } });
      try {
        // A round trip through another proxy to the same server shows the server is answering meanwhile.
        const p = await open(probe);
        p.socket.write('probe');
        await p.until('probe');
        p.socket.destroy();
      } finally {
        await probe.close();
      }
      assert.equal(c.read(), '');
      assert.equal(proxy.stats().frozen, 1);
      proxy.unfreeze();
      await c.until('later');
      c.socket.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('cut resets every connection, frozen ones included', async () => {
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: echo.port } });
    try {
      const a = await open(proxy);
      a.socket.write('x');
      await a.until('x');
      proxy.freeze();
      const b = await open(proxy);
      b.socket.write('y');
      await b.until('y');
      proxy.cut();
      const [ca, cb] = await Promise.all([a.closed, b.closed]);
      assert.equal(ca.error, 'ECONNRESET');
      assert.equal(cb.error, 'ECONNRESET');
      assert.equal(proxy.connections(), 0);
      assert.equal(proxy.stats().cut, 2);
    } finally {
      await proxy.close();
    }
  });

  it('cut with fin closes connections cleanly', async () => {
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: echo.port } });
    try {
      const a = await open(proxy);
      a.socket.write('x');
      await a.until('x');
      proxy.cut('fin');
      const ca = await a.closed;
      assert.equal(ca.error, undefined);
      assert.equal(ca.ended, true);
    } finally {
      await proxy.close();
    }
  });

  it('the drop rate destroys new connections as the random source decides', async () => {
    const draws = [0.2, 0.7];
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: echo.port }, random: () => draws.shift() ?? 1 });
    try {
      proxy.setDropRate(0.5);
      // The reset may come before or after the client sees the connect: either way no byte comes back.
      const dropped = connect({ host: proxy.host, port: proxy.port });
      let got = '';
      dropped.on('data', (d: Buffer) => (got += d.toString()));
      dropped.on('connect', () => dropped.write('lost'));
      dropped.on('error', () => {});
      await new Promise((r) => dropped.once('close', r));
      assert.equal(got, '');
      const kept = await open(proxy);
      kept.socket.write('kept');
      await kept.until('kept');
      assert.deepEqual({ accepted: proxy.stats().accepted, dropped: proxy.stats().dropped }, { accepted: 2, dropped: 1 });
      kept.socket.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('latency delays each chunk in each direction and keeps their order', async () => {
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: echo.port } });
    try {
      const c = await open(proxy);
      proxy.setLatency(150);
      const t0 = performance.now();
      for (const part of ['1', '2', '3', '4']) c.socket.write(part);
      await c.until('1234');
      const elapsed = performance.now() - t0;
      assert.equal(c.read(), '1234');
      // One delay to the server and one back (timers may fire up to a millisecond early).
      assert.ok(elapsed >= 295, `round trip took ${elapsed.toFixed(0)} ms, expected at least 2 × 150 ms`);
      proxy.setLatency(0);
      c.socket.destroy();
    } finally {
      await proxy.close();
    }
  });

  it(
    'unfreeze then cut in the same tick, on a connection its client half-closed while frozen, leaves no handle open (the process exits)',
    { timeout: 30_000 },
    async () => {
      // The symptom is at exit: a handle that never closes keeps Node's exit cleanup polling the event loop
      // at full CPU, so the sequence runs in a child process that must exit by itself.
      const script = join(dirname(fileURLToPath(import.meta.url)), 'testdata', 'unfreeze-then-cut.ts');
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const boundMs = 15_000;
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const timedOut = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), boundMs).unref());
      const result = await Promise.race([exited, timedOut]);
      if (result === 'timeout') {
        // CPU the child used (utime + stime, in clock ticks of 10 ms), to tell a spin from a wait.
        const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        const cpuMs = (Number(fields[11]) + Number(fields[12])) * 10;
        child.kill('SIGKILL');
        await exited;
        assert.fail(`the child did not exit within ${boundMs} ms (it used ${cpuMs} ms of CPU); output: ${out}`);
      }
      assert.equal(result, 0, `the child failed: ${out}`);
      assert.match(out, /cut; closed/);
    },
  );

  it('refuses a drop rate outside [0, 1] and a negative latency', async () => {
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: echo.port } });
    try {
      assert.throws(() => proxy.setDropRate(1.5), FaultProxyError);
      assert.throws(() => proxy.setLatency(-1), FaultProxyError);
    } finally {
      await proxy.close();
    }
  });
});

describe('writeProxyKubeconfig', () => {
  it('points every cluster at the proxy and keeps the DNS name for TLS verification', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faultproxy-'));
    try {
      const src = join(dir, 'in');
      await writeFile(
        src,
        [
          'apiVersion: v1',
          'kind: Config',
          'clusters:',
          '- name: ip',
          '  cluster: { server: "https://127.0.0.1:6443", certificate-authority-data: Q0E= }',
          '- name: dns',
          '  cluster: { server: "https://api.example:6443" }',
          'users: [{ name: u, user: { token: t } }]',
          'contexts: [{ name: c, context: { cluster: ip, user: u } }]',
          'current-context: c',
          '',
        ].join('\n'),
      );
      const out = await writeProxyKubeconfig(src, 'https://127.0.0.1:1234', join(dir, 'out'));
      const doc = parse(await readFile(out, 'utf8')) as {
        clusters: { name: string; cluster: Record<string, unknown> }[];
        users: unknown[];
      };
      assert.deepEqual(doc.clusters, [
        { name: 'ip', cluster: { server: 'https://127.0.0.1:1234', 'certificate-authority-data': 'Q0E=' } },
        { name: 'dns', cluster: { server: 'https://127.0.0.1:1234', 'tls-server-name': 'api.example' } },
      ]);
      assert.deepEqual(doc.users, [{ name: 'u', user: { token: 't' } }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
