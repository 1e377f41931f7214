// Fault scenario 5c: two replicas of the three operators (`bosun run message application flightticket
// --leader-elect`, separate processes) under a rolling restart: SIGTERM to the leader while 300
// Messages, 20 Applications and 20 FlightTickets converge (1,000, 100 and 100 with FAULT_LONG=1), a
// namespace per kind, the tickets booked at one booking service both replicas share, the leader with
// a booking POST in flight. The Lease must change hands only after the old leader's last write (to
// the API server and to the booking service) settled, no Message may ever own two Pods, no ticket
// may be booked twice, and the three kinds converge with their invariants. Each replica records its
// API writes with their start and end (write-log.ts), has a user agent of its own (the audit log's
// per-object write counts) and reaches the booking service through a tap of its own
// (lib/flighttickets.ts bookingTap). On a control plane of its own.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import type { FlightTicketSpec } from '../../operators/flightticket/resource.js';
import { Lease as LeaseType, type Lease } from '../../packages/bosun/src/client/resources.js';
import { eventually } from '../../packages/bosun/src/tooling/envtest/testenv.js';
import {
  applicationWrites,
  applicationWriteViolations,
  appSpecs,
  createApplications,
  maxApplicationWrites,
  waitApplicationsConverged,
} from './lib/applications.js';
import { countRequests, readAudit } from './lib/audit.js';
import { startFaultCluster, type FaultCluster } from './lib/cluster.js';
import {
  bookingProcess,
  bookingTap,
  createTickets,
  flightTicketEnv,
  installFlightTickets,
  ticketSpec,
  ticketWrites,
  waitTicketsConverged,
  type BookingProcess,
  type BookingTap,
  type TappedCall,
} from './lib/flighttickets.js';
import { createMessages, describeViolations, names, violations, waitConverged, watchPods } from './lib/invariants.js';
import { isReady } from './helpers.js';
import type { WriteRecord } from './write-log.js';

const REPO = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const LONG = process.env.FAULT_LONG === '1';
const MESSAGES = LONG ? 1000 : 300;
/** Applications, one replica each: each costs a Deployment, a ReplicaSet and a Pod of the control plane on 2 cores. */
const NA = LONG ? 100 : 20;
/** FlightTickets: half created with the Messages, half just before the SIGTERM, so the restart lands on booking calls. */
const NT = LONG ? 100 : 20;
const OPERATORS = ['message', 'application', 'flightticket'];
/** The Lease of `bosun run message application flightticket`. */
const LEASE = `bosun-${OPERATORS.join('-')}`;
/** Every booking call is answered after this long: the SIGTERM finds booking calls in flight that the drain must wait for. */
const BOOKING_LATENCY_MS = 1_000;
/**
 * Writes to one Message and its Pod, both replicas together: 3 without a fault (apply the Pod,
 * status Pending, status Running); the new leader's first reconcile may run on a cache that has not
 * yet seen the old leader's last write and send one of them again; each status write may be refused
 * once (409) for a cache one version behind. A graceful stop cuts no write short.
 */
const MAX_WRITES_PER_MESSAGE = 3 + 1 + 2;
/**
 * Writes to one Application and its children, both replicas together: 5 without a fault (apply the
 * Deployment and the Service, status 0/0, 0/1, 1/1); the new leader's cache may lag the old leader's
 * last write of each of the three kinds and send it again; a status write computed from a cache one
 * version behind is refused (409) and sent once more, by either replica.
 */
const MAX_APP_WRITES = 5 + 3 + 2;
/**
 * Writes to one FlightTicket, both replicas together: 3 without a fault (the finalizer, Pending,
 * Booked); the new leader's cache may lag the old leader's last write of it and send it again; a
 * status write on a version the other replica made stale is refused (409) and sent once more. A
 * reconcile the SIGTERM finds mid-booking finishes it before the old leader exits.
 */
const MAX_TICKET_WRITES = 3 + 1 + 1;

/** One replica: a `bosun run … --leader-elect` process with its logs, write records and booking tap. */
interface Replica {
  name: string;
  userAgent: string;
  child: ChildProcess;
  tap: BookingTap;
  writeLog: string;
  identity?: string;
  exitedAt?: number;
  exited: Promise<number | null>;
}

function iso(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? '-' : new Date(ms).toISOString();
}

async function readWrites(r: Replica): Promise<WriteRecord[]> {
  const text = await readFile(r.writeLog, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as WriteRecord);
}

/** Writes that act on the operators' objects (not the Lease, not Events). */
function objectWrites(ws: WriteRecord[]): WriteRecord[] {
  return ws.filter((w) => !w.path.includes('/leases') && !/\/events(\/|$)/.test(w.path));
}

function describeCall(c: TappedCall): string {
  return `${iso(c.start)} ${c.method} ${c.path} → ${c.status ?? 'no answer'} at ${iso(c.end)}`;
}

describe(`leader election under a rolling restart of ${MESSAGES} Messages, ${NA} Applications and ${NT} FlightTickets`, () => {
  let cluster: FaultCluster;
  let booking: BookingProcess;
  const ns = 'fault-rollover';
  const appNs = 'fault-rollover-apps';
  const ticketNs = 'fault-rollover-tickets';
  const replicas: Replica[] = [];

  async function startReplica(name: string): Promise<Replica> {
    const writeLog = join(cluster.dir, `${name}.writes.jsonl`);
    const userAgent = `bosun-${ns}-${name}`;
    const tap = await bookingTap(booking);
    const log = createWriteStream(join(cluster.dir, 'logs', `${name}.log`), { flags: 'a' });
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        './test/fault/write-log.ts',
        'packages/bosun/src/tooling/cli/run-main.ts',
        'run',
        ...OPERATORS,
        '--kubeconfig',
        cluster.kubeconfig,
        ...[ns, appNs, ticketNs].flatMap((n) => ['-n', n]),
        '--leader-elect',
        '--leader-election-namespace',
        ns,
        // As in lib/operator.ts: the scenario faults the controllers; the webhooks are faulted in test/upgrade.
        '--no-webhooks',
        '--user-agent',
        userAgent,
        '--metrics-addr',
        '0',
        '--health-addr',
        '0',
      ],
      {
        cwd: REPO,
        env: {
          ...process.env,
          ...flightTicketEnv(booking, ticketNs),
          FLIGHTTICKET_BOOKING_URL: tap.url,
          BOSUN_FAULT_WRITE_LOG: writeLog,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const r: Replica = { name, userAgent, child, tap, writeLog, exited: Promise.resolve(null) };
    r.exited = new Promise((res) =>
      child.on('exit', (code) => {
        r.exitedAt = Date.now();
        log.end();
        res(code);
      }),
    );
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        log.write(`${line}\n`);
        if (!r.identity && line.includes('waiting for leadership')) r.identity = (JSON.parse(line) as { identity?: string }).identity;
      });
    }
    replicas.push(r);
    return r;
  }

  before(async () => {
    cluster = await startFaultCluster({ prefix: 'fault-rollover' });
    for (const n of [ns, appNs, ticketNs]) await cluster.namespace(n);
    await installFlightTickets(cluster, ticketNs);
    booking = bookingProcess({ dir: cluster.dir, faults: { latencyMs: BOOKING_LATENCY_MS } });
    await booking.start();
  });

  after(async () => {
    for (const r of replicas) if (r.exitedAt === undefined) r.child.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    await Promise.all(replicas.map((r) => r.tap.close()));
    await booking?.stop();
    await cluster?.destroy();
  });

  test(
    `SIGTERM to the leader mid-convergence: the Lease changes hands only after its last write and booking call, no Message owns two Pods, no ticket is booked twice, everything converges`,
    { timeout: LONG ? 600_000 : 300_000 },
    async (t) => {
      const a = await startReplica('a');
      const b = await startReplica('b');
      await eventually('both replicas waiting for leadership', async () => (a.identity && b.identity ? true : undefined), 60_000);

      // Every version of the Lease as it was observed, to see when and how it changed hands.
      const leaseSeen: { at: number; holder: string; acquireTime?: string; transitions?: number }[] = [];
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const l = await cluster.client.get<Lease>(LeaseType, ns, LEASE).catch(() => undefined);
          const holder = l?.spec?.holderIdentity ?? '';
          const last = leaseSeen.at(-1);
          if (l && (!last || last.holder !== holder || last.acquireTime !== (l.spec?.acquireTime ?? undefined))) {
            leaseSeen.push({
              at: Date.now(),
              holder,
              acquireTime: l.spec?.acquireTime ?? undefined,
              transitions: l.spec?.leaseTransitions ?? undefined,
            });
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();

      // Every Pod as the API server announced it, to catch two Pods of one Message even for a moment.
      const podWatch = watchPods(cluster.kubeconfig, ns);

      try {
        const leaderIdentity = await eventually('a leader', async () => leaseSeen.at(-1)?.holder || undefined, 60_000);
        const leader = leaderIdentity === a.identity ? a : b;
        const standby = leader === a ? b : a;
        assert.equal(leaderIdentity, leader.identity, 'the Lease names one of the two replicas');

        const expected = new Map(names('m', MESSAGES).map((n) => [n, `rollover ${n}`]));
        const expectedApps = appSpecs('app', NA);
        const tickets = new Map<string, FlightTicketSpec>(names('t', NT).map((n, i) => [n, ticketSpec(i)]));
        const ticketNames = [...tickets.keys()];
        const since = new Date();
        const tApply = Date.now();
        let tApplied = 0;
        const applied = Promise.all([
          createMessages(cluster.client, ns, [...expected.keys()], (n) => expected.get(n)!),
          createApplications(cluster.client, appNs, expectedApps),
          createTickets(cluster.client, ticketNs, ticketNames.slice(0, NT / 2), (n) => tickets.get(n)!),
        ]).then(() => (tApplied = Date.now()));

        // Mid-convergence: the leader has written for about a third of the Messages, more are arriving.
        await eventually(
          'the leader to write for a third of the Messages',
          async () => (objectWrites(await readWrites(leader)).length >= MESSAGES / 3 ? true : undefined),
          120_000,
          100,
        );
        // Tickets the leader has not seen yet: each costs it a bookings list, then a booking POST.
        const appliedLate = createTickets(cluster.client, ticketNs, ticketNames.slice(NT / 2), (n) => tickets.get(n)!);
        const inFlight = await eventually(
          'the leader to have a booking POST in flight',
          async () => leader.tap.inFlight().find((c) => c.method === 'POST'),
          60_000,
          5,
        );
        const tTerm = Date.now();
        leader.child.kill('SIGTERM');
        const code = await leader.exited;
        await Promise.all([applied, appliedLate]);

        await eventually(
          'the standby to take the Lease',
          async () => (leaseSeen.some((s) => s.holder === standby.identity) ? true : undefined),
          60_000,
        );

        const t0 = performance.now();
        const timeoutMs = LONG ? 300_000 : 150_000;
        const [{ state }, , ticketEnd] = await Promise.all([
          waitConverged(cluster.client, ns, { since: t0, timeoutMs, expected }),
          waitApplicationsConverged(cluster.client, appNs, { since: t0, timeoutMs, expected: expectedApps }),
          waitTicketsConverged(cluster.client, ticketNs, booking, { live: tickets, deletedUids: new Set() }, { since: t0, timeoutMs }),
        ]);
        const tReady = Date.now();
        const problems = [...violations(state, expected), ...ticketEnd.violations];

        // Nothing is left to do: no write by either replica (the Lease aside) and no booking call in the quiet window.
        const quietFrom = new Date();
        const quietCalls = standby.tap.calls.length;
        await new Promise((r) => setTimeout(r, 3_000));
        const events = (await readAudit(cluster.auditLog)).filter((e) => [ns, appNs, ticketNs].includes(e.objectRef?.namespace ?? ''));
        const both = events
          .filter((e) => (e.userAgent === leader.userAgent || e.userAgent === standby.userAgent) && e.objectRef?.resource !== 'leases')
          .map((e) => ({ ...e, userAgent: 'replicas' }));
        const messageCounts = countRequests(both, { userAgent: 'replicas', since, namespace: ns });
        const quiet = countRequests(both, { userAgent: 'replicas', since: quietFrom });
        const appWrites = applicationWrites(both, { since, namespace: appNs, userAgent: 'replicas' });
        const maxApp = maxApplicationWrites(appWrites);
        const tw = ticketWrites(both, { since, namespace: ticketNs, userAgent: 'replicas' });
        if (quiet.writes > 0) problems.push(`writes after convergence (a hot loop): ${JSON.stringify(quiet.byKind)}`);
        const lateCalls = standby.tap.calls.slice(quietCalls);
        if (lateCalls.length > 0) problems.push(`booking calls after convergence: ${JSON.stringify(lateCalls.map(describeCall))}`);
        if (messageCounts.maxWritesPerObject.writes > MAX_WRITES_PER_MESSAGE)
          problems.push(
            `${messageCounts.maxWritesPerObject.writes} writes to Message ${messageCounts.maxWritesPerObject.name} and its Pod, more than ${MAX_WRITES_PER_MESSAGE}`,
          );
        problems.push(...applicationWriteViolations(appWrites, MAX_APP_WRITES));
        if (tw.max.writes > MAX_TICKET_WRITES)
          problems.push(`${tw.max.writes} writes to FlightTicket ${tw.max.name}, more than the bound ${MAX_TICKET_WRITES}`);
        if (standby.exitedAt !== undefined) problems.push('the new leader exited');
        if (booking.exitedUnexpectedly()) problems.push(`the booking service exited (${booking.exitedUnexpectedly()})`);

        const oldWrites = await readWrites(leader);
        const oldObjectWrites = objectWrites(oldWrites);
        const oldLast = Math.max(...oldObjectWrites.map((w) => w.end));
        const oldLastAny = Math.max(...oldWrites.filter((w) => !w.path.includes('/leases')).map((w) => w.end));
        const oldLeaseWrites = oldWrites.filter((w) => w.path.includes('/leases'));
        const newWrites = objectWrites(await readWrites(standby));
        const newFirst = Math.min(...newWrites.map((w) => w.start));
        const oldLastCallEnd = Math.max(...leader.tap.calls.map((c) => c.end ?? Infinity));
        const newFirstCall = Math.min(...standby.tap.calls.map((c) => c.start));
        const oldCallsAfterTerm = leader.tap.calls.filter((c) => c.start >= tTerm);
        // The old leader gives the Lease up by writing it without itself as the holder, as its very last
        // write; the drain can outlast a renew period (it waits for booking calls), so renewals may come first.
        const release = oldLeaseWrites.filter((w) => w.start >= tTerm && w.method === 'PUT').at(-1);
        const takeover = leaseSeen.find((s) => s.holder === standby.identity)!;
        const acquired = Date.parse(takeover.acquireTime ?? '');
        const afterTerm = oldObjectWrites.filter((w) => w.start >= tTerm).length;
        const ready = (await cluster.client.list<Message>(MessageResource, { namespace: ns })).items.filter(isReady).length;

        t.diagnostic(
          `replicas: leader ${leader.name} (${leader.identity}), standby ${standby.name} (${standby.identity}); ${MESSAGES} Messages, ${NA} Applications, ${NT / 2} tickets created ${iso(tApply)} → ${iso(tApplied)}, ${NT / 2} more before the SIGTERM`,
        );
        t.diagnostic(
          `SIGTERM to the leader: ${iso(tTerm)} with its booking ${describeCall(inFlight)} in flight; it exited at ${iso(leader.exitedAt)} (SIGTERM + ${(leader.exitedAt ?? NaN) - tTerm} ms) with code ${code}`,
        );
        t.diagnostic(
          `old leader: ${oldObjectWrites.length} object writes (${afterTerm} started after SIGTERM); last object write settled ${iso(oldLast)}; last write of any kind but the Lease ${iso(oldLastAny)}; booking calls ${leader.tap.calls.length}, ${oldCallsAfterTerm.length} sent after SIGTERM ${JSON.stringify(oldCallsAfterTerm.map(describeCall))}, the last answered ${iso(oldLastCallEnd)}`,
        );
        t.diagnostic(
          `old leader's Lease writes after SIGTERM: ${JSON.stringify(oldLeaseWrites.filter((w) => w.end >= tTerm).map((w) => `${w.method} ${iso(w.start)} → ${iso(w.end)} ${w.outcome}`))}`,
        );
        t.diagnostic(
          `old leader released the Lease: ${release ? `${iso(release.start)} → ${iso(release.end)} (${(release.start - oldLast).toFixed(0)} ms after its last object write settled)` : 'no release write'}`,
        );
        t.diagnostic(
          `Lease as observed: ${JSON.stringify(leaseSeen.map((s) => ({ seen: iso(s.at), holder: s.holder, acquireTime: s.acquireTime, transitions: s.transitions })))}`,
        );
        t.diagnostic(
          `new leader: acquireTime ${takeover.acquireTime} (SIGTERM + ${acquired - tTerm} ms; ${(acquired - oldLast).toFixed(0)} ms after the old leader's last object write, ${(acquired - oldLastCallEnd).toFixed(0)} ms after its last booking answer); first object write started ${iso(newFirst)} (${(newFirst - oldLast).toFixed(0)} ms after), first booking call ${Number.isFinite(newFirstCall) ? iso(newFirstCall) : 'none (every ticket was booked by the old leader)'}`,
        );
        t.diagnostic(
          `converged ${((tReady - tApply) / 1000).toFixed(1)} s after the first create, ${((tReady - tTerm) / 1000).toFixed(1)} s after the SIGTERM; ${ready}/${MESSAGES} Messages Ready, ${state.pods.length} Pods; most Pods of one Message seen at once by the watch: ${podWatch.max}`,
        );
        t.diagnostic(
          `both replicas, the Lease left out: at most ${messageCounts.maxWritesPerObject.writes} writes to one Message+Pod (${messageCounts.maxWritesPerObject.name}), ${messageCounts.podCreations} Pod creations; at most ${maxApp.writes} to one Application with its children (${maxApp.name || 'none'}); ${tw.total} ticket writes, at most ${tw.max.writes} to one (${tw.max.name || 'none'}); ${quiet.writes} writes in the 3 s after convergence`,
        );
        t.diagnostic(
          `booking service: ${ticketEnd.bookings.length} bookings (${ticketEnd.bookings.filter((x) => x.state === 'active').length} active) for ${NT} tickets; calls: old leader ${leader.tap.calls.length}, new leader ${standby.tap.calls.length}`,
        );

        assert.deepEqual(problems, [], describeViolations(problems));
        assert.ok(oldObjectWrites.length > 0 && newWrites.length > 0, 'both replicas wrote: the rollover happened mid-convergence');
        assert.ok(Number.isFinite(acquired), `the Lease's acquireTime after the takeover parses: ${takeover.acquireTime}`);
        assert.ok(release, 'the old leader released the Lease when it stopped');
        assert.ok(
          release.start > oldLast,
          `the old leader released the Lease at ${iso(release.start)}, before its last object write settled at ${iso(oldLast)}`,
        );
        assert.ok(
          acquired > oldLast,
          `the standby acquired the Lease at ${takeover.acquireTime}, before the old leader's last write settled at ${iso(oldLast)}`,
        );
        assert.ok(
          newFirst > oldLast,
          `the new leader first wrote at ${iso(newFirst)}, before the old leader's last write settled at ${iso(oldLast)}`,
        );
        assert.ok(inFlight.end !== undefined, 'the booking POST in flight at the SIGTERM was answered before the old leader exited');
        assert.ok(
          acquired > oldLastCallEnd && newFirstCall > oldLastCallEnd,
          `the new leader acquired (${takeover.acquireTime}) and called the booking service (${iso(newFirstCall)}) only after the old leader's last booking call was answered (${iso(oldLastCallEnd)})`,
        );
        assert.equal(podWatch.doubled, undefined, `the Pod watch saw two Pods of Message ${podWatch.doubled} at once`);
      } finally {
        polling = false;
        await poller;
        podWatch.stop();
        for (const r of replicas) if (r.exitedAt === undefined) r.child.kill('SIGTERM');
        await Promise.race([Promise.all(replicas.map((r) => r.exited)), new Promise((r) => setTimeout(r, 30_000))]);
      }
    },
  );
});
