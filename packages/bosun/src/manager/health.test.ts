import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../telemetry/metrics.js';
import { HealthCheckNameError, HealthChecks, InvalidAddressError, metricsRoutes, parseAddress, startHttpServer } from './health.js';

async function get(port: number, path: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

void test('parseAddress accepts host:port, :port, [v6]:port and 0', () => {
  assert.deepEqual(parseAddress(':8080'), { host: '', port: 8080 });
  assert.deepEqual(parseAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  assert.deepEqual(parseAddress('[::1]:9090'), { host: '::1', port: 9090 });
  assert.equal(parseAddress('0'), undefined);
  assert.throws(() => parseAddress('8080'), InvalidAddressError);
  assert.throws(() => parseAddress(':99999'), InvalidAddressError);
});

void test("address '0' disables the server", async () => {
  assert.equal(await startHttpServer({ address: '0', routes: {} }), undefined);
});

void test('healthz and readyz: ok, verbose listing, 500 on a failing check, single check, exclude', async (t) => {
  const checks = new HealthChecks({ timeoutMs: 200 });
  let cacheSynced = false;
  checks.addHealthCheck('ping', () => {});
  checks.addReadyCheck('ping', () => true);
  checks.addReadyCheck('informers', () => {
    if (!cacheSynced) throw new Error('secret detail: cache not synced');
  });
  checks.addReadyCheck('slow', () => new Promise<void>(() => {}));
  assert.throws(() => checks.addReadyCheck('ping', () => {}), HealthCheckNameError);
  assert.throws(() => checks.addReadyCheck('a/b', () => {}), HealthCheckNameError);

  const srv = await startHttpServer({ address: '127.0.0.1:0', routes: checks.routes() });
  assert.ok(srv);
  t.after(() => srv.close());
  assert.ok(srv.port > 0);

  assert.deepEqual(await get(srv.port, '/healthz'), { status: 200, body: 'ok', type: 'text/plain; charset=utf-8' });

  const failing = await get(srv.port, '/readyz');
  assert.equal(failing.status, 500);
  assert.equal(failing.body, '[+]ping ok\n[-]informers failed: reason withheld\n[-]slow failed: reason withheld\nreadyz check failed\n');
  assert.doesNotMatch(failing.body, /secret detail/, 'reasons are not served to unauthenticated probes');

  cacheSynced = true;
  const excluded = await get(srv.port, '/readyz?verbose&exclude=slow');
  assert.equal(excluded.status, 200);
  assert.equal(excluded.body, '[+]ping ok\n[+]informers ok\n[+]slow excluded: ok\nreadyz check passed\n');

  assert.equal((await get(srv.port, '/readyz/informers')).status, 200);
  assert.equal((await get(srv.port, '/readyz/slow')).status, 500);
  assert.equal((await get(srv.port, '/readyz/nope')).status, 404);
  assert.equal((await get(srv.port, '/other')).status, 404);
  const post = await fetch(`http://127.0.0.1:${srv.port}/healthz`, { method: 'POST' });
  await post.text();
  assert.equal(post.status, 405);
});

void test('/metrics serves the registry in the Prometheus format', async (t) => {
  const m = new Metrics({ processMetrics: false });
  m.reconcileDone('c', 'success', 0.1);
  const srv = await startHttpServer({ address: ':0', routes: metricsRoutes(m) });
  assert.ok(srv);
  t.after(() => srv.close());
  const r = await get(srv.port, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.type ?? '', /^text\/plain; version=0\.0\.4/);
  assert.match(r.body, /^controller_runtime_reconcile_total\{controller="c",result="success"\} 1$/m);
});

void test('a port in use fails startup', async (t) => {
  const a = await startHttpServer({ address: '127.0.0.1:0', routes: {} });
  assert.ok(a);
  t.after(() => a.close());
  await assert.rejects(startHttpServer({ address: `127.0.0.1:${a.port}`, routes: {} }), /EADDRINUSE/);
});
