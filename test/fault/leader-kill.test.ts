// Fault scenarios 5a and 5b: two replicas of the Message operator (`bosun run message --leader-elect`,
// separate processes) while 300 Messages converge (1,000 with FAULT_LONG=1). 5a SIGKILLs the leader:
// the standby must take the Lease within its stated bound and converge everything. 5b SIGSTOPs the
// leader until the standby has taken over and written, then SIGCONTs it: the old leader must see that
// its Lease is gone and send no write after it resumed. Each replica runs with its own user agent, so
// the API server's audit log says which process sent every request. On a control plane of its own.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import { Lease as LeaseType, type Lease } from '../../packages/bosun/src/client/resources.js';
import { eventually } from '../../packages/bosun/src/tooling/envtest/testenv.js';
import { countRequests, readAudit, type AuditEvent } from './lib/audit.js';
import { startFaultCluster, type FaultCluster } from './lib/cluster.js';
import { createMessages, describeViolations, names, violations, waitConverged, watchPods } from './lib/invariants.js';

const REPO = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const LONG = process.env.FAULT_LONG === '1';
const N = LONG ? 1000 : 300;
/** The Lease the replicas of `bosun run message` share. */
const LEASE = 'bosun-message';
/**
 * `bosun run` has no flags for the election's timings, so the replicas use the LeaderElector's
 * defaults (controller-runtime's): a 15 s lease, a 10 s renew deadline, a 2 s retry period whose
 * acquisition retries are jittered to retryPeriod × [1, 2.2).
 */
const LEASE_MS = 15_000;
const RETRY_MS = 2_000;
const MAX_RETRY_GAP_MS = RETRY_MS * 2.2;
/**
 * The standby can only count the lease duration from the moment it first saw the dead leader's last
 * renewal, which is up to one jittered retry gap after the renewal (the standby polls); it then takes
 * the Lease on its first attempt once that lease has run out by its own clock. Hence the bound on
 * kill → acquireTime: leaseDuration + the longest retry gap, plus the time of the acquiring GET and
 * PUT on a loaded API server (allowed 1.5 s on the shared 2-core machine).
 */
const TAKEOVER_BOUND_MS = LEASE_MS + MAX_RETRY_GAP_MS + 1_500;
/**
 * Writes to one Message and its Pod, both replicas together: 3 without a fault (apply the Pod, status
 * Pending, status Running); each of the two status writes may be refused once (409) for a cache one
 * version behind, since it is conditional on the resourceVersion it was computed from; one write cut
 * short by the fault is sent again by the new leader.
 */
const MAX_WRITES_PER_OBJECT = 6;
const WRITES = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** One replica: a `bosun run message --leader-elect` process with its own user agent. */
interface Replica {
  name: string;
  userAgent: string;
  child: ChildProcess;
  identity?: string;
  /** The JSON log lines it wrote. */
  lines: { msg?: string; time?: string; level?: string; [k: string]: unknown }[];
  exitedAt?: number;
  exit?: string;
  exited: Promise<void>;
}

function iso(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? '-' : new Date(ms).toISOString();
}

function at(e: AuditEvent): number {
  return Date.parse(e.requestReceivedTimestamp);
}

/** The writes `userAgent` sent (as received by the API server), optionally only those to the operator's objects (not the Lease, not Events). */
function writesOf(events: AuditEvent[], userAgent: string, opts: { objectsOnly?: boolean } = {}): AuditEvent[] {
  return events.filter(
    (e) =>
      e.stage === 'RequestReceived' &&
      e.userAgent === userAgent &&
      WRITES.has(e.verb) &&
      (!opts.objectsOnly || e.objectRef?.resource === 'messages' || e.objectRef?.resource === 'pods'),
  );
}

/**
 * When the API server received the last Lease write of `userAgent` that it answered 2xx (before
 * `before`): the renewal committed last, the earliest moment the lease duration can count from.
 * A write the process sent as it was killed reaches the server but is not committed (answered
 * otherwise, or not at all), so it does not count; the writes left out are returned too.
 */
function lastRenewal(events: AuditEvent[], userAgent: string, before = Infinity): { at: number; uncommitted: string[] } {
  const codes = new Map(events.filter((e) => e.stage === 'ResponseComplete').map((e) => [e.auditID, e.responseStatus?.code]));
  const leaseWrites = writesOf(events, userAgent).filter((e) => e.objectRef?.resource === 'leases' && at(e) < before);
  const ok = (e: AuditEvent) => (codes.get(e.auditID) ?? 0) >= 200 && (codes.get(e.auditID) ?? 0) < 300;
  return {
    at: Math.max(...leaseWrites.filter(ok).map(at)),
    uncommitted: leaseWrites.filter((e) => !ok(e)).map((e) => `${describeWrite(e)} → ${codes.get(e.auditID) ?? 'no answer'}`),
  };
}

function describeWrite(e: AuditEvent): string {
  const r = e.objectRef;
  return `${e.requestReceivedTimestamp} ${e.verb} ${r?.resource ?? e.requestURI}${r?.subresource ? `/${r.subresource}` : ''} ${r?.name ?? ''}`;
}

/** Every version of the Lease as a 50 ms poll saw it. */
interface LeaseSighting {
  seen: number;
  holder: string;
  acquireTime?: string;
  transitions?: number;
}

/** Pods per owning Message as the API server announced them, to catch two Pods of one Message even for a moment. */
describe(`leader election: the leader killed or frozen during the convergence of ${N} Messages`, () => {
  let cluster: FaultCluster;
  const replicas: Replica[] = [];

  function startReplica(ns: string, name: string): Replica {
    const userAgent = `bosun-${ns}-${name}`;
    const log = createWriteStream(join(cluster.dir, 'logs', `${ns}-${name}.log`), { flags: 'a' });
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO, 'packages/bosun/src/tooling/cli/run-main.ts'),
        'run',
        'message',
        '--kubeconfig',
        cluster.kubeconfig,
        '-n',
        ns,
        '--leader-elect',
        '--leader-election-namespace',
        ns,
        '--user-agent',
        userAgent,
        '--metrics-addr',
        '0',
        '--health-addr',
        '0',
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const r: Replica = { name, userAgent, child, lines: [], exited: Promise.resolve() };
    r.exited = new Promise((res) =>
      child.once('exit', (code, sig) => {
        r.exitedAt = Date.now();
        r.exit = sig ?? `code ${code ?? '?'}`;
        log.end();
        res();
      }),
    );
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        log.write(`${line}\n`);
        if (!line.startsWith('{')) return;
        try {
          const l = JSON.parse(line) as Replica['lines'][number];
          r.lines.push(l);
          if (!r.identity && l.msg === 'waiting for leadership') r.identity = l.identity as string;
        } catch {
          /* not a log line */
        }
      });
    }
    replicas.push(r);
    return r;
  }

  function watchLease(ns: string): { seen: LeaseSighting[]; stop: () => Promise<void> } {
    const seen: LeaseSighting[] = [];
    let on = true;
    const loop = (async () => {
      while (on) {
        const l = await cluster.client.get<Lease>(LeaseType, ns, LEASE).catch(() => undefined);
        const holder = l?.spec?.holderIdentity ?? '';
        const last = seen.at(-1);
        if (l && (!last || last.holder !== holder || last.acquireTime !== (l.spec?.acquireTime ?? undefined))) {
          seen.push({
            seen: Date.now(),
            holder,
            acquireTime: l.spec?.acquireTime ?? undefined,
            transitions: l.spec?.leaseTransitions ?? undefined,
          });
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    return {
      seen,
      stop: async () => {
        on = false;
        await loop;
      },
    };
  }

  async function readyCount(ns: string): Promise<number> {
    const list = await cluster.client.list<Message>(MessageResource, { namespace: ns });
    return list.items.filter((m) => m.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
  }

  /** Starts two replicas in `ns`, waits for a leader, and starts creating the N Messages; resolves once 1/5 of them are Ready. */
  async function leaderMidConvergence(t: TestContext, ns: string) {
    await cluster.namespace(ns);
    const pods = watchPods(cluster.kubeconfig, ns);
    const lease = watchLease(ns);
    const a = startReplica(ns, 'a');
    const b = startReplica(ns, 'b');
    await eventually('both replicas waiting for leadership', async () => (a.identity && b.identity ? true : undefined), 60_000);
    const holder = await eventually('a leader', async () => lease.seen.at(-1)?.holder || undefined, 60_000);
    const leader = holder === a.identity ? a : b;
    const standby = leader === a ? b : a;
    assert.equal(holder, leader.identity, 'the Lease names one of the two replicas');
    const expected = new Map(names('m', N).map((n) => [n, `text of ${n}`]));
    const tCreate = Date.now();
    const created = createMessages(cluster.client, ns, [...expected.keys()], (n) => expected.get(n)!);
    const readyAtFault = await eventually(
      `${N / 5} Messages Ready`,
      async () => {
        const n = await readyCount(ns);
        return n >= N / 5 ? n : undefined;
      },
      120_000,
      100,
    );
    t.diagnostic(
      `replicas: leader ${leader.name} (${leader.identity}, user agent ${leader.userAgent}), standby ${standby.name} (${standby.identity})`,
    );
    return { pods, lease, leader, standby, expected, tCreate, created, readyAtFault };
  }

  /**
   * The checks both scenarios end with: converged with every invariant, no Message with two Pods at
   * any moment, no hot loop, the per-object write bound, the new leader alive. Returns the audit
   * events of the namespace and the broken checks, asserted by the caller after its diagnostics.
   */
  async function converged(t: TestContext, ns: string, s: Awaited<ReturnType<typeof leaderMidConvergence>>, from: number) {
    await s.created;
    const problems: string[] = [];
    const { ms, state } = await waitConverged(cluster.client, ns, { since: performance.now(), timeoutMs: 180_000, expected: s.expected });
    const tConverged = Date.now();
    problems.push(...violations(state, s.expected));
    // The quiet window: nothing is left to do, so no replica may write in it (the leader's Lease renewals aside).
    const quietFrom = new Date();
    await new Promise((r) => setTimeout(r, 3_000));
    const events = (await readAudit(cluster.auditLog)).filter((e) => e.objectRef?.namespace === ns);
    const both = events
      .filter((e) => (e.userAgent === s.leader.userAgent || e.userAgent === s.standby.userAgent) && e.objectRef?.resource !== 'leases')
      .map((e) => ({ ...e, userAgent: 'replicas' }));
    const all = countRequests(both, { userAgent: 'replicas', since: new Date(s.tCreate) });
    const quiet = countRequests(both, { userAgent: 'replicas', since: quietFrom });
    s.pods.stop();
    await s.lease.stop();
    t.diagnostic(
      `converged ${((tConverged - s.tCreate) / 1000).toFixed(1)} s after the first create, ${((tConverged - from) / 1000).toFixed(1)} s after the fault (${(ms / 1000).toFixed(1)} s of waiting after the creates ended); ${state.messages.length} Messages, ${state.pods.length} Pods`,
    );
    t.diagnostic(
      `both replicas, the Lease left out: ${all.total} requests, ${all.writes} writes, at most ${all.maxWritesPerObject.writes} to one Message+Pod (${all.maxWritesPerObject.name}), ${all.podCreations} Pod creations; ${quiet.writes} writes in the 3 s after convergence; most Pods of one Message the watch saw at once: ${s.pods.max}`,
    );
    const codes = new Map(events.filter((e) => e.stage === 'ResponseComplete').map((e) => [e.auditID, e.responseStatus?.code]));
    const busiest = all.maxWritesPerObject.name;
    const busiestWrites = events.filter(
      (e) =>
        e.stage === 'RequestReceived' &&
        WRITES.has(e.verb) &&
        (e.objectRef?.name === busiest || e.objectRef?.name === `${busiest}-pod`) &&
        (e.userAgent === s.leader.userAgent || e.userAgent === s.standby.userAgent),
    );
    t.diagnostic(
      `writes to ${busiest} and its Pod: ${JSON.stringify(busiestWrites.map((e) => `${describeWrite(e)} by ${e.userAgent === s.leader.userAgent ? 'old' : 'new'} leader → ${codes.get(e.auditID) ?? '?'}`))}`,
    );
    if (quiet.writes > 0) problems.push(`writes after convergence (a hot loop): ${JSON.stringify(quiet.byKind)}`);
    if (all.maxWritesPerObject.writes > MAX_WRITES_PER_OBJECT)
      problems.push(
        `${all.maxWritesPerObject.writes} writes to Message ${all.maxWritesPerObject.name} and its Pod, more than ${MAX_WRITES_PER_OBJECT}`,
      );
    if (s.pods.doubled !== undefined) problems.push(`the Pod watch saw two Pods of Message ${s.pods.doubled} at once`);
    if (s.standby.exitedAt !== undefined) problems.push(`the new leader exited (${s.standby.exit})`);
    return { events, problems };
  }

  before(async () => {
    cluster = await startFaultCluster({ prefix: 'fault-leader-kill' });
  });

  after(async () => {
    for (const r of replicas) {
      if (r.exitedAt !== undefined) continue;
      r.child.kill('SIGCONT');
      r.child.kill('SIGKILL');
    }
    await Promise.all(replicas.map((r) => r.exited));
    await cluster?.destroy();
  });

  test(
    `5a. the leader SIGKILLed mid-convergence: the standby takes over within ${TAKEOVER_BOUND_MS} ms and everything converges`,
    { timeout: 300_000 },
    async (t) => {
      const ns = 'fault-leader-kill';
      const s = await leaderMidConvergence(t, ns);
      const tKill = Date.now();
      s.leader.child.kill('SIGKILL');
      await s.leader.exited;
      t.diagnostic(`SIGKILL to the leader at ${iso(tKill)} with ${s.readyAtFault}/${N} Ready`);
      assert.ok(s.readyAtFault < N, 'the kill came mid-convergence');

      const takeover = await eventually(
        'the standby to take the Lease',
        async () => s.lease.seen.find((l) => l.holder === s.standby.identity),
        60_000,
        100,
      );
      const { events, problems } = await converged(t, ns, s, tKill);

      const acquired = Date.parse(takeover.acquireTime ?? '');
      const renewal = lastRenewal(events, s.leader.userAgent);
      const oldLastRenew = renewal.at;
      const oldLast = Math.max(...writesOf(events, s.leader.userAgent, { objectsOnly: true }).map(at));
      const newFirst = Math.min(...writesOf(events, s.standby.userAgent, { objectsOnly: true }).map(at));
      t.diagnostic(
        `old leader: last committed renewal received ${iso(oldLastRenew)} (${tKill - oldLastRenew} ms before the kill); Lease writes not committed: ${JSON.stringify(renewal.uncommitted)}; last object write ${iso(oldLast)}`,
      );
      t.diagnostic(
        `new leader: acquireTime ${takeover.acquireTime} = kill + ${acquired - tKill} ms (last renewal of the old + ${acquired - oldLastRenew} ms); first object write received ${iso(newFirst)} = kill + ${newFirst - tKill} ms; bound on kill → acquire ${TAKEOVER_BOUND_MS} ms`,
      );
      t.diagnostic(
        `Lease as observed: ${JSON.stringify(s.lease.seen.map((l) => ({ seen: iso(l.seen), holder: l.holder, acquireTime: l.acquireTime, transitions: l.transitions })))}`,
      );

      assert.deepEqual(problems, [], describeViolations(problems));
      assert.ok(Number.isFinite(acquired), `the Lease's acquireTime after the takeover parses: ${takeover.acquireTime}`);
      assert.ok(
        acquired - oldLastRenew >= LEASE_MS,
        `the standby took the Lease ${acquired - oldLastRenew} ms after the old leader's last renewal, before the lease duration ran out`,
      );
      assert.ok(
        acquired - tKill <= TAKEOVER_BOUND_MS,
        `the standby took the Lease ${acquired - tKill} ms after the kill, more than the bound ${TAKEOVER_BOUND_MS} ms`,
      );
      assert.ok(
        newFirst > acquired && newFirst > oldLast,
        "the new leader wrote only after it acquired the Lease and after the old leader's last write",
      );
    },
  );

  test(
    '5b. the leader SIGSTOPped past its lease, then resumed: it sends no write after it resumed and exits; everything converges',
    { timeout: 300_000 },
    async (t) => {
      const ns = 'fault-leader-stop';
      const s = await leaderMidConvergence(t, ns);
      const tStop = Date.now();
      s.leader.child.kill('SIGSTOP');
      t.diagnostic(`SIGSTOP to the leader at ${iso(tStop)} with ${s.readyAtFault}/${N} Ready`);
      assert.ok(s.readyAtFault < N, 'the freeze came mid-convergence');

      // Frozen until the standby leads and writes, and at least the lease duration: the old leader resumes beside an active new one.
      const takeover = await eventually(
        'the standby to take the Lease',
        async () => s.lease.seen.find((l) => l.holder === s.standby.identity),
        60_000,
        100,
      );
      const newFirst = await eventually(
        'the new leader to write',
        async () => {
          const w = writesOf(await readAudit(cluster.auditLog), s.standby.userAgent, { objectsOnly: true }).filter(
            (e) => e.objectRef?.namespace === ns,
          );
          return w.length > 0 ? Math.min(...w.map(at)) : undefined;
        },
        60_000,
        250,
      );
      const wait = tStop + LEASE_MS + 1_000 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const tCont = Date.now();
      s.leader.child.kill('SIGCONT');
      t.diagnostic(
        `SIGCONT at ${iso(tCont)}: frozen ${tCont - tStop} ms; the standby acquired at ${takeover.acquireTime} (stop + ${Date.parse(takeover.acquireTime ?? '') - tStop} ms), first wrote at ${iso(newFirst)}`,
      );

      await Promise.race([s.leader.exited, new Promise((r) => setTimeout(r, 60_000))]);
      const { events, problems } = await converged(t, ns, s, tStop);

      const oldWrites = writesOf(events, s.leader.userAgent);
      const inFreeze = oldWrites.filter((e) => at(e) >= tStop && at(e) < tCont);
      const afterResume = oldWrites.filter((e) => at(e) >= tCont);
      const oldRequestsAfter = events.filter((e) => e.stage === 'RequestReceived' && e.userAgent === s.leader.userAgent && at(e) >= tCont);
      const lostAt = s.leader.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('leadership lost'));
      const renewal = lastRenewal(events, s.leader.userAgent, tCont);
      const oldLastRenew = renewal.at;
      const acquired = Date.parse(takeover.acquireTime ?? '');
      t.diagnostic(
        `old leader: ${oldWrites.length} writes; received during the freeze: ${inFreeze.length} ${JSON.stringify(inFreeze.map(describeWrite))}; after SIGCONT: ${afterResume.length} ${JSON.stringify(afterResume.map(describeWrite))}; requests of any kind after SIGCONT: ${oldRequestsAfter.length} (${[...new Set(oldRequestsAfter.map((e) => `${e.verb} ${e.objectRef?.resource ?? ''}`))].join(', ')})`,
      );
      const lostTime = typeof lostAt?.time === 'string' ? Date.parse(lostAt.time) : NaN;
      t.diagnostic(
        `old leader: last committed renewal received ${iso(oldLastRenew)} (not committed: ${JSON.stringify(renewal.uncommitted)}); logged "${lostAt?.msg ?? 'no loss'}" at ${iso(lostTime)} (SIGCONT + ${lostTime - tCont} ms); exited ${iso(s.leader.exitedAt)} (SIGCONT + ${(s.leader.exitedAt ?? NaN) - tCont} ms) with ${s.leader.exit ?? 'no exit'}`,
      );
      t.diagnostic(
        `Lease as observed: ${JSON.stringify(s.lease.seen.map((l) => ({ seen: iso(l.seen), holder: l.holder, acquireTime: l.acquireTime, transitions: l.transitions })))}`,
      );

      assert.deepEqual(problems, [], describeViolations(problems));
      assert.ok(tCont - tStop > LEASE_MS, `frozen ${tCont - tStop} ms, longer than the lease duration`);
      assert.ok(
        acquired - oldLastRenew >= LEASE_MS,
        `the standby took the Lease ${acquired - oldLastRenew} ms after the old leader's last renewal, before the lease duration ran out`,
      );
      assert.deepEqual(afterResume.map(describeWrite), [], 'the old leader sent writes after it resumed without the Lease');
      assert.ok(lostAt, 'the old leader logged that it lost the Lease');
      assert.equal(
        s.leader.exit,
        'code 1',
        `the old leader exits with code 1 after losing the Lease (it ${s.leader.exit ? `ended with ${s.leader.exit}` : 'still runs'})`,
      );
    },
  );
});
