// Fault scenario 1: kube-apiserver SIGKILLed and restarted while the operators (one process of
// their own: message, application and flightticket) converge 300 Messages, 30 Applications and 20
// FlightTickets (1,000, 100 and 100 with FAULT_LONG=1), the tickets booked at a booking service
// process of their own. On a control plane of its own, since killing the shared test cluster's API
// server would break every other test. Each kind lives in a namespace of its own: Application Pods
// (made by ReplicaSets) are not Message Pods, and the Message invariants count every Pod.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationResource, type Application } from '../../operators/application/resource.js';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import {
  applicationWrites,
  applicationWriteViolations,
  appSpecs,
  createApplications,
  maxApplicationWrites,
  waitApplicationsConverged,
} from './lib/applications.js';
import { describeCounts, OPERATOR_USER_AGENT, readAudit } from './lib/audit.js';
import {
  bookingProcess,
  createTickets,
  flightTicketEnv,
  installFlightTickets,
  isTicketBooked,
  readTickets,
  ticketSpec,
  ticketWrites,
  waitTicketsConverged,
  type BookingProcess,
} from './lib/flighttickets.js';
import { startFaultCluster, type FaultCluster } from './lib/cluster.js';
import { createMessages, describeViolations, hotLoopReport, hotLoopViolations, names, waitConverged } from './lib/invariants.js';
import { metricValue, operatorProcess, readOperatorLog, reconcileFailures, type OperatorProcess } from './lib/operator.js';

const LONG = process.env.FAULT_LONG === '1';
const N = LONG ? 1000 : 300;
/** Applications, one replica each: every one costs a Deployment, a ReplicaSet and a Pod from the control plane. */
const NA = LONG ? 100 : 30;
/** FlightTickets, booked at a booking service without faults of its own: the fault here is the API server's. */
const NT = LONG ? 100 : 20;
/** How long the API server stays dead: long enough that every request and watch of the operator fails. */
const DOWN_MS = 2_000;
/**
 * Writes to one Message and its Pod: a fault-free convergence makes 3 (apply the Pod, status
 * Pending, status Running); a write cut by the crash may be repeated once, and a reconcile that
 * raced the crash once more.
 */
const MAX_WRITES_PER_OBJECT = 6;
/**
 * Writes to one Application, its Deployment and its Service: a fault-free convergence makes 5
 * (apply the Deployment, apply the Service, status 0/0, 0/1 and 1/1 as the Deployment's status
 * changes); the crash can cut each of the three kinds of write once and make it be sent again,
 * and the status computed from a cache the outage left stale is corrected once more.
 */
const MAX_APP_WRITES = 5 + 3 + 2;
/**
 * Writes to one FlightTicket: 3 without a fault (the finalizer, status Pending, status Booked); each
 * may be cut by the crash and sent again, and a status write on a version the outage made stale is
 * refused (409) and sent once more.
 */
const MAX_TICKET_WRITES = 3 + 3 + 1;

describe(`kube-apiserver SIGKILLed during the convergence of ${N} Messages and ${NA} Applications`, () => {
  let cluster: FaultCluster;
  let op: OperatorProcess;
  let booking: BookingProcess;
  const ns = 'fault-apiserver-kill';
  const appNs = 'fault-apiserver-kill-apps';
  const ticketNs = 'fault-apiserver-kill-tickets';

  before(async () => {
    cluster = await startFaultCluster({ prefix: 'fault-apiserver' });
    await cluster.namespace(ns);
    await cluster.namespace(appNs);
    await cluster.namespace(ticketNs);
    await installFlightTickets(cluster, ticketNs);
    booking = bookingProcess({ dir: cluster.dir, faults: {} });
    await booking.start();
    op = operatorProcess({
      kubeconfig: cluster.kubeconfig,
      namespace: [ns, appNs, ticketNs],
      operator: ['message', 'application', 'flightticket'],
      env: flightTicketEnv(booking, ticketNs),
      logFile: join(cluster.dir, 'logs', 'operator.log'),
    });
    await op.start();
  });

  after(async () => {
    await op?.stop();
    await booking?.stop();
    await cluster?.destroy();
  });

  test('every Message, Application and FlightTicket converges: one Pod / one Deployment and Service / one booking each, no orphan, no hot loop, the operator alive', async (t) => {
    const since = new Date();
    const t0 = performance.now();
    const expected = new Map(names('m', N).map((n) => [n, `fault suite: ${n}`]));
    const expectedApps = appSpecs('app', NA);
    const tickets = new Map(names('t', NT).map((n, i) => [n, ticketSpec(i)]));
    await Promise.all([
      createMessages(cluster.client, ns, [...expected.keys()], (n) => expected.get(n)!),
      createApplications(cluster.client, appNs, expectedApps),
      createTickets(cluster.client, ticketNs, [...tickets.keys()], (n) => tickets.get(n)!),
    ]);
    const createdMs = performance.now() - t0;

    // Kill once part of the work is done, so the crash lands in the middle of the convergence.
    let readyAtKill = 0;
    for (;;) {
      const list = await cluster.client.list<Message>(MessageResource, { namespace: ns });
      readyAtKill = list.items.filter((m) => m.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
      if (readyAtKill >= N / 5) break;
      assert.ok(performance.now() - t0 < 60_000, `only ${readyAtKill} of ${N} Messages Ready 60 s after the start, before any fault`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const [appsAtKill, ticketsAtKill] = await Promise.all([
      cluster.client
        .list<Application>(ApplicationResource, { namespace: appNs })
        .then((l) => l.items.filter((a) => a.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length),
      readTickets(cluster.client, ticketNs).then((l) => l.filter(isTicketBooked).length),
    ]);
    const killAt = performance.now();
    const restart = await cluster.restartApiserver({ signal: 'SIGKILL', pauseMs: DOWN_MS });
    const backPerf = performance.now();

    // The long form's retries drain at the queue's 10/s: ~80 s for ~900 failed reconciles.
    const timeoutMs = LONG ? 240_000 : 90_000;
    const [{ ms: convergedMs, state }, { ms: appsMs }, ticketEnd] = await Promise.all([
      waitConverged(cluster.client, ns, { since: t0, timeoutMs, expected }),
      waitApplicationsConverged(cluster.client, appNs, { since: t0, timeoutMs, expected: expectedApps }),
      waitTicketsConverged(cluster.client, ticketNs, booking, { live: tickets, deletedUids: new Set() }, { since: t0, timeoutMs }),
    ]);
    const afterBackMs = t0 + convergedMs - backPerf;

    // Time to notice: the operator's first request the new API server process received.
    const mine = (await readAudit(cluster.auditLog)).filter((e) => e.stage === 'RequestReceived' && e.userAgent === OPERATOR_USER_AGENT);
    const firstAfter = mine
      .map((e) => Date.parse(e.requestReceivedTimestamp))
      .filter((ts) => ts >= restart.startedAt.getTime())
      .sort((a, b) => a - b)[0];
    // The pace of the Pod applies after the restart: the retries of the reconciles that failed in the outage.
    const applies = mine
      .filter(
        (e) =>
          e.verb === 'patch' && e.objectRef?.resource === 'pods' && Date.parse(e.requestReceivedTimestamp) >= restart.readyAt.getTime(),
      )
      .map((e) => Date.parse(e.requestReceivedTimestamp))
      .sort((a, b) => a - b);
    const gaps = applies
      .slice(1)
      .map((ts, i) => ts - applies[i]!)
      .sort((a, b) => a - b);
    const medianGap = gaps.length ? gaps[Math.floor(gaps.length / 2)]! : 0;
    const report = await hotLoopReport(cluster.auditLog, { since, namespace: ns });
    const events = await readAudit(cluster.auditLog);
    const appWrites = applicationWrites(events, { since, namespace: appNs });
    const maxApp = maxApplicationWrites(appWrites);
    const tw = ticketWrites(events, { since, namespace: ticketNs });
    const bookingCalls = await booking.requests(since.getTime());
    // Who the time after the restart went to: the operator's Pod creations and writes, or the
    // scheduler binding the Pods (kwok then marks them Running within a second).
    const back = restart.readyAt.getTime();
    const latest = (xs: (string | undefined)[]) => Math.max(...xs.map((x) => (x ? Date.parse(x) : 0)));
    const lastPodCreated = latest(state.pods.map((p) => p.metadata.creationTimestamp));
    const lastBound = latest(
      state.pods.map(
        (p) =>
          (p.status as { conditions?: { type: string; lastTransitionTime?: string }[] } | undefined)?.conditions?.find(
            (c) => c.type === 'PodScheduled',
          )?.lastTransitionTime,
      ),
    );
    const lastWrite = report.counts.lastWriteAt?.getTime() ?? 0;
    const metrics = await op.metrics();
    const relists = metricValue(metrics, 'bosun_watch_restarts_total', { reason: 'gone' });
    const restarts = metricValue(metrics, 'bosun_watch_restarts_total');
    const failures = reconcileFailures(await readOperatorLog(op.logFile));

    t.diagnostic(
      `${N} Messages created in ${createdMs.toFixed(0)} ms; ${readyAtKill} Ready (and ${appsAtKill}/${NA} Applications Ready, ${ticketsAtKill}/${NT} FlightTickets Booked) when kube-apiserver was SIGKILLed at +${(killAt - t0).toFixed(0)} ms`,
    );
    t.diagnostic(`kube-apiserver down ${restart.downMs.toFixed(0)} ms (kill, ${DOWN_MS} ms pause, start, /readyz)`);
    t.diagnostic(
      `time to notice: the operator's first request to the new API server ${firstAfter === undefined ? 'never came' : `came ${firstAfter - restart.readyAt.getTime()} ms after its /readyz answered 200`}`,
    );
    t.diagnostic(
      `time to converge: ${convergedMs.toFixed(0)} ms from the first create; ${afterBackMs.toFixed(0)} ms after the API server was back`,
    );
    t.diagnostic(
      `Applications: ${NA} converged ${appsMs.toFixed(0)} ms from the first create (${(t0 + appsMs - backPerf).toFixed(0)} ms after the API server was back); ${[...appWrites.values()].reduce((a, b) => a + b, 0)} writes to them and their children, at most ${maxApp.writes} (${maxApp.name || 'none'})`,
    );
    t.diagnostic(
      `FlightTickets: ${NT} ${ticketEnd.violations.length ? 'NOT converged' : 'converged'} ${ticketEnd.ms.toFixed(0)} ms from the first create; ${ticketEnd.bookings.length} bookings in the booking database (${ticketEnd.bookings.filter((b) => b.state === 'active').length} active); ${bookingCalls.length} booking-service calls (the operator's); ${tw.total} ticket writes, at most ${tw.max.writes} (${tw.max.name || 'none'})`,
    );
    t.diagnostic(
      `after the restart: the operator created its last Pod at +${((lastPodCreated - back) / 1000).toFixed(0)} s (creationTimestamp, 1 s resolution), the scheduler bound the last Pod at +${((lastBound - back) / 1000).toFixed(0)} s, the operator's last write was at +${((lastWrite - back) / 1000).toFixed(1)} s`,
    );
    t.diagnostic(
      `reconciles failed during the outage: ${failures.total}, at most ${failures.maxPerObject} for one Message; their retries share the queue's 10/s bucket (burst 100), so the last was due ~${Math.max(0, (failures.total - 100) / 10).toFixed(0)} s after the crash`,
    );
    t.diagnostic(
      `Pod applies after the restart: ${applies.length}${applies.length > 1 ? `, median ${medianGap} ms apart` : ''} (the work queue's retry token bucket, 10/s, paces retries of reconciles that failed in the outage)`,
    );
    t.diagnostic(`watch restarts in the operator: ${restarts} (${relists} relists after 410)`);
    t.diagnostic(
      `operator requests: ${describeCounts(report.counts)}; after convergence (3 s): ${report.quiet.total} requests, ${report.quiet.writes} writes`,
    );

    assert.ok(readyAtKill < N, `the crash came during the convergence (${readyAtKill} of ${N} Ready at the kill)`);
    assert.ok(firstAfter !== undefined, 'the operator reached the restarted API server');
    assert.equal(op.exitedUnexpectedly(), undefined, 'the operator process is alive');
    assert.ok(op.alive(), 'the operator process is alive');
    assert.equal(report.counts.podCreations <= N, true, `${report.counts.podCreations} Pod creations for ${N} Messages`);
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
