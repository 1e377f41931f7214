// Fault scenario 2: a watch gap longer than etcd's history. The operator process (message,
// application and flightticket in one process) is paused (SIGSTOP) and its connections are cut
// while Messages, Applications and FlightTickets are created, deleted, re-created under the same
// name and edited; etcd is compacted past everything the operator saw, so when it resumes
// (SIGCONT) its watches of the three kinds get 410 Gone and must relist. Nothing may be lost or
// done twice: a re-created object is a delete plus a create (new children owned by the new uid, the
// old ticket's booking cancelled and a new one booked), and each change costs exactly the child
// creations and bookings it needs.
//
// A FlightTicket keeps a finalizer, so one deleted in the gap stays (Terminating) until the
// operator has cancelled its booking: its name is free again only after SIGCONT, and the scenario
// re-creates it the moment it is. A ticket the operator never saw (created in the gap) has no
// finalizer yet: those are created, deleted and re-created within the gap, and only the last uid
// may be booked.
//
// The API server's watch cache keeps serving compacted revisions from its own window (checked on
// 1.35: after an etcd compaction a watch from a compacted revision still replays), so the three
// custom resources are served without it (--watch-cache-sizes=<resource>#0): etcd answers their
// watches and the compaction expires the operator's resourceVersion. Pods, Deployments and
// Services keep the cache: without it kwok deletes re-created same-name Pods again and again (348
// deletions for 20 edited Messages, against 32 with it), and restarting the API server in the gap
// instead left kube-scheduler with a corrupted cache that never bound a Pod again. So the child
// watches resume from the cache and the parent watches relist. On a control plane of its own; the
// operator goes through a fault proxy so its connections can be cut while it is paused (the booking
// service is reached directly). Each kind lives in a namespace of its own: Application Pods are
// not Message Pods, and the Message invariants count every Pod.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationResource, type Application } from '../../operators/application/resource.js';
import { FlightTicketResource, type FlightTicket, type FlightTicketSpec } from '../../operators/flightticket/resource.js';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import { ApiError } from '../../packages/bosun/src/client/errors.js';
import { startFaultProxy, writeProxyKubeconfig, type FaultProxy } from '../../packages/bosun/src/tooling/envtest/faultproxy.js';
import { eventually } from '../../packages/bosun/src/tooling/envtest/testenv.js';
import {
  applicationWrites,
  appSpecs,
  createApplications,
  maxApplicationWrites,
  readApplications,
  waitApplicationsConverged,
  type AppSpec,
} from './lib/applications.js';
import {
  countRequests,
  deletedBetween,
  describeCounts,
  foreignPodDeletes,
  OPERATOR_USER_AGENT,
  podCreationTimes,
  readAudit,
  type AuditEvent,
} from './lib/audit.js';
import {
  bookingProcess,
  bookingsOf,
  createTickets,
  flightTicketEnv,
  installFlightTickets,
  readTickets,
  ticketSpec,
  ticketWrites,
  waitTicketsConverged,
  type BookingProcess,
} from './lib/flighttickets.js';
import { startFaultCluster, type FaultCluster } from './lib/cluster.js';
import { compactEtcd, etcdRevision } from './lib/etcd.js';
import {
  createMessages,
  describeViolations,
  hotLoopReport,
  hotLoopViolations,
  names,
  readNamespace,
  waitConverged,
} from './lib/invariants.js';
import { metricValue, operatorProcess, type OperatorProcess } from './lib/operator.js';

const LONG = process.env.FAULT_LONG === '1';
/**
 * FAULT_WATCH_CACHE=off: the API server runs without any watch cache (--watch-cache=false), so the child
 * watches get 410 and relist too, and the relists finish in no fixed order. kwok then deletes
 * re-created same-name Pods far more often (see above): slower, so not the default.
 */
const NO_WATCH_CACHE = process.env.FAULT_WATCH_CACHE === 'off';
/** The custom resources served from etcd, so that the compaction expires the operator's resourceVersion of each. */
const UNCACHED = ['messages.myorg.dev', 'applications.shclub.github.io', 'flighttickets.flights.com'];
/** Messages converged before the gap. */
const BASE = LONG ? 300 : 100;
/** Changes made to Messages during the gap. */
const CREATED = 50;
const DELETED = 10;
const RECREATED = 5;
const EDITED = 10;
/** Applications (one replica each) converged before the gap, and the changes made to them during it. */
const BASE_APPS = LONG ? 40 : 10;
const APPS_CREATED = LONG ? 10 : 4;
const APPS_DELETED = LONG ? 10 : 4;
const APPS_RECREATED = LONG ? 5 : 2;
const APPS_EDITED = LONG ? 10 : 3;
/** FlightTickets booked before the gap, and the changes made to them during it. */
const BASE_TICKETS = LONG ? 40 : 10;
const TICKETS_CREATED = LONG ? 10 : 4;
/** Deleted in the gap: held by the finalizer until the operator has cancelled the booking. */
const TICKETS_DELETED = LONG ? 10 : 4;
/** Of the deleted tickets, re-created under the same name (another spec) as soon as the name is free. */
const TICKETS_RECREATED = LONG ? 5 : 2;
/** Tickets the operator never sees: created, deleted and re-created (another spec) within the gap. */
const TICKETS_GHOST = LONG ? 5 : 2;
/** Edited in the gap: the first half get the reverse route (a new booking, the old one cancelled), the rest another seat count. */
const TICKETS_EDITED = LONG ? 10 : 4;
/** Writes to one Message and its Pod in the gap's aftermath: an edit costs delete Pod, status, apply Pod, status Pending, status Running. */
// Status writes are conditional on the version read, so one computed before the relist caught up is refused (409)
// and sent again: the bound leaves room for that (a run measured 7 for one edited Message).
const MAX_WRITES_PER_OBJECT = 8;
/**
 * Writes after SIGCONT to one Application and its Deployment and Service (they share its name). A
 * new or re-created one costs 5 (apply the Deployment, apply the Service, status 0/0, 0/1, 1/1 as the
 * Deployment's status changes). An edit of image and port costs the two applies and one status
 * write per Application status the rolling update passes through (its generation not yet observed,
 * a surge Pod not ready, both ready, the old one gone: up to 5 were measured, 7 writes in all). A
 * status computed from a cache that had not yet seen the operator's previous status write is
 * refused (409) and sent again after the key's backoff, by which time the watch has almost always
 * delivered that write: one per status write is allowed (the long form measured 3 for one
 * Application of 50, 10 writes in all).
 */
const MAX_APP_WRITES = 2 + 5 + 5;
/**
 * An untouched Application costs no write: the relist reconciles it against children and a
 * Deployment status that did not change in the gap.
 */
const UNTOUCHED_APP_WRITES = 0;
/**
 * Writes after SIGCONT to the FlightTickets of one name, by what happened to it in the gap: a new
 * ticket costs 3 (the finalizer, status Pending, status Booked), an edited one 2 (Pending, Booked),
 * a deleted one 2 (status Cancelling, the finalizer removed), a re-created name both (2 + 3), an
 * untouched one none. Each status write computed from a version the relist had not yet caught up
 * with may be refused (409) and sent again once.
 */
const TICKET_WRITES = { created: 3, edited: 2, deleted: 2, recreated: 5, untouched: 0 } as const;
const TICKET_409_SLACK = 1;

/** The operator's creations (answered 201) of `resource` in `namespace` since `since`, by object name. */
function creations(events: AuditEvent[], resource: string, namespace: string, since: Date): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of events) {
    if (e.stage !== 'ResponseComplete' || e.userAgent !== OPERATOR_USER_AGENT || e.responseStatus?.code !== 201) continue;
    if (e.objectRef?.resource !== resource || e.objectRef.namespace !== namespace || e.verb === 'delete') continue;
    if (Date.parse(e.requestReceivedTimestamp) < since.getTime()) continue;
    out.set(e.objectRef.name ?? '', (out.get(e.objectRef.name ?? '') ?? 0) + 1);
  }
  return out;
}

/** The operator's writes (requests received) to `resource` objects in `namespace` since `since`, by object name. */
function writesTo(events: AuditEvent[], resource: string, namespace: string, since: Date): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of events) {
    if (e.stage !== 'RequestReceived' || e.userAgent !== OPERATOR_USER_AGENT || !['create', 'update', 'patch', 'delete'].includes(e.verb))
      continue;
    if (e.objectRef?.resource !== resource || e.objectRef.namespace !== namespace) continue;
    if (Date.parse(e.requestReceivedTimestamp) < since.getTime()) continue;
    out.set(e.objectRef.name ?? '', (out.get(e.objectRef.name ?? '') ?? 0) + 1);
  }
  return out;
}

/** The operator's writes to the objects named `name` in `namespace` since `since`, in order, as `verb resource[/sub] code`. */
function writeSequence(events: AuditEvent[], namespace: string, name: string, since: Date): string {
  const code = new Map(events.filter((e) => e.stage === 'ResponseComplete').map((e) => [e.auditID, e.responseStatus?.code]));
  return events
    .filter(
      (e) =>
        e.stage === 'RequestReceived' &&
        e.userAgent === OPERATOR_USER_AGENT &&
        ['create', 'update', 'patch', 'delete'].includes(e.verb) &&
        e.objectRef?.namespace === namespace &&
        e.objectRef.name === name &&
        Date.parse(e.requestReceivedTimestamp) >= since.getTime(),
    )
    .map(
      (e) =>
        `${e.verb} ${e.objectRef!.resource}${e.objectRef!.subresource ? `/${e.objectRef!.subresource}` : ''} ${code.get(e.auditID) ?? '?'}`,
    )
    .join(', ');
}

/** Waits until the FlightTicket `name` is gone from the API server (its finalizer removed), then creates it again with `spec`; resolves the new uid. */
async function recreateTicketWhenFree(
  client: FaultCluster['client'],
  namespace: string,
  name: string,
  spec: FlightTicketSpec,
  timeoutMs: number,
): Promise<string> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const gone = await client.get<FlightTicket>(FlightTicketResource, namespace, name).then(
      () => false,
      (err: unknown) => {
        if (err instanceof ApiError && err.status === 404) return true;
        throw err;
      },
    );
    if (gone) return (await createTickets(client, namespace, [name], () => spec)).get(name)!;
    assert.ok(
      performance.now() < until,
      `FlightTicket ${namespace}/${name}, deleted in the gap, still exists ${timeoutMs} ms after SIGCONT`,
    );
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a watch gap past etcd compaction (410 Gone, relist) for Messages, Applications and FlightTickets', () => {
  let cluster: FaultCluster;
  let proxy: FaultProxy;
  let op: OperatorProcess;
  let booking: BookingProcess;
  const ns = 'fault-compaction';
  const appNs = 'fault-compaction-apps';
  const ticketNs = 'fault-compaction-tickets';

  before(async () => {
    cluster = await startFaultCluster({
      prefix: 'fault-compaction',
      apiserverArgs: NO_WATCH_CACHE ? ['--watch-cache=false'] : [`--watch-cache-sizes=${UNCACHED.map((r) => `${r}#0`).join(',')}`],
    });
    await cluster.namespace(ns);
    await cluster.namespace(appNs);
    await cluster.namespace(ticketNs);
    await installFlightTickets(cluster, ticketNs);
    booking = bookingProcess({ dir: cluster.dir, faults: {} });
    await booking.start();
    proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: cluster.state.ports.apiserver } });
    const kubeconfig = await writeProxyKubeconfig(cluster.kubeconfig, proxy.url, join(cluster.dir, 'config', 'operator.kubeconfig'));
    op = operatorProcess({
      kubeconfig,
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
    await proxy?.close();
    await cluster?.destroy();
  });

  test('every change made in the gap is handled once: creates, deletes, re-creates under the same name, edits', async (t) => {
    const client = cluster.client;
    const expected = new Map(names('m', BASE).map((n) => [n, `before the gap: ${n}`]));
    const apps = appSpecs('app', BASE_APPS);
    const tickets = new Map(names('t', BASE_TICKETS).map((n, i) => [n, ticketSpec(i)]));
    const t0 = performance.now();
    const [, , baseTicketUids] = await Promise.all([
      createMessages(client, ns, [...expected.keys()], (n) => expected.get(n)!),
      createApplications(client, appNs, apps),
      createTickets(client, ticketNs, [...tickets.keys()], (n) => tickets.get(n)!),
    ]);
    const [{ ms: baseMs }, { ms: baseAppsMs }, baseTickets] = await Promise.all([
      waitConverged(client, ns, { since: t0, timeoutMs: 90_000, expected }),
      waitApplicationsConverged(client, appNs, { since: t0, timeoutMs: 90_000, expected: apps }),
      waitTicketsConverged(client, ticketNs, booking, { live: tickets, deletedUids: new Set() }, { since: t0, timeoutMs: 90_000 }),
    ]);
    assert.deepEqual(baseTickets.violations, [], `before the gap: ${describeViolations(baseTickets.violations)}`);
    const before = await readNamespace(client, ns);
    const oldUid = new Map(before.messages.map((m) => [m.metadata.name!, m.metadata.uid!]));
    const appsBefore = await readApplications(client, appNs);
    const oldAppUid = new Map(appsBefore.applications.map((a) => [a.metadata.name!, a.metadata.uid!]));
    const bookingIdBefore = new Map(baseTickets.tickets.map((x) => [x.metadata.name!, x.status?.bookingId]));

    // The gap: the operator is frozen and cut off, the world changes, etcd forgets.
    const gapFrom = new Date();
    const revBefore = await etcdRevision(cluster.etcdUrl);
    const goneBefore = metricValue(await op.metrics(), 'bosun_watch_restarts_total', { reason: 'gone' });
    await op.signal('SIGSTOP');
    const cutConnections = proxy.connections();
    proxy.cut();

    // Messages.
    const created = names('n', CREATED);
    for (const n of created) expected.set(n, `made in the gap: ${n}`);
    const deleted = names('m', DELETED);
    const deletedUids = new Set(deleted.map((n) => oldUid.get(n)!));
    for (const n of deleted) expected.delete(n);
    // Applications: new ones, deleted ones (their children garbage-collected), some of those re-created, edits of image and port.
    const changedApp: AppSpec = { image: 'nginx:1.28', replicas: 1, port: 9090 };
    const appsCreated = appSpecs('apn', APPS_CREATED);
    for (const [n, spec] of appsCreated) apps.set(n, spec);
    const appsDeleted = names('app', APPS_DELETED);
    const deletedAppUids = new Set(appsDeleted.map((n) => oldAppUid.get(n)!));
    for (const n of appsDeleted) apps.delete(n);
    const appsEdited = names('app', APPS_EDITED, APPS_DELETED);
    // FlightTickets: new ones, deleted ones (Terminating until the operator cancels), edits, and ghosts.
    const ticketsCreated = new Map(names('tn', TICKETS_CREATED).map((n, i) => [n, ticketSpec(i + 3)]));
    for (const [n, spec] of ticketsCreated) tickets.set(n, spec);
    const ticketsDeleted = names('t', TICKETS_DELETED);
    const deletedTicketUids = new Set(ticketsDeleted.map((n) => baseTicketUids.get(n)!));
    for (const n of ticketsDeleted) tickets.delete(n);
    const ticketsEdited = names('t', TICKETS_EDITED, TICKETS_DELETED);
    const rerouted = new Set(ticketsEdited.slice(0, Math.ceil(TICKETS_EDITED / 2)));
    for (const n of ticketsEdited) {
      const s = tickets.get(n)!;
      tickets.set(n, rerouted.has(n) ? { ...s, from: s.to, to: s.from } : { ...s, number: (s.number % 10) + 1 });
    }
    const ghosts = names('tg', TICKETS_GHOST);

    await Promise.all([
      createMessages(client, ns, created, (n) => expected.get(n)!),
      Promise.all(deleted.map((n) => client.delete(MessageResource, ns, n, { propagationPolicy: 'Background' }))),
      createApplications(client, appNs, appsCreated),
      Promise.all(appsDeleted.map((n) => client.delete(ApplicationResource, appNs, n, { propagationPolicy: 'Background' }))),
      Promise.all(appsEdited.map((n) => client.patch<Application>(ApplicationResource, appNs, n, { spec: { ...changedApp } }))),
      createTickets(client, ticketNs, [...ticketsCreated.keys()], (n) => ticketsCreated.get(n)!),
      Promise.all(ticketsDeleted.map((n) => client.delete(FlightTicketResource, ticketNs, n))),
      Promise.all(ticketsEdited.map((n) => client.patch<FlightTicket>(FlightTicketResource, ticketNs, n, { spec: tickets.get(n) }))),
    ]);
    for (const n of appsEdited) apps.set(n, { ...changedApp });
    // A ghost is created and deleted while the operator sleeps: no finalizer yet, so it goes at once, and its name is taken again.
    const ghostOldUids = await createTickets(client, ticketNs, ghosts, (n) => ticketSpec(ghosts.indexOf(n)));
    await Promise.all(ghosts.map((n) => client.delete(FlightTicketResource, ticketNs, n)));
    await eventually(
      'the ghost tickets gone',
      async () =>
        (await readTickets(client, ticketNs)).some((x) => ghostOldUids.get(x.metadata.name!) === x.metadata.uid) ? undefined : true,
      30_000,
      100,
    );
    for (const [i, n] of ghosts.entries()) tickets.set(n, ticketSpec(i + 5));
    const ghostNewUids = await createTickets(client, ticketNs, ghosts, (n) => tickets.get(n)!);

    // The deleted Messages' Pods and Applications' children are garbage-collected while the operator sleeps, so a
    // re-created one must get new children.
    await eventually(
      'the deleted Messages and Applications and their children gone',
      async () => {
        const [s, a] = await Promise.all([readNamespace(client, ns), readApplications(client, appNs)]);
        const left =
          s.messages.filter((m) => deletedUids.has(m.metadata.uid!)).length +
          s.pods.filter((p) => p.metadata.ownerReferences?.some((r) => deletedUids.has(r.uid))).length +
          a.applications.filter((x) => deletedAppUids.has(x.metadata.uid!)).length +
          [...a.deployments, ...a.services].filter((x) => x.metadata.ownerReferences?.some((r) => deletedAppUids.has(r.uid))).length;
        return left === 0 ? true : undefined;
      },
      60_000,
      250,
    );

    const recreated = deleted.slice(0, RECREATED);
    for (const n of recreated) expected.set(n, `re-created in the gap: ${n}`);
    const appsRecreated = new Map(appsDeleted.slice(0, APPS_RECREATED).map((n) => [n, { ...changedApp }]));
    for (const [n, spec] of appsRecreated) apps.set(n, spec);
    const [newUid, newAppUid] = await Promise.all([
      createMessages(client, ns, recreated, (n) => expected.get(n)!),
      createApplications(client, appNs, appsRecreated),
    ]);

    const edited = names('m', EDITED, 50);
    for (const n of edited) expected.set(n, `edited in the gap: ${n}`);
    await Promise.all(edited.map((n) => client.patch<Message>(MessageResource, ns, n, { spec: { text: expected.get(n) } })));

    const compactedAt = await compactEtcd(cluster.etcdUrl);
    const gapMs = Date.now() - gapFrom.getTime();

    // Resume: the operator finds its connections dead, reconnects from revisions nobody has any more.
    const resumed = new Date();
    const r0 = performance.now();
    await op.signal('SIGCONT');
    // The tickets deleted in the gap come back under their names, with another spec, once their finalizer lets them go.
    const ticketsRecreated = new Map(ticketsDeleted.slice(0, TICKETS_RECREATED).map((n, i) => [n, ticketSpec(i + 7)]));
    const recreating = Promise.all(
      [...ticketsRecreated].map(async ([n, spec]) => [n, await recreateTicketWhenFree(client, ticketNs, n, spec, 90_000)] as const),
    );
    for (const [n, spec] of ticketsRecreated) tickets.set(n, spec);
    const timeoutMs = LONG ? 180_000 : 90_000;
    const maxBookings = (uid: string) => ([...rerouted].some((n) => baseTicketUids.get(n) === uid) ? 2 : 1);
    const allDeletedTicketUids = new Set([...deletedTicketUids, ...ghostOldUids.values()]);
    const [{ ms: convergedMs }, { ms: appsMs }, recreatedTicketUids] = await Promise.all([
      waitConverged(client, ns, { since: r0, timeoutMs, expected }),
      waitApplicationsConverged(client, appNs, { since: r0, timeoutMs, expected: apps }),
      recreating.then((pairs) => new Map(pairs)),
    ]);
    const ticketEnd = await waitTicketsConverged(
      client,
      ticketNs,
      booking,
      { live: tickets, deletedUids: allDeletedTicketUids, maxBookings },
      { since: r0, timeoutMs },
    );
    const report = await hotLoopReport(cluster.auditLog, { since: resumed, namespace: ns });
    const events = await readAudit(cluster.auditLog);
    const afterResume = countRequests(events, { userAgent: OPERATOR_USER_AGENT, since: resumed, namespace: ns });
    const firstList = (resource: string) =>
      events
        .filter(
          (e) =>
            e.stage === 'RequestReceived' &&
            e.userAgent === OPERATOR_USER_AGENT &&
            e.verb === 'list' &&
            e.objectRef?.resource === resource &&
            Date.parse(e.requestReceivedTimestamp) >= resumed.getTime(),
        )
        .map((e) => Date.parse(e.requestReceivedTimestamp) - resumed.getTime())
        .sort((a, b) => a - b)[0];
    const metrics = await op.metrics();
    const gone = (resource: RegExp) => metricValue(metrics, 'bosun_watch_restarts_total', { reason: 'gone', resource });
    const goneByKind = {
      messages: gone(/messages|Message/),
      applications: gone(/applications|Application/),
      flighttickets: gone(/flighttickets|FlightTicket/),
      pods: gone(/pods|Pod/),
      deployments: gone(/deployments|Deployment/),
      services: gone(/services|Service/),
    };
    const goneAll = metricValue(metrics, 'bosun_watch_restarts_total', { reason: 'gone' });
    const appWrites = applicationWrites(events, { since: resumed, namespace: appNs });
    const maxApp = maxApplicationWrites(appWrites);
    const tw = ticketWrites(events, { since: resumed, namespace: ticketNs });
    const bookingCalls = (await booking.requests(resumed.getTime())).filter((r) => r.method !== 'GET');

    t.diagnostic(
      `before the gap: ${BASE} Messages converged in ${baseMs.toFixed(0)} ms, ${BASE_APPS} Applications in ${baseAppsMs.toFixed(0)} ms, ${BASE_TICKETS} FlightTickets booked in ${baseTickets.ms.toFixed(0)} ms`,
    );
    t.diagnostic(
      `gap: operator SIGSTOPped ${gapMs} ms; Messages ${CREATED} created, ${DELETED} deleted, ${RECREATED} of them re-created, ${EDITED} edited; Applications ${APPS_CREATED} created, ${APPS_DELETED} deleted, ${APPS_RECREATED} of them re-created, ${APPS_EDITED} edited; FlightTickets ${TICKETS_CREATED} created, ${TICKETS_DELETED} deleted (${TICKETS_RECREATED} of them re-created once free), ${TICKETS_GHOST} created, deleted and re-created, ${TICKETS_EDITED} edited (${rerouted.size} rerouted); etcd compacted at revision ${compactedAt} (the operator had seen at most ${revBefore}); ${cutConnections} connections of the operator cut`,
    );
    const fmt = (ms: number | undefined) => (ms === undefined ? 'never' : `${ms} ms`);
    t.diagnostic(
      `time to notice: first list after SIGCONT of messages ${fmt(firstList('messages'))}, applications ${fmt(firstList('applications'))}, flighttickets ${fmt(firstList('flighttickets'))}; relists after 410: ${JSON.stringify(goneByKind)}`,
    );
    t.diagnostic(
      `time to converge after SIGCONT: Messages ${convergedMs.toFixed(0)} ms, Applications ${appsMs.toFixed(0)} ms, FlightTickets ${ticketEnd.ms.toFixed(0)} ms`,
    );
    t.diagnostic(
      `operator requests after SIGCONT (Messages' namespace): ${describeCounts(afterResume)}; in the 3 s after convergence (every namespace): ${report.quiet.total} requests, ${report.quiet.writes} writes`,
    );
    t.diagnostic(
      `Applications: ${[...appWrites.values()].reduce((a, b) => a + b, 0)} writes to them and their children after SIGCONT, at most ${maxApp.writes} (${maxApp.name || 'none'}: ${writeSequence(events, appNs, maxApp.name, resumed)})`,
    );
    t.diagnostic(
      `FlightTickets: ${ticketEnd.bookings.length} bookings in the booking database (${ticketEnd.bookings.filter((b) => b.state === 'active').length} active for ${tickets.size} live tickets); ${bookingCalls.length} booking-service writes after SIGCONT; ${tw.total} ticket writes, at most ${tw.max.writes} (${tw.max.name || 'none'}: ${writeSequence(events, ticketNs, tw.max.name, resumed)})`,
    );

    assert.deepEqual(ticketEnd.violations, [], describeViolations(ticketEnd.violations));
    // Every watch of a custom resource relisted after 410.
    assert.equal(goneBefore, 0, 'no relist before the gap');
    assert.equal(
      goneAll,
      Object.values(goneByKind).reduce((a, b) => a + b, 0),
      `every relist is of a kind the operators watch: ${metrics
        .split('\n')
        .filter((l) => l.startsWith('bosun_watch_restarts_total'))
        .join('; ')}`,
    );
    for (const kind of ['messages', 'applications', 'flighttickets'] as const)
      assert.ok(
        goneByKind[kind] >= 1,
        `the ${kind} watch relisted after 410 Gone (bosun_watch_restarts_total{reason="gone"} = ${goneByKind[kind]})`,
      );
    if (NO_WATCH_CACHE)
      assert.ok(goneByKind.pods >= 1, `without the watch cache the Pod watch relisted after 410 Gone too (${goneByKind.pods})`);

    // A re-created Message is a new object: its Pod is new and owned by the new uid.
    const end = await readNamespace(client, ns);
    for (const n of recreated) {
      const pod = end.pods.find((p) => p.metadata.name === `${n}-pod`);
      assert.ok(pod, `re-created Message ${n} has its Pod`);
      assert.notEqual(newUid.get(n), oldUid.get(n), `${n} got a new uid`);
      assert.equal(
        pod.metadata.ownerReferences?.find((r) => r.controller)?.uid,
        newUid.get(n),
        `the Pod of re-created ${n} is owned by the new Message`,
      );
    }

    // Nothing done twice: one Pod creation per Message that needed a Pod, and none for the others.
    // kwok (the fake kubelet) deletes by name, without a uid precondition, and sometimes deletes a
    // re-created same-name Pod as well; each such deletion forces one more creation, which is right.
    // So every creation after a name's first must follow a deletion by someone else since the last one.
    const needed = new Set([...created, ...recreated, ...edited].map((n) => `${n}-pod`));
    const podCreations = podCreationTimes(events, { since: resumed, namespace: ns });
    const foreign = foreignPodDeletes(events, { since: resumed, namespace: ns });
    const unneeded = [...podCreations.keys()].filter((n) => !needed.has(n));
    // The Pod watch may resume before the Message watch has relisted after its 410: the Pod deletions the garbage
    // collector made in the gap then wake Messages deleted in the gap. The controller holds its reconciles while
    // the Message cache is known to be behind, so they find those Messages gone and make no Pod for them.
    assert.deepEqual(unneeded, [], 'no Pod created for a Message that needed none (deleted, or untouched in the gap)');
    const missing = [...needed].filter((n) => !podCreations.has(n));
    assert.deepEqual(missing, [], 'a Pod created for each new, re-created and edited Message');
    const unprovoked: string[] = [];
    let forced = 0;
    for (const [name, times] of podCreations) {
      for (let i = 1; i < times.length; i++) {
        if (deletedBetween(foreign.get(name) ?? [], times[i - 1]!, times[i]!)) forced++;
        else
          unprovoked.push(
            `${name} created again at ${new Date(times[i]!).toISOString()} with no deletion since ${new Date(times[i - 1]!).toISOString()}: the operator wrote the Message ${writeSequence(events, ns, name.replace(/-pod$/, ''), resumed)} and the Pod ${writeSequence(events, ns, name, resumed)}; deletions by others: ${JSON.stringify(foreign.get(name) ?? [])}`,
          );
      }
    }
    t.diagnostic(
      `Pod creations after SIGCONT: ${[...podCreations.values()].reduce((a, x) => a + x.length, 0)} for ${needed.size} Messages that needed one; ${forced} of them replaced a Pod kwok deleted by name after its creation`,
    );
    assert.deepEqual(unprovoked, [], 'no Pod created twice without a deletion in between');
    // One Pod deletion that took effect per edit. A reconcile re-run by the operator's own status
    // write while its Pod cache still replays the gap's backlog can send the delete again; the
    // uid precondition makes that a 404, never a second Pod deleted (counted, reported, allowed).
    const podDeletes = events.filter(
      (e) =>
        e.stage === 'ResponseComplete' &&
        e.userAgent === OPERATOR_USER_AGENT &&
        e.verb === 'delete' &&
        e.objectRef?.resource === 'pods' &&
        Date.parse(e.requestReceivedTimestamp) >= resumed.getTime(),
    );
    const effective = podDeletes.filter((e) => e.responseStatus?.code === 200 || e.responseStatus?.code === 202);
    const repeated = podDeletes.filter((e) => !effective.includes(e));
    t.diagnostic(
      `Pod deletions by the operator after SIGCONT: ${effective.length} took effect, ${repeated.length} repeated (answered ${[...new Set(repeated.map((e) => e.responseStatus?.code))].join(', ') || '-'})`,
    );
    assert.deepEqual(
      effective.map((e) => e.objectRef?.name).sort(),
      edited.map((n) => `${n}-pod`).sort(),
      'the operator deleted exactly the Pods of the edited Messages, once each',
    );
    assert.deepEqual(
      repeated.filter((e) => e.responseStatus?.code !== 404 && e.responseStatus?.code !== 409),
      [],
      'a repeated delete found the Pod gone (404) or replaced (409, uid precondition)',
    );
    // The Pods of untouched Messages were left alone.
    const untouched = [...expected.keys()].filter((n) => !needed.has(`${n}-pod`));
    const touched = untouched.filter(
      (n) =>
        (afterResume.podCreationsByName.get(`${n}-pod`) ?? 0) > 0 ||
        before.pods.find((p) => p.metadata.name === `${n}-pod`)?.metadata.uid !==
          end.pods.find((p) => p.metadata.name === `${n}-pod`)?.metadata.uid,
    );
    assert.deepEqual(touched, [], 'the Pods of Messages untouched in the gap are the same Pods');

    // Applications: a re-created one's children are new and owned by the new uid; children created exactly for
    // the new and re-created ones, once each, none for one deleted in the gap; an untouched one's children untouched.
    const appsEnd = await readApplications(client, appNs);
    for (const n of appsRecreated.keys()) {
      assert.notEqual(newAppUid.get(n), oldAppUid.get(n), `Application ${n} got a new uid`);
      for (const child of [...appsEnd.deployments, ...appsEnd.services].filter((c) => c.metadata.name === n))
        assert.equal(
          child.metadata.ownerReferences?.find((r) => r.controller)?.uid,
          newAppUid.get(n),
          `the ${child.kind ?? 'child'} of re-created Application ${n} is owned by the new Application`,
        );
    }
    const appsNeeded = [...appsCreated.keys(), ...appsRecreated.keys()].sort();
    for (const resource of ['deployments', 'services']) {
      const made = creations(events, resource, appNs, resumed);
      assert.deepEqual(
        [...made.keys()].sort(),
        appsNeeded,
        `${resource} created after SIGCONT exactly for the new and re-created Applications`,
      );
      assert.deepEqual(
        [...made].filter(([, n]) => n > 1),
        [],
        `each of those ${resource} created once`,
      );
    }
    const appsUntouched = [...apps.keys()].filter((n) => !appsNeeded.includes(n) && !appsEdited.includes(n));
    const childWrites = new Map<string, number>();
    for (const resource of ['deployments', 'services'])
      for (const [n, w] of writesTo(events, resource, appNs, resumed)) childWrites.set(n, (childWrites.get(n) ?? 0) + w);
    const uidOf = (list: { metadata: { name?: string; uid?: string } }[], n: string) =>
      list.find((x) => x.metadata.name === n)?.metadata.uid;
    assert.deepEqual(
      appsUntouched.filter(
        (n) =>
          (childWrites.get(n) ?? 0) > 0 ||
          uidOf(appsBefore.deployments, n) !== uidOf(appsEnd.deployments, n) ||
          uidOf(appsBefore.services, n) !== uidOf(appsEnd.services, n),
      ),
      [],
      'the Deployments and Services of Applications untouched in the gap are the same objects, not written',
    );
    t.diagnostic(
      `Applications after SIGCONT: writes to the untouched ones (status included): ${appsUntouched.map((n) => appWrites.get(n) ?? 0).join(', ')}`,
    );

    // FlightTickets: a re-created ticket is a new one (the old uid's booking cancelled, the new uid booked); a ghost's first
    // uid was never booked; an untouched ticket keeps its booking and was not written.
    for (const [n, uid] of recreatedTicketUids) {
      assert.notEqual(uid, baseTicketUids.get(n), `FlightTicket ${n} got a new uid`);
      const old = bookingsOf(ticketEnd.bookings, baseTicketUids.get(n)!);
      assert.deepEqual(
        old.map((b) => b.state),
        ['cancelled'],
        `the one booking of deleted FlightTicket ${n}'s old uid is cancelled`,
      );
      assert.equal(
        bookingsOf(ticketEnd.bookings, uid).filter((b) => b.state === 'active').length,
        1,
        `re-created FlightTicket ${n} is booked anew`,
      );
    }
    for (const [n, uid] of ghostOldUids) {
      assert.notEqual(uid, ghostNewUids.get(n), `ghost FlightTicket ${n} got a new uid`);
      assert.deepEqual(
        bookingsOf(ticketEnd.bookings, uid),
        [],
        `no booking for ghost FlightTicket ${n}'s first uid, which the operator never saw`,
      );
    }
    const ticketsUntouched = names('t', BASE_TICKETS).filter((n) => !ticketsDeleted.includes(n) && !ticketsEdited.includes(n));
    assert.deepEqual(
      ticketsUntouched.filter(
        (n) =>
          (tw.perTicket.get(n) ?? 0) > 0 ||
          ticketEnd.tickets.find((x) => x.metadata.name === n)?.status?.bookingId !== bookingIdBefore.get(n),
      ),
      [],
      'FlightTickets untouched in the gap keep their booking and are not written',
    );

    assert.equal(op.exitedUnexpectedly(), undefined, 'the operator process is alive');
    // The write bound per Message+Pod grows by one apply and two status writes per forced replacement.
    const over = [...afterResume.writesPerObject].filter(([name, w]) => {
      const pod = `${name}-pod`;
      return w > MAX_WRITES_PER_OBJECT + 3 * Math.max(0, (podCreations.get(pod)?.length ?? 0) - 1);
    });
    assert.deepEqual(over, [], `writes per Message+Pod within ${MAX_WRITES_PER_OBJECT} (+3 per forced replacement)`);
    const ticketBound = (n: string) =>
      (ticketsRecreated.has(n)
        ? TICKET_WRITES.recreated
        : ticketsDeleted.includes(n)
          ? TICKET_WRITES.deleted
          : ticketsCreated.has(n) || ghosts.includes(n)
            ? TICKET_WRITES.created
            : ticketsEdited.includes(n)
              ? TICKET_WRITES.edited
              : TICKET_WRITES.untouched) + TICKET_409_SLACK;
    const hot = [
      ...hotLoopViolations(report, Infinity),
      ...[...appWrites]
        .filter(([n, w]) => w > (appsUntouched.includes(n) ? UNTOUCHED_APP_WRITES : MAX_APP_WRITES))
        .map(([n, w]) => `${w} writes to Application ${n} and its children after SIGCONT, more than its bound`),
      ...[...tw.perTicket]
        .filter(([n, w]) => w > ticketBound(n))
        .map(([n, w]) => `${w} writes to FlightTicket ${n} after SIGCONT, more than the bound ${ticketBound(n)}`),
    ];
    assert.deepEqual(hot, [], describeViolations(hot));
  });
});
