// Fault scenario 6: the operators (message, application and flightticket in one process) throttled
// by API Priority and Fairness. The process is authenticated as a ServiceAccount; a FlowSchema sends
// that ServiceAccount's requests to a PriorityLevelConfiguration of a few seats and one short queue,
// so the API server itself refuses most of its requests with 429 and Retry-After: 1. The same N
// Messages, NA Applications and NT FlightTickets (a quarter of the tickets deleted right after their
// creation, so finalizers and cancellations go through the throttle too) are converged once without
// the FlowSchema (the baseline) and once with it, each phase in namespaces of its own and with a
// booking service process of its own (its database holds only that phase's bookings); the audit log
// records the ServiceAccount's requests, so the 429s counted are the server's, not a fake's.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FlightTicketResource } from '../../operators/flightticket/resource.js';
import { applicationWrites, appSpecs, createApplications, maxApplicationWrites, waitApplicationsConverged } from './lib/applications.js';
import { describeCounts, readAudit } from './lib/audit.js';
import { startFaultCluster, type FaultCluster } from './lib/cluster.js';
import {
  bookingProcess,
  BOOKING_SECRET,
  createTickets,
  flightTicketEnv,
  installFlightTickets,
  ticketSpec,
  ticketWrites,
  waitTicketsConverged,
  type BookingProcess,
} from './lib/flighttickets.js';
import { auditUser, serviceAccountIdentity, throttle, type OperatorIdentity } from './lib/identity.js';
import { createMessages, describeViolations, hotLoopReport, hotLoopViolations, names, waitConverged } from './lib/invariants.js';
import { operatorProcess, readOperatorLog, reconcileFailures, type OperatorProcess } from './lib/operator.js';
import { describeThrottle, isRetriedRequest, throttleReport, type ThrottleReport, type UserAuditEvent } from './lib/throttling.js';

const LONG = process.env.FAULT_LONG === '1';
const N = LONG ? 1000 : 200;
/** Applications, one replica each (a Deployment, a ReplicaSet and a Pod from the control plane). */
const NA = LONG ? 100 : 10;
/** FlightTickets, booked at a booking service without faults of its own: the fault here is the API server's. */
const NT = LONG ? 100 : 12;
/** Of the tickets, deleted as soon as they are created: the finalizer's cancellation runs under the throttle. */
const NT_DELETED = NT / 4;
/** The priority level: 1 share of the server's 600 seats (≈3 seats), one queue of 2, nothing borrowed. */
const THROTTLE = { nominalConcurrencyShares: 1, queueLengthLimit: 2 };
/** The Retry-After APF gives with every 429 (1 s, checked in src/client/auth.integration.test.ts). */
const RETRY_AFTER_MS = 1_000;
/** Timer and timestamp granularity: the API server stamps microseconds, Node's timers may fire up to 1 ms early. */
const CLOCK_SLACK_MS = 5;
/**
 * Admitted writes to one Message and its Pod: 3 without a fault (apply the Pod, status Pending,
 * status Running), plus one per reconcile that failed after a write got through (its retry writes
 * again); the baseline makes 3.
 */
const MAX_ADMITTED_WRITES_PER_OBJECT = 6;
/**
 * Admitted writes to one Application, its Deployment and its Service: 5 without a fault (apply the
 * Deployment, apply the Service, status 0/0, 0/1 and 1/1 as the Deployment's status changes). Each
 * status write is conditional on the version the cache holds, and the Deployment's status changes
 * come faster than the cache sees the operator's own previous status write, so each of the 3 may be
 * refused (409, admitted by APF) and sent again: 3 more, unthrottled (the baseline measured 6–9).
 * Under the throttle, one more for each of the three kinds of write whose reconcile failed after
 * the write got through (a later write refused past the client's retries) and was run again.
 */
const MAX_ADMITTED_APP_WRITES = 5 + 3 + 3;
/**
 * Admitted writes to one FlightTicket: a booked one makes 3 without a fault (the finalizer, status
 * Pending, status Booked); one deleted at once at most 5 (the finalizer, Pending and Booked if the
 * booking came first, Cancelling, the finalizer removed), fewer when the deletion won. Plus one per
 * reconcile that failed after a write got through and was run again, as above: at most one for each
 * of the three writes of a reconcile.
 */
const MAX_ADMITTED_TICKET_WRITES = { live: 3 + 3, deleted: 5 + 3 };

interface Phase {
  convergedMs: { messages: number; applications: number; tickets: number };
  report: ThrottleReport;
}

/** The three namespaces of one phase: Messages, Applications, FlightTickets. */
function phaseNamespaces(ns: string): { ns: string; appNs: string; ticketNs: string } {
  return { ns, appNs: `${ns}-apps`, ticketNs: `${ns}-tickets` };
}

/**
 * The audit events of a phase's three namespaces as if they were one (namespace `ns`), so one
 * throttle report covers every request of the phase: 429s, retries, storm.
 */
function asOneNamespace(events: UserAuditEvent[], ns: string): UserAuditEvent[] {
  const all = new Set(Object.values(phaseNamespaces(ns)));
  return events.map((e) =>
    e.objectRef?.namespace !== undefined && all.has(e.objectRef.namespace) ? { ...e, objectRef: { ...e.objectRef, namespace: ns } } : e,
  );
}

/** The events of requests the server let through: those it answered 429 are left out, both stages. */
function admittedOnly(events: UserAuditEvent[]): UserAuditEvent[] {
  const refused = new Set(events.filter((e) => e.stage === 'ResponseComplete' && e.responseStatus?.code === 429).map((e) => e.auditID));
  return events.filter((e) => !refused.has(e.auditID));
}

/** The admitted writes to the objects named `name` in `namespace`, in order, as `verb resource[/sub] code`. */
function writeSequence(events: UserAuditEvent[], namespace: string, name: string): string {
  const code = new Map(events.filter((e) => e.stage === 'ResponseComplete').map((e) => [e.auditID, e.responseStatus?.code]));
  return events
    .filter(
      (e) =>
        e.stage === 'RequestReceived' &&
        ['create', 'update', 'patch', 'delete'].includes(e.verb) &&
        e.objectRef?.namespace === namespace &&
        e.objectRef.name === name,
    )
    .map(
      (e) =>
        `${e.verb} ${e.objectRef!.resource}${e.objectRef!.subresource ? `/${e.objectRef!.subresource}` : ''} ${code.get(e.auditID) ?? '?'}`,
    )
    .join(', ');
}

/**
 * Each request that named its object and came again sooner than `RETRY_AFTER_MS` after a 429 for
 * the same verb and URI, with that URI's whole sequence (ms after its first request, answer code), for
 * the diagnostics of a failed Retry-After check.
 */
function earlyRetries(events: UserAuditEvent[], opts: { username: string; namespace: string; since: Date }): string[] {
  const code = new Map(events.filter((e) => e.stage === 'ResponseComplete').map((e) => [e.auditID, e]));
  const byKey = new Map<string, UserAuditEvent[]>();
  for (const e of events) {
    if (e.stage !== 'RequestReceived' || e.user?.username !== opts.username || e.objectRef?.namespace !== opts.namespace) continue;
    if (!isRetriedRequest(e) || Date.parse(e.requestReceivedTimestamp) < opts.since.getTime()) continue;
    const key = `${e.verb} ${e.requestURI}`;
    byKey.set(key, [...(byKey.get(key) ?? []), e]);
  }
  const out: string[] = [];
  for (const [key, seq] of byKey) {
    const first = Date.parse(seq[0]!.requestReceivedTimestamp);
    const early = seq.some((e, i) => {
      const done = code.get(e.auditID);
      const next = seq[i + 1];
      if (done?.responseStatus?.code !== 429 || !next) return false;
      return (
        Date.parse(next.requestReceivedTimestamp) - Date.parse(done.stageTimestamp ?? e.requestReceivedTimestamp) <
        RETRY_AFTER_MS - CLOCK_SLACK_MS
      );
    });
    if (early)
      out.push(
        `${key}: ${seq.map((e) => `+${Date.parse(e.requestReceivedTimestamp) - first} ms ${code.get(e.auditID)?.responseStatus?.code ?? '?'}`).join(', ')}`,
      );
  }
  return out;
}

/**
 * The refused requests that named their object and were never sent again, as `resource/name`: the
 * objects of `throttleReport`'s `notRetried`.
 */
function neverRetried(events: UserAuditEvent[], opts: { username: string; namespace: string; since: Date }): string[] {
  const code = new Map(events.filter((e) => e.stage === 'ResponseComplete').map((e) => [e.auditID, e.responseStatus?.code]));
  const last = new Map<string, UserAuditEvent>();
  for (const e of events) {
    if (e.stage !== 'RequestReceived' || e.user?.username !== opts.username || e.objectRef?.namespace !== opts.namespace) continue;
    if (!isRetriedRequest(e) || Date.parse(e.requestReceivedTimestamp) < opts.since.getTime()) continue;
    last.set(`${e.verb} ${e.requestURI}`, e);
  }
  return [...last.values()].filter((e) => code.get(e.auditID) === 429).map((e) => `${e.objectRef!.resource}/${e.objectRef!.name}`);
}

describe(`the operators throttled by API Priority and Fairness while they converge ${N} Messages, ${NA} Applications and ${NT} FlightTickets`, () => {
  let cluster: FaultCluster;
  let identity: OperatorIdentity;
  let baseline: Phase | undefined;
  const ops: OperatorProcess[] = [];
  const bookings = new Map<string, BookingProcess>();
  const saNamespace = 'fault-throttle-sa';
  const phases = ['fault-throttle-base', 'fault-throttle'];

  before(async () => {
    cluster = await startFaultCluster({ prefix: 'fault-throttle' });
    await cluster.namespace(saNamespace);
    for (const phase of phases) for (const n of Object.values(phaseNamespaces(phase))) await cluster.namespace(n);
    identity = await serviceAccountIdentity(cluster, saNamespace, 'bosun-operator');
    for (const phase of phases) {
      const { ticketNs } = phaseNamespaces(phase);
      await installFlightTickets(cluster, ticketNs);
      // As the generated named-reads Role (config/rbac/named_reads_role.yaml) grants it: get on the one API-key Secret.
      await cluster.kubectlOk([
        'create',
        'role',
        'booking-api-reader',
        '-n',
        ticketNs,
        '--verb=get',
        '--resource=secrets',
        `--resource-name=${BOOKING_SECRET}`,
      ]);
      await cluster.kubectlOk([
        'create',
        'rolebinding',
        'booking-api-reader',
        '-n',
        ticketNs,
        '--role=booking-api-reader',
        `--serviceaccount=${identity.namespace}:${identity.name}`,
      ]);
      bookings.set(phase, bookingProcess({ dir: join(cluster.dir, `booking-${phase}`), faults: {} }));
    }
    await auditUser(cluster, identity.username);
    await Promise.all([...bookings.values()].map((b) => b.start()));
  });

  after(async () => {
    for (const op of ops) await op.stop();
    for (const b of bookings.values()) await b.stop();
    await cluster?.destroy();
  });

  /**
   * Starts the operators as the ServiceAccount for the phase's namespaces, creates the N Messages, NA
   * Applications and NT tickets there, deletes NT_DELETED of the tickets at once, and waits for every
   * invariant of the three kinds.
   */
  async function converge(phase: string, timeoutMs: number) {
    const { ns, appNs, ticketNs } = phaseNamespaces(phase);
    const booking = bookings.get(phase)!;
    const op = operatorProcess({
      kubeconfig: identity.kubeconfig,
      namespace: [ns, appNs, ticketNs],
      operator: ['message', 'application', 'flightticket'],
      env: flightTicketEnv(booking, ticketNs),
      logFile: join(cluster.dir, 'logs', `operator-${phase}.log`),
    });
    ops.push(op);
    const since = new Date();
    const startMs = await op.start();
    const t0 = performance.now();
    const expected = new Map(names('m', N).map((n) => [n, `fault suite: ${n}`]));
    const apps = appSpecs('app', NA);
    const tickets = new Map(names('t', NT).map((n, i) => [n, ticketSpec(i)]));
    const [, , ticketUids] = await Promise.all([
      createMessages(cluster.client, ns, [...expected.keys()], (n) => expected.get(n)!),
      createApplications(cluster.client, appNs, apps),
      createTickets(cluster.client, ticketNs, [...tickets.keys()], (n) => tickets.get(n)!),
    ]);
    const deleted = names('t', NT_DELETED);
    await Promise.all(deleted.map((n) => cluster.client.delete(FlightTicketResource, ticketNs, n)));
    for (const n of deleted) tickets.delete(n);
    const deletedUids = new Set(deleted.map((n) => ticketUids.get(n)!));
    const [{ ms: messagesMs }, { ms: applicationsMs }, ticketEnd] = await Promise.all([
      waitConverged(cluster.client, ns, { since: t0, timeoutMs, expected }),
      waitApplicationsConverged(cluster.client, appNs, { since: t0, timeoutMs, expected: apps }),
      waitTicketsConverged(cluster.client, ticketNs, booking, { live: tickets, deletedUids }, { since: t0, timeoutMs }),
    ]);
    const hot = await hotLoopReport(cluster.auditLog, { since, namespace: ns });
    const events = (await readAudit(cluster.auditLog)) as UserAuditEvent[];
    const report = throttleReport(asOneNamespace(events, ns), { username: identity.username, namespace: ns, since });
    const admitted = admittedOnly(events);
    const appWrites = applicationWrites(admitted, { since, namespace: appNs });
    const tw = ticketWrites(admitted, { since, namespace: ticketNs });
    const bookingWrites = (await booking.requests(since.getTime())).filter((r) => r.method !== 'GET');
    const mine = admitted.filter(
      (e) => e.user?.username === identity.username && Date.parse(e.requestReceivedTimestamp) >= since.getTime(),
    );
    const maxApp = maxApplicationWrites(appWrites);
    const sequences = {
      app: `${maxApp.name || 'none'}: ${writeSequence(mine, appNs, maxApp.name)}`,
      ticket: `${tw.max.name || 'none'}: ${writeSequence(mine, ticketNs, tw.max.name)}`,
    };
    return {
      op,
      ns,
      since,
      startMs,
      convergedMs: { messages: messagesMs, applications: applicationsMs, tickets: ticketEnd.ms },
      hot,
      report,
      appWrites,
      tw,
      ticketEnd,
      deleted,
      bookingWrites,
      sequences,
    };
  }

  type Converged = Awaited<ReturnType<typeof converge>>;

  function describePhase(t: { diagnostic(s: string): void }, r: Converged): void {
    const maxApp = maxApplicationWrites(r.appWrites);
    t.diagnostic(
      `caches synced ${r.startMs.toFixed(0)} ms after the start; converged after the first create: Messages ${r.convergedMs.messages.toFixed(0)} ms, Applications ${r.convergedMs.applications.toFixed(0)} ms, FlightTickets ${r.convergedMs.tickets.toFixed(0)} ms`,
    );
    t.diagnostic(`as ${identity.username}, the phase's three namespaces: ${describeThrottle(r.report, N)}`);
    t.diagnostic(
      `admitted writes to one Application and its children at most ${maxApp.writes} (${maxApp.name || 'none'}); to one FlightTicket at most ${r.tw.max.writes} (${r.tw.max.name || 'none'}); ${r.ticketEnd.bookings.length} bookings in the phase's booking database (${r.ticketEnd.bookings.filter((b) => b.state === 'active').length} active for ${NT - NT_DELETED} live tickets, ${NT_DELETED} deleted); ${r.bookingWrites.length} booking-service writes`,
    );
    t.diagnostic(`the most written Application: ${r.sequences.app}; the most written FlightTicket: ${r.sequences.ticket}`);
    t.diagnostic(
      `by user agent (Messages' namespace): ${describeCounts(r.hot.counts)}; after convergence (3 s, every namespace): ${r.hot.quiet.total} requests, ${r.hot.quiet.writes} writes`,
    );
  }

  /** Every write bound and hot-loop symptom of a phase, counting admitted writes only. */
  function writeViolations(r: Converged): string[] {
    const deleted = new Set(r.deleted);
    return [
      ...hotLoopViolations(
        { counts: { ...r.hot.counts, maxWritesPerObject: { name: '', writes: 0 } }, quiet: r.hot.quiet },
        MAX_ADMITTED_WRITES_PER_OBJECT,
      ),
      ...(r.report.maxAdmittedWritesPerObject.writes > MAX_ADMITTED_WRITES_PER_OBJECT
        ? [
            `${r.report.maxAdmittedWritesPerObject.writes} admitted writes to Message ${r.report.maxAdmittedWritesPerObject.name} and its Pod, more than the bound ${MAX_ADMITTED_WRITES_PER_OBJECT}`,
          ]
        : []),
      ...[...r.appWrites]
        .filter(([, w]) => w > MAX_ADMITTED_APP_WRITES)
        .map(([n, w]) => `${w} admitted writes to Application ${n} and its children, more than the bound ${MAX_ADMITTED_APP_WRITES}`),
      ...[...r.tw.perTicket]
        .filter(([n, w]) => w > (deleted.has(n) ? MAX_ADMITTED_TICKET_WRITES.deleted : MAX_ADMITTED_TICKET_WRITES.live))
        .map(([n, w]) => `${w} admitted writes to FlightTicket ${n}, more than its bound (${JSON.stringify(MAX_ADMITTED_TICKET_WRITES)})`),
    ];
  }

  test('baseline: unthrottled, the same ServiceAccount converges the three kinds with no 429', async (t) => {
    const r = await converge('fault-throttle-base', 90_000);
    baseline = { convergedMs: r.convergedMs, report: r.report };
    describePhase(t, r);
    assert.ok(r.report.received > N, `the audit log records the ServiceAccount's requests (${r.report.received} for ${N} Messages)`);
    assert.equal(r.report.refused, 0, 'no 429 without the FlowSchema');
    assert.deepEqual(r.ticketEnd.violations, [], describeViolations(r.ticketEnd.violations));
    assert.equal(r.op.exitedUnexpectedly(), undefined, 'the operator process is alive');
    const v = writeViolations(r);
    assert.deepEqual(v, [], describeViolations(v));
    await r.op.stop();
  });

  test('throttled: real 429s, every refused request retried no sooner than Retry-After, no storm, converged', async (t) => {
    await throttle(cluster, identity, 'bosun-fault-throttle', THROTTLE);
    // At most 3 seats and 2 queued for ~3 requests per object: the baseline's time stretched by 1 s per refusal round.
    const r = await converge('fault-throttle', LONG ? 300_000 : 120_000);
    const { report } = r;
    const log = await readOperatorLog(r.op.logFile);
    const failures = reconcileFailures(log);
    const retryLater = log.filter((l) => l.msg === 'the API server asked to retry later; retrying after its Retry-After').length;
    const watchRestarts = log.filter((l) => l.msg === 'watch restarting').length;

    t.diagnostic(`priority level: ${JSON.stringify(THROTTLE)}`);
    describePhase(t, r);
    if (baseline)
      t.diagnostic(
        `baseline: converged Messages ${baseline.convergedMs.messages.toFixed(0)} ms, Applications ${baseline.convergedMs.applications.toFixed(0)} ms, FlightTickets ${baseline.convergedMs.tickets.toFixed(0)} ms; ${describeThrottle(baseline.report, N)}`,
      );
    t.diagnostic(
      `operator log: ${retryLater} reconciles requeued after a 429 the client had retried to its limit, ${failures.total} other failed reconciles (at most ${failures.maxPerObject} for ${failures.name || 'none'}), ${watchRestarts} watch restarts`,
    );

    const early = earlyRetries(asOneNamespace((await readAudit(cluster.auditLog)) as UserAuditEvent[], r.ns), {
      username: identity.username,
      namespace: r.ns,
      since: r.since,
    });
    if (early.length) t.diagnostic(`sent again sooner than Retry-After after a 429: ${early.join('; ')}`);
    // A ticket deleted before its finalizer went on is gone at once: the refused finalizer patch is needed no more.
    const deletedTickets = new Set(r.deleted.map((n) => `flighttickets/${n}`));
    const givenUp = neverRetried(asOneNamespace((await readAudit(cluster.auditLog)) as UserAuditEvent[], r.ns), {
      username: identity.username,
      namespace: r.ns,
      since: r.since,
    });
    t.diagnostic(`refused and never sent again: ${givenUp.join(', ') || 'none'}`);

    assert.ok(report.refused > 0, "the API server refused some of the operator's requests with 429 (the throttle took effect)");
    assert.ok(report.retryGapsMs.length > 0, 'some refused request named its object, so its retry can be timed');
    assert.ok(
      report.retryGapsMs[0]! >= RETRY_AFTER_MS - CLOCK_SLACK_MS,
      `every refused request was sent again no sooner than Retry-After (${RETRY_AFTER_MS} ms); the quickest came after ${report.retryGapsMs[0]} ms`,
    );
    // No storm: a client that waits out Retry-After is refused at most once a second per request it
    // has outstanding (16 workers per controller, the watches, the Event writes), while ~3 seats
    // admit requests of a few ms each; a client that retried at once would be refused many times
    // per admitted request.
    assert.ok(report.refused <= report.admitted, `no request storm: ${report.refused} requests refused for ${report.admitted} admitted`);
    assert.deepEqual(
      givenUp.filter((o) => !deletedTickets.has(o)),
      [],
      'every refused request that named its object was sent again, but for a ticket deleted meanwhile (none given up)',
    );
    assert.deepEqual(r.ticketEnd.violations, [], describeViolations(r.ticketEnd.violations));
    assert.equal(r.op.exitedUnexpectedly(), undefined, 'the operator process is alive');
    const v = writeViolations(r);
    assert.deepEqual(v, [], describeViolations(v));
  });
});
