// Fault scenario 4: the operator process (message, application and flightticket) SIGKILLed 5 times
// at random moments while it converges 300 Messages, 30 Applications and 20 FlightTickets (1,000,
// 100 and 100 with FAULT_LONG=1), started again at once each time, as a crash-looping Deployment
// would be. The objects come in 5 waves, one before each kill, so every kill lands in the middle
// of work; the booking service answers after 300 ms, so kills also land during booking calls. The moments come from a seeded generator: the seed is printed, and
// FAULT_SEED=<n> replays a run. On a control plane of its own for the audit log that counts the
// operator's requests (the shared test cluster has none); the scenario only kills its own process.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import {
  applicationWrites,
  applicationWriteViolations,
  appSpecs,
  createApplications,
  maxApplicationWrites,
  waitApplicationsConverged,
} from './lib/applications.js';
import { describeCounts, readAudit } from './lib/audit.js';
import {
  bookingProcess,
  createTickets,
  flightTicketEnv,
  installFlightTickets,
  ticketSpec,
  ticketWrites,
  waitTicketsConverged,
  type BookingProcess,
} from './lib/flighttickets.js';
import { startFaultCluster, type FaultCluster } from './lib/cluster.js';
import { createMessages, describeViolations, hotLoopReport, hotLoopViolations, names, waitConverged } from './lib/invariants.js';
import { operatorProcess, type OperatorProcess } from './lib/operator.js';
import { mulberry32 } from '../../operators/flightticket/booking/faults.js';

const LONG = process.env.FAULT_LONG === '1';
const N = LONG ? 1000 : 300;
/** Applications, one replica each (a Deployment, a ReplicaSet and a Pod from the control plane). */
const NA = LONG ? 100 : 30;
/** FlightTickets. */
const NT = LONG ? 100 : 20;
const KILLS = 5;
/** The booking service's latency: long enough that some kills come while a booking call is out. */
const BOOKING_LATENCY_MS = 300;
/**
 * A kill comes this long after a wave of N / KILLS Messages was created, drawn uniformly; a wave of 60
 * converges in 0.6–0.9 s here, so a later kill could find it all Ready and test nothing.
 */
const KILL_AFTER_MS: [number, number] = [0, LONG ? 3_000 : 400];
/**
 * Writes to one Message and its Pod: 3 without a fault (apply the Pod, status Pending, status
 * Running); a write a kill cut off may be sent again by the next process, once per kill at most.
 */
const MAX_WRITES_PER_OBJECT = 3 + KILLS;
/** Writes to one Application and its children: 5 without a fault (Deployment, Service, 3 statuses), and one repeated per kill at most. */
const MAX_APP_WRITES = 5 + KILLS;
/** Writes to one FlightTicket: 3 without a fault (finalizer, Pending, Booked), and one repeated per kill at most. */
const MAX_TICKET_WRITES = 3 + KILLS;

describe(`the operator SIGKILLed ${KILLS} times during the convergence of ${N} Messages, ${NA} Applications and ${NT} FlightTickets`, () => {
  let cluster: FaultCluster;
  let op: OperatorProcess;
  let booking: BookingProcess;
  const ns = 'fault-operator-kill';
  const appNs = 'fault-operator-kill-apps';
  const ticketNs = 'fault-operator-kill-tickets';

  before(async () => {
    cluster = await startFaultCluster({ prefix: 'fault-operator-kill' });
    await cluster.namespace(ns);
    await cluster.namespace(appNs);
    await cluster.namespace(ticketNs);
    await installFlightTickets(cluster, ticketNs);
    booking = bookingProcess({ dir: cluster.dir, faults: { latencyMs: BOOKING_LATENCY_MS } });
    await booking.start();
    op = operatorProcess({
      kubeconfig: cluster.kubeconfig,
      namespace: [ns, appNs, ticketNs],
      operator: ['message', 'application', 'flightticket'],
      env: flightTicketEnv(booking, ticketNs),
      logFile: join(cluster.dir, 'logs', 'operator.log'),
    });
  });

  after(async () => {
    await op?.stop();
    await booking?.stop();
    await cluster?.destroy();
  });

  test('every Message, Application and FlightTicket converges: one Pod created once, one Deployment and Service, one booking; no orphan, no hot loop', async (t) => {
    const seed = process.env.FAULT_SEED ? Number(process.env.FAULT_SEED) : Math.floor(Math.random() * 2 ** 31);
    const random = mulberry32(seed);
    t.diagnostic(`seed ${seed} (FAULT_SEED=${seed} replays these kill moments)`);

    const since = new Date();
    const t0 = performance.now();
    const startups = [await op.start()];
    const expected = new Map(names('m', N).map((n) => [n, `fault suite: ${n}`]));
    const all = [...expected.keys()];
    const wave = Math.ceil(N / KILLS);
    const apps = appSpecs('app', NA);
    const appWave = Math.ceil(NA / KILLS);
    const tickets = new Map(names('t', NT).map((n, i) => [n, ticketSpec(i)]));
    const ticketNames = [...tickets.keys()];
    const ticketWave = Math.ceil(NT / KILLS);

    const kills: { atMs: number; afterWaveMs: number; ready: number; created: number }[] = [];
    for (let i = 0; i < KILLS; i++) {
      await Promise.all([
        createMessages(cluster.client, ns, all.slice(i * wave, (i + 1) * wave), (n) => expected.get(n)!),
        createApplications(cluster.client, appNs, new Map([...apps].slice(i * appWave, (i + 1) * appWave))),
        createTickets(cluster.client, ticketNs, ticketNames.slice(i * ticketWave, (i + 1) * ticketWave), (n) => tickets.get(n)!),
      ]);
      const wait = Math.round(KILL_AFTER_MS[0] + random() * (KILL_AFTER_MS[1] - KILL_AFTER_MS[0]));
      await new Promise((r) => setTimeout(r, wait));
      const list = await cluster.client.list<Message>(MessageResource, { namespace: ns });
      const ready = list.items.filter((m) => m.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
      await op.signal('SIGKILL');
      kills.push({ atMs: performance.now() - t0, afterWaveMs: wait, ready, created: list.items.length });
      startups.push(await op.start());
    }
    const timeoutMs = LONG ? 180_000 : 90_000;
    const [{ ms: convergedMs }, { ms: appsMs }, ticketEnd] = await Promise.all([
      waitConverged(cluster.client, ns, { since: t0, timeoutMs, expected }),
      waitApplicationsConverged(cluster.client, appNs, { since: t0, timeoutMs, expected: apps }),
      waitTicketsConverged(cluster.client, ticketNs, booking, { live: tickets, deletedUids: new Set() }, { since: t0, timeoutMs }),
    ]);
    const lastStart = t0 + kills[kills.length - 1]!.atMs;
    const report = await hotLoopReport(cluster.auditLog, { since, namespace: ns });
    const events = await readAudit(cluster.auditLog);
    const appWrites = applicationWrites(events, { since, namespace: appNs });
    const maxApp = maxApplicationWrites(appWrites);
    const tw = ticketWrites(events, { since, namespace: ticketNs });
    const bookingCalls = (await booking.requests(since.getTime())).filter((r) => r.method !== 'GET');

    t.diagnostic(
      `kills at ${kills.map((k) => `+${(k.atMs / 1000).toFixed(1)} s (${k.afterWaveMs} ms after a wave, ${k.ready}/${k.created} Ready)`).join(', ')}`,
    );
    t.diagnostic(`time to notice (a new process from start to caches synced): ${startups.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    t.diagnostic(
      `time to converge: ${convergedMs.toFixed(0)} ms from the first create; ${(t0 + convergedMs - lastStart).toFixed(0)} ms after the last kill`,
    );
    t.diagnostic(
      `Applications: ${NA} converged ${appsMs.toFixed(0)} ms from the first create; ${[...appWrites.values()].reduce((a, b) => a + b, 0)} writes to them and their children, at most ${maxApp.writes} (${maxApp.name || 'none'})`,
    );
    t.diagnostic(
      `FlightTickets: ${NT} ${ticketEnd.violations.length ? 'NOT converged' : 'converged'} ${ticketEnd.ms.toFixed(0)} ms from the first create; ${ticketEnd.bookings.length} bookings in the booking database (${ticketEnd.bookings.filter((b) => b.state === 'active').length} active); ${bookingCalls.length} booking-service writes answered; ${tw.total} ticket writes, at most ${tw.max.writes} (${tw.max.name || 'none'})`,
    );
    t.diagnostic(
      `operator requests (all ${op.starts} processes): ${describeCounts(report.counts)}; in the 3 s after convergence: ${report.quiet.total} requests, ${report.quiet.writes} writes`,
    );

    assert.deepEqual(
      kills.filter((k) => k.ready >= k.created),
      [],
      'every kill came while some Message was not Ready yet',
    );
    // A Pod is created once even when the process that sent the create died before the answer:
    // nobody deletes Pods here, so one Pod per Message (the invariants) and no delete mean one
    // creation each. (The audit cannot count them: a create whose client died is logged as 504.)
    assert.equal(report.counts.byKind['delete pods'] ?? 0, 0, 'the operator deleted no Pod');
    assert.ok(report.counts.podCreations <= N, `${report.counts.podCreations} Pod creations answered 201 for ${N} Messages`);
    assert.equal(op.exitedUnexpectedly(), undefined, 'the last operator process is alive');
    assert.deepEqual(ticketEnd.violations, [], describeViolations(ticketEnd.violations));
    const hot = [
      ...hotLoopViolations(report, MAX_WRITES_PER_OBJECT),
      ...applicationWriteViolations(appWrites, MAX_APP_WRITES),
      ...(tw.max.writes > MAX_TICKET_WRITES
        ? [`${tw.max.writes} writes to FlightTicket ${tw.max.name}, more than the bound ${MAX_TICKET_WRITES}`]
        : []),
    ];
    assert.deepEqual(hot, [], describeViolations(hot));
  });
});
