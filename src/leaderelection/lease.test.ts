import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../client/client.js';
import { LeaderElectionConfigError, LeaderElector, microTime } from './lease.js';

function offlineClient(): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'http://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return KubeClient.fromKubeConfig(kc);
}

void test('microTime has microsecond precision, as Lease times require', () => {
  assert.equal(microTime(Date.UTC(2026, 10, 22, 1, 2, 3, 45)), '2026-11-22T01:02:03.045000Z');
});

void test('options that cannot work together are refused with a named error', () => {
  const c = offlineClient();
  const base = { namespace: 'x', name: 'y', identity: 'z', onStartedLeading: () => {}, onStoppedLeading: () => {} };
  assert.throws(() => new LeaderElector(c, { ...base, leaseDurationMs: 5_000, renewDeadlineMs: 5_000 }), LeaderElectionConfigError);
  assert.throws(() => new LeaderElector(c, { ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }), /retryPeriodMs/);
  assert.throws(() => new LeaderElector(c, { ...base, identity: '' }), /identity/);
  assert.throws(() => new LeaderElector(c, { ...base, name: '' }), /Lease namespace and name/);
  assert.ok(new LeaderElector(c, base), 'defaults 15 s / 10 s / 2 s are valid');
  c.close();
});

void test('an unreachable API server never leads and run resolves on abort', async () => {
  const c = offlineClient();
  let started = false;
  const el = new LeaderElector(c, {
    namespace: 'x',
    name: 'y',
    identity: 'z',
    leaseDurationMs: 2_000,
    renewDeadlineMs: 1_500,
    retryPeriodMs: 100,
    onStartedLeading: () => (started = true),
    onStoppedLeading: () => {},
  });
  const ac = new AbortController();
  const run = el.run(ac.signal);
  await new Promise((r) => setTimeout(r, 300));
  ac.abort();
  assert.equal(await run, 'stopped');
  assert.equal(started, false);
  assert.equal(el.isLeader(), false);
  c.close();
});
