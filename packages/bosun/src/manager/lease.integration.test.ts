// Leader election against a real API server: the optimistic concurrency that keeps two replicas
// from both leading is the API server's resourceVersion check, which no fake reproduces faithfully.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient } from '../client/client.js';
import { TransportError } from '../client/errors.js';
import { Lease } from '../client/resources.js';
import { eventually, startTestEnv, type TestEnv } from '../tooling/envtest/testenv.js';
import { LeaderElector } from './lease.js';

let env: TestEnv;
let ns: string;
const clients: KubeClient[] = [];

before(async () => {
  env = await startTestEnv();
  ns = await env.namespace('lease');
});

after(async () => {
  for (const c of clients) c.close();
  await env?.cleanup();
});

// Short durations keep the test fast while respecting lease > renewDeadline > 1.2 × retry.
const TIMING = { leaseDurationMs: 2_000, renewDeadlineMs: 1_500, retryPeriodMs: 250 };

interface Replica {
  elector: LeaderElector;
  /** Set to simulate a network partition: every API call of this replica fails, or with `hang`, never returns. */
  partitioned: { on: boolean; hang?: boolean };
  log: { event: 'started' | 'stopped'; at: number }[];
  run: Promise<string>;
  abort: AbortController;
}

function newClient(partitioned: { on: boolean; hang?: boolean }): KubeClient {
  const c = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  clients.push(c);
  return new Proxy(c, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        // A hung load balancer: the request neither answers nor honours its abort signal.
        if (partitioned.on && partitioned.hang) return new Promise(() => {});
        if (partitioned.on) return Promise.reject(new TransportError({ verb: String(prop) }, new Error('partitioned')));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function replica(lease: string, identity: string): Replica {
  const partitioned: Replica['partitioned'] = { on: false };
  const log: Replica['log'] = [];
  const elector = new LeaderElector(newClient(partitioned), {
    namespace: ns,
    name: lease,
    identity,
    ...TIMING,
    onStartedLeading: () => log.push({ event: 'started', at: Date.now() }),
    onStoppedLeading: () => log.push({ event: 'stopped', at: Date.now() }),
  });
  const abort = new AbortController();
  return { elector, partitioned, log, abort, run: elector.run(abort.signal) };
}

async function readLease(name: string): Promise<Lease> {
  const c = KubeClient.fromConfig({ kubeconfig: env.kubeconfig });
  try {
    return await c.get<Lease>(Lease, ns, name);
  } finally {
    c.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

void test('two electors: exactly one leads; release hands over at once', async () => {
  const a = replica('lock-release', 'replica-a');
  const b = replica('lock-release', 'replica-b');
  const leader = await eventually('a leader', async () => (a.elector.isLeader() ? a : b.elector.isLeader() ? b : undefined), 10_000, 50);
  const follower = leader === a ? b : a;
  // Several retry periods: the follower keeps trying and must keep failing.
  for (let i = 0; i < 8; i++) {
    assert.equal(Number(a.elector.isLeader()) + Number(b.elector.isLeader()), 1, 'exactly one leader');
    await sleep(TIMING.retryPeriodMs);
  }
  const lease = await readLease('lock-release');
  const leaderId = leader === a ? 'replica-a' : 'replica-b';
  assert.equal(lease.spec?.holderIdentity, leaderId);
  assert.equal(lease.spec?.leaseDurationSeconds, 2);
  assert.match(lease.spec?.renewTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime');
  assert.equal(follower.elector.getLeader(), leaderId);

  const releasedAt = Date.now();
  leader.abort.abort();
  assert.equal(await leader.run, 'stopped');
  assert.equal(leader.elector.isLeader(), false);
  await eventually('the follower takes over', async () => (follower.elector.isLeader() ? true : undefined), 5_000, 20);
  const took = Date.now() - releasedAt;
  // A released lease is free at once; waiting out the 2 s lease would mean release did not work.
  assert.ok(took < TIMING.leaseDurationMs, `takeover after release took ${took} ms`);
  assert.deepEqual(
    leader.log.map((l) => l.event),
    ['started'],
    'release is not a loss: onStoppedLeading is not called',
  );
  const after = await readLease('lock-release');
  assert.equal(after.spec?.holderIdentity, follower === a ? 'replica-a' : 'replica-b');
  assert.equal(after.spec?.leaseTransitions, 1);
  follower.abort.abort();
  await follower.run;
  assert.equal((await readLease('lock-release')).spec?.holderIdentity ?? '', '', 'the last leader released too');
});

void test('a leader that stops renewing steps down; the other takes over only after the lease expires', async () => {
  const a = replica('lock-partition', 'replica-a');
  await eventually('a leads', async () => (a.elector.isLeader() ? true : undefined), 10_000, 50);
  const b = replica('lock-partition', 'replica-b');
  await sleep(TIMING.retryPeriodMs * 3);
  assert.equal(b.elector.isLeader(), false);

  const cutAt = Date.now();
  a.partitioned.on = true;
  assert.equal(await a.run, 'lost');
  const stoppedAt = a.log.find((l) => l.event === 'stopped')?.at ?? NaN;
  assert.ok(
    stoppedAt - cutAt <= TIMING.renewDeadlineMs + TIMING.retryPeriodMs + 200,
    `stepped down ${stoppedAt - cutAt} ms after the partition`,
  );

  await eventually('b takes over', async () => (b.elector.isLeader() ? true : undefined), 10_000, 20);
  const startedAt = b.log.find((l) => l.event === 'started')?.at ?? NaN;
  // b measures expiry from when it last saw the record change, so it waits at least a lease duration.
  assert.ok(startedAt - cutAt >= TIMING.leaseDurationMs - TIMING.retryPeriodMs, `took over ${startedAt - cutAt} ms after the partition`);
  assert.ok(startedAt > stoppedAt, 'no overlap: the old leader stepped down before the new one started');
  b.abort.abort();
  await b.run;
});

void test('a leader whose renew hangs steps down at the renew deadline; the Lease still names it until it expires', async () => {
  const a = replica('lock-hang', 'replica-a');
  await eventually('a leads', async () => (a.elector.isLeader() ? true : undefined), 10_000, 50);
  const cutAt = Date.now();
  a.partitioned.hang = true;
  a.partitioned.on = true;
  assert.equal(await a.run, 'lost');
  const stoppedAt = a.log.find((l) => l.event === 'stopped')?.at ?? NaN;
  // Deadline from the last renew, which was at most one retry period before the cut.
  assert.ok(stoppedAt - cutAt <= TIMING.renewDeadlineMs + 200, `stepped down ${stoppedAt - cutAt} ms after the hang began`);
  assert.equal(a.elector.isLeader(), false);
  const lease = await readLease('lock-hang');
  assert.equal(lease.spec?.holderIdentity, 'replica-a', 'stepping down does not write: the record only expires');
});
