// Fault scenario 3: the operators (one process of their own: message, application and flightticket)
// talk to the API server through a fault proxy, on a control plane of its own. A frozen connection
// (open at the TCP level, no bytes flowing: a hung load balancer or a dead NAT entry) must be noticed
// within client-go's 45 s, and a cut one at once; 500 ms of latency each way must slow convergence by
// the round trips on each kind's path and restart no watch; 5% of new connections dropped must cost
// only retries, each reconnect after the initial delay once the stream before it had been healthy.
// After each fault one Message, one Application and one FlightTicket (five of each with FAULT_LONG=1)
// are created straight at the API server (not through the proxy) and timed to Ready; at the end every
// object of the three kinds must have converged, with one Pod / one Deployment and Service / one
// active booking each and no hot loop.
// The booking service runs as a process of its own, without faults, reached directly (not proxied).
// Each kind lives in a namespace of its own: the Message invariants count every Pod of theirs.
// The operator runs with the client's default timings. FAULT_SEED=<n> replays the drops of another seed.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationResource, type Application } from '../../operators/application/resource.js';
import { mulberry32 } from '../../operators/flightticket/booking/faults.js';
import { FlightTicketResource, type FlightTicket, type FlightTicketSpec } from '../../operators/flightticket/resource.js';
import { MessageResource, type Message } from '../../operators/message/resource.js';
import type { KubeObject, ResourceType } from '../../packages/bosun/src/client/types.js';
import { startFaultProxy, writeProxyKubeconfig, type FaultProxy } from '../../packages/bosun/src/tooling/envtest/faultproxy.js';
import { isReady } from './helpers.js';
import {
  applicationWrites,
  applicationWriteViolations,
  createApplications,
  maxApplicationWrites,
  waitApplicationsConverged,
  type AppSpec,
  type ExpectedApps,
} from './lib/applications.js';
import { describeCounts, readAudit } from './lib/audit.js';
import { startFaultCluster, type FaultCluster } from './lib/cluster.js';
import {
  bookingProcess,
  createTickets,
  flightTicketEnv,
  installFlightTickets,
  isTicketBooked,
  ticketSpec,
  ticketWrites,
  waitTicketsConverged,
  type BookingProcess,
} from './lib/flighttickets.js';
import { createMessages, describeViolations, hotLoopReport, hotLoopViolations, waitConverged } from './lib/invariants.js';
import { operatorProcess, readOperatorLog, type LogLine, type OperatorProcess } from './lib/operator.js';

const LONG = process.env.FAULT_LONG === '1';
/**
 * Objects of each kind created after each fault (the slowest of them is timed): one in the short
 * form, so each time measures one object's path; five in the long form, so the reconnect and the
 * hold are measured under a queue of work (each kind's writes still go one round trip at a time
 * per object, in parallel across the controller's workers).
 */
const PER_FAULT = LONG ? 5 : 1;
/** client-go's dead-connection bound: HTTP/2 ReadIdleTimeout 30 s + PingTimeout 15 s. */
const DEAD_CONNECTION_BOUND_MS = 45_000;
/** A cut connection fails at once, so only the reconnect (0.8–1.2 s), the hold's 1 s and the normal work remain. */
const CUT_BOUND_MS = 5_000;
/** The latency of scenario 3c, added to every chunk in each direction (a 1 s round trip). */
const LATENCY_MS = 500;
/**
 * One-way trips through the proxy on each kind's path to Ready; the bound allows twice that, for a
 * write retried after a 409 from a stale cache. The control plane's own work (the Deployment
 * controller, the scheduler, kwok) and the booking calls do not cross the proxy: they are in the
 * normal convergence time the bound adds to.
 * - Message: its watch event, the Pod apply (a round trip), the Pod's ADDED event, the Pending status
 *   write (a round trip), the Pod's Running event, the Ready status write (a round trip): 3 + 2 × 3 = 9.
 * - Application: its watch event, the Deployment and the Service applies (two round trips), the first
 *   status write (a round trip), then twice a Deployment status event and the status write it brings
 *   (0/1, then 1/1 ready): 1 + 2 × 3 + 2 × (1 + 2) = 13.
 * - FlightTicket: its watch event, the finalizer write, the Pending status write, the API key
 *   Secret's read and the Booked status write (four round trips): 1 + 2 × 4 = 9.
 */
const LATENCY_TRIPS = { message: 9, application: 13, ticket: 9 } as const;
/** Long enough that the HTTP/2 connection's idle PING (25 s after the last byte read) is due in it. */
const LATENCY_WINDOW_MS = 40_000;
/**
 * Status writes per object, each of which may be refused once with 409 under latency (computed from a
 * cache that has not yet seen the previous one): a Message's two (Pending, then its Pod's phase), an
 * Application's three (0/0, 0/1, 1/1), a ticket's finalizer and two status writes.
 */
const STATUS_WRITES = { message: 2, application: 3, ticket: 3 } as const;
/** The drop rate of scenario 3d. */
const DROP_RATE = 0.05;
/**
 * The seed of 3d's drops. With 5% only about one dial in 20 is dropped and the operator dials once
 * per cut (one HTTP/2 connection), so the default seed is one whose 2nd and 7th draws drop; any
 * other seed replays its own sequence.
 */
const DROP_SEED = process.env.FAULT_SEED ? Number(process.env.FAULT_SEED) : 6;
/** Cuts of scenario 3d at most; it stops earlier once two dials were dropped. */
const DROP_ROUNDS = 8;
/**
 * The watcher's reconnect delays (packages/bosun/src/watch/watcher.ts): the initial 800 ms, jittered
 * up to 1.5 times; a stream that the server accepted and that stayed open 1 s (minHealthyStreamMs)
 * resets the backoff to it.
 */
const INITIAL_DELAY_MS = 800;
const INITIAL_DELAY_MAX_MS = INITIAL_DELAY_MS * 1.5;
const MIN_HEALTHY_STREAM_MS = 1_000;
/**
 * How long 3d waits after a round's objects are Ready before the next cut: every watch reconnected
 * before they were (each controller's reconciles are held until its caches are current), so after
 * twice minHealthyStreamMs each stream has been open long enough to count as healthy, whatever the load.
 */
const HEALTHY_PAUSE_MS = 2 * MIN_HEALTHY_STREAM_MS;
/**
 * Writes to one object and its children over the whole file (the audit log): each object is created
 * once, after one fault, and converges under it. Message + Pod: 3 without a fault (apply the Pod,
 * status Pending, status Running), each status write refused once with 409 under latency, and a
 * write cut by a fault sent once more: 6. Application + Deployment + Service: 5 without a fault, its
 * three status writes each refused once under latency, a write cut once more, and one correction of
 * a status computed from a stale cache: 10. FlightTicket: 3 without a fault (finalizer, Pending,
 * Booked), each refused once under latency, and a write cut once more: 7.
 */
const MAX_WRITES = { message: 6, application: 10, ticket: 7 } as const;

type Kind = 'message' | 'application' | 'ticket';
const KINDS: readonly Kind[] = ['message', 'application', 'ticket'];
/** The resources (as the operator logs them, plural before the first dot) each kind's controller watches. */
const WATCHED: Record<Kind, readonly string[]> = {
  message: ['messages', 'pods'],
  application: ['applications', 'deployments', 'services'],
  ticket: ['flighttickets'],
};

/** Time to Ready per kind, in ms; undefined when the bound passed first. */
type Times = Record<Kind, number | undefined>;

const fmt = (ms: number | undefined, bound: number) => (ms === undefined ? `> ${bound.toFixed(0)}` : ms.toFixed(0));

/** A Prometheus counter of `text` summed by the label `by` (for example watch restarts by reason). */
function counterBy(text: string, name: string, by: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const k = new RegExp(`[{,]${by}="([^"]*)"`).exec(line)?.[1] ?? '';
    out[k] = (out[k] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

/** What grew between two readings of `counterBy`. */
function grown(before: Record<string, number>, now: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(now)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

describe('the Message, Application and FlightTicket operators through a fault proxy', () => {
  let cluster: FaultCluster;
  let proxy: FaultProxy;
  let op: OperatorProcess;
  let booking: BookingProcess;
  let dropRandom: () => number = Math.random;
  const ns = 'fault-proxy';
  const appNs = 'fault-proxy-apps';
  const ticketNs = 'fault-proxy-tickets';
  const since = new Date();
  // Every object created, for the invariants at the end.
  const expected = new Map<string, string>();
  const expectedApps: ExpectedApps = new Map();
  const tickets = new Map<string, FlightTicketSpec>();
  const normal: Record<Kind, number> = { message: 0, application: 0, ticket: 0 };
  const APP_SPEC: AppSpec = { image: 'nginx:1.27', replicas: 1, port: 8080 };

  /** Polls one object straight at the API server until `ok`; the ms since `t0`, or undefined at `deadline`. */
  async function readyAt<T extends KubeObject>(
    type: ResourceType<T>,
    namespace: string,
    name: string,
    ok: (o: T) => boolean,
    t0: number,
    deadline: number,
  ): Promise<number | undefined> {
    for (;;) {
      const o = await cluster.client.get<T>(type, namespace, name).catch(() => undefined);
      if (o && ok(o)) return performance.now() - t0;
      if (performance.now() > deadline) return undefined;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Creates a Message, an Application and a FlightTicket named `name` straight at the API server and times each to Ready. */
  async function createAndTime(name: string, bounds: Record<Kind, number>): Promise<Times> {
    const batch = PER_FAULT === 1 ? [name] : Array.from({ length: PER_FAULT }, (_, j) => `${name}-${j}`);
    const specs = new Map(batch.map((n) => [n, ticketSpec(tickets.size + batch.indexOf(n))]));
    for (const n of batch) {
      expected.set(n, `fault suite: ${n}`);
      expectedApps.set(n, { ...APP_SPEC });
      tickets.set(n, specs.get(n)!);
    }
    // The slowest of the batch, or undefined when one missed its bound.
    const slowest = (xs: (number | undefined)[]) => (xs.some((x) => x === undefined) ? undefined : Math.max(...(xs as number[])));
    const t0 = performance.now();
    const [message, application, ticket] = await Promise.all([
      createMessages(cluster.client, ns, batch, (n) => expected.get(n)!).then(async () =>
        slowest(await Promise.all(batch.map((n) => readyAt<Message>(MessageResource, ns, n, isReady, t0, t0 + bounds.message)))),
      ),
      createApplications(cluster.client, appNs, new Map(batch.map((n) => [n, { ...APP_SPEC }]))).then(async () =>
        slowest(
          await Promise.all(
            batch.map((n) =>
              readyAt<Application>(
                ApplicationResource,
                appNs,
                n,
                (a) =>
                  a.status?.observedGeneration === a.metadata.generation &&
                  a.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
                t0,
                t0 + bounds.application,
              ),
            ),
          ),
        ),
      ),
      createTickets(cluster.client, ticketNs, batch, (n) => specs.get(n)!).then(async () =>
        slowest(
          await Promise.all(
            batch.map((n) => readyAt<FlightTicket>(FlightTicketResource, ticketNs, n, isTicketBooked, t0, t0 + bounds.ticket)),
          ),
        ),
      ),
    ]);
    return { message, application, ticket };
  }

  const describeTimes = (times: Times, bounds: Record<Kind, number>) =>
    KINDS.map((k) => `${k} ${fmt(times[k], bounds[k])} ms (bound ${bounds[k].toFixed(0)})`).join(', ');
  const assertWithin = (times: Times, bounds: Record<Kind, number>, what: string) => {
    for (const k of KINDS) assert.ok(times[k] !== undefined, `the ${k} ${what} was not Ready within ${bounds[k].toFixed(0)} ms`);
  };
  const boundsFrom = (extra: (k: Kind) => number): Record<Kind, number> =>
    Object.fromEntries(KINDS.map((k) => [k, normal[k] + extra(k)])) as Record<Kind, number>;

  /** The operator's log lines from index `from` on. */
  async function logsFrom(from: number): Promise<LogLine[]> {
    return (await readOperatorLog(op.logFile)).slice(from);
  }
  const logLength = async () => (await readOperatorLog(op.logFile)).length;
  const restartLines = (lines: LogLine[]) => lines.filter((l) => l.msg === 'watch restarting');

  before(async () => {
    cluster = await startFaultCluster({ prefix: 'fault-proxy' });
    await cluster.namespace(ns);
    await cluster.namespace(appNs);
    await cluster.namespace(ticketNs);
    await installFlightTickets(cluster, ticketNs);
    booking = bookingProcess({ dir: cluster.dir, faults: {} });
    await booking.start();
    proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: cluster.state.ports.apiserver }, random: () => dropRandom() });
    const kubeconfig = await writeProxyKubeconfig(cluster.kubeconfig, proxy.url, join(cluster.dir, 'proxy-kubeconfig'));
    op = operatorProcess({
      kubeconfig,
      namespace: [ns, appNs, ticketNs],
      operator: ['message', 'application', 'flightticket'],
      // Debug: 3c tells a 409 from a stale cache ('conflict; retrying', logged at debug) from any other failure.
      env: { ...flightTicketEnv(booking, ticketNs), BOSUN_LOG_LEVEL: 'debug' },
      logFile: join(cluster.dir, 'logs', 'operator.log'),
    });
    await op.start();
    // The first objects also wait for the first Deployment's Pod and booking; not a measure of normal work.
    const warm = await createAndTime('warm-up', { message: 60_000, application: 60_000, ticket: 60_000 });
    assertWithin(warm, { message: 60_000, application: 60_000, ticket: 60_000 }, 'warm-up');
  });

  after(async () => {
    // Cutting first lets a stuck operator see its connections fail and shut down.
    proxy?.cut();
    await op?.stop();
    await booking?.stop();
    await proxy?.close();
    await cluster?.destroy();
  });

  test('normal convergence through the proxy', async (t) => {
    const bounds = { message: 30_000, application: 30_000, ticket: 30_000 };
    const times = await createAndTime('normal', bounds);
    t.diagnostic(`normal convergence (create → Ready, read from the API server): ${describeTimes(times, bounds)}`);
    assertWithin(times, bounds, 'created with no fault');
    for (const k of KINDS) normal[k] = times[k]!;
  });

  test(`after every connection is cut, new objects are Ready within ${CUT_BOUND_MS} ms + their normal time`, async (t) => {
    assert.ok(proxy.connections() > 0, 'the operator holds connections through the proxy');
    const open = proxy.connections();
    proxy.cut();
    const bounds = boundsFrom(() => CUT_BOUND_MS);
    const times = await createAndTime('after-cut', bounds);
    t.diagnostic(`cut ${open} connections; Ready after ${describeTimes(times, bounds)}; proxy ${JSON.stringify(proxy.stats())}`);
    assertWithin(times, bounds, 'created after a cut');
  });

  test(
    'while every open connection stays frozen, new objects are Ready within 45 s + their normal time',
    { timeout: 180_000 },
    async (t) => {
      assert.ok(proxy.connections() > 0, 'the operator holds connections through the proxy');
      const logsBefore = await logLength();
      // Freeze only what is open now: new connections pass, as after a dead NAT entry, so the
      // operator recovers exactly when it notices the dead ones and dials again.
      proxy.freeze();
      const frozen = proxy.stats().frozen;
      const acceptedBefore = proxy.stats().accepted;
      const bounds = boundsFrom(() => DEAD_CONNECTION_BOUND_MS);
      const tFreeze = performance.now();
      const times = await createAndTime('during-freeze', bounds);
      const stats = proxy.stats();
      const restarts = restartLines(await logsFrom(logsBefore)).map(
        (l) => `${l.time} ${String(l.resource)} ${String(l.reason)}: ${String(l.err)}`,
      );
      t.diagnostic(
        `froze ${frozen} connections; Ready after ${describeTimes(times, bounds)} (${(performance.now() - tFreeze).toFixed(0)} ms since the freeze); ` +
          `proxy ${JSON.stringify(stats)}; ${restarts.length} watch restarts, first ${JSON.stringify(restarts.slice(0, 2))}`,
      );
      assert.ok(frozen > 0, 'the freeze caught open connections');
      assertWithin(times, bounds, "created while the operator's connections were frozen");
      assert.ok(stats.accepted > acceptedBefore, 'the operator dialled new connections through the proxy');
      // The frozen connections were given up by the operator; unfrozen, their held bytes and closes go through.
      proxy.unfreeze();
    },
  );

  test(
    `with ${LATENCY_MS} ms of latency each way, objects are Ready within their normal time + 2 × their one-way trips × ${LATENCY_MS} ms and no watch restarts`,
    { timeout: 240_000 },
    async (t) => {
      const metricsBefore = await op.metrics();
      const restartsBefore = counterBy(metricsBefore, 'bosun_watch_restarts_total', 'reason');
      const errorsBefore = counterBy(metricsBefore, 'controller_runtime_reconcile_errors_total', 'controller');
      const logsBefore = await logLength();
      const acceptedBefore = proxy.stats().accepted;
      proxy.setLatency(LATENCY_MS);
      const bounds = boundsFrom((k) => 2 * LATENCY_TRIPS[k] * LATENCY_MS);
      const rounds: Times[] = [];
      const tStart = performance.now();
      try {
        // One object of each kind at a time, spread over the window, so each measures one object's path.
        for (let i = 0; performance.now() - tStart < LATENCY_WINDOW_MS; i++) {
          const times = await createAndTime(`latency-${i}`, bounds);
          rounds.push(times);
          assertWithin(times, bounds, `latency-${i} (${LATENCY_MS} ms latency each way)`);
          const wait = Math.min(10_000, LATENCY_WINDOW_MS - (performance.now() - tStart));
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      } finally {
        proxy.setLatency(0);
      }
      const windowMs = performance.now() - tStart;
      const metrics = await op.metrics();
      const restarted = grown(restartsBefore, counterBy(metrics, 'bosun_watch_restarts_total', 'reason'));
      const errors = grown(errorsBefore, counterBy(metrics, 'controller_runtime_reconcile_errors_total', 'controller'));
      const lines = await logsFrom(logsBefore);
      const warnings = restartLines(lines);
      t.diagnostic(
        `latency ${LATENCY_MS} ms each way for ${windowMs.toFixed(0)} ms: ` +
          KINDS.map(
            (k) =>
              `${k} Ready after ${rounds.map((r) => fmt(r[k], bounds[k])).join(', ')} ms (normal ${normal[k].toFixed(0)}, bound ${bounds[k].toFixed(0)})`,
          ).join('; ') +
          `; watch restarts ${JSON.stringify(restarted)}; reconcile errors ${JSON.stringify(errors)}; new connections ${proxy.stats().accepted - acceptedBefore}`,
      );
      assert.ok(rounds.length >= 3, `${rounds.length} rounds of ${PER_FAULT} objects of each kind measured in the latency window`);
      // A server-side watch timeout (5-10 min) closes a stream cleanly ('closed'); anything else is latency taken for a fault.
      assert.deepEqual(
        Object.keys(restarted).filter((r) => r !== 'closed'),
        [],
        `no watch restarted for latency alone: ${JSON.stringify(restarted)} ${JSON.stringify(warnings)}`,
      );
      // A status write computed from a cache that has not yet seen the previous write is refused with 409 and
      // retried from the fresher cache, by design: at most once per status write. Any other failure is a fault.
      const failures = lines.filter(
        (l) => l.msg.startsWith('reconcile failed') || l.msg === 'conflict; retrying' || l.msg === 'reconcile will be retried',
      );
      const conflicts = failures.filter((l) => l.msg === 'conflict; retrying').length;
      const others = failures.filter((l) => l.msg !== 'conflict; retrying');
      const maxConflicts = rounds.length * PER_FAULT * KINDS.reduce((a, k) => a + STATUS_WRITES[k], 0);
      t.diagnostic(
        `reconcile failures: ${conflicts} conflicts on a stale cache (at most ${maxConflicts}), others ${JSON.stringify(others)}`,
      );
      assert.deepEqual(others, [], 'no reconcile failed but for a conflict on a stale cache');
      assert.equal(
        conflicts,
        Object.values(errors).reduce((a, b) => a + b, 0),
        'every reconcile error counted was a conflict',
      );
      assert.ok(
        conflicts <= maxConflicts,
        `${conflicts} conflicts for ${rounds.length * PER_FAULT} objects of each kind: at most one per status write`,
      );
      assert.equal(proxy.stats().accepted, acceptedBefore, 'no connection was given up and dialled again');
    },
  );

  test(
    `with ${DROP_RATE * 100}% of new connections reset at accept, objects created after each cut are Ready within ${CUT_BOUND_MS} ms + their normal time of their watches' last scheduled reconnect, and each reconnect after a healthy stream comes after the initial delay`,
    { timeout: 420_000 },
    async (t) => {
      dropRandom = mulberry32(DROP_SEED);
      const metricsBefore = await op.metrics();
      const restartsBefore = counterBy(metricsBefore, 'bosun_watch_restarts_total', 'reason');
      const errorsBefore = counterBy(metricsBefore, 'controller_runtime_reconcile_errors_total', 'controller');
      const retriesBefore = counterBy(metricsBefore, 'workqueue_retries_total', 'name');
      const before = proxy.stats();
      proxy.setDropRate(DROP_RATE);
      const rounds: string[] = [];
      const firstDelays: number[] = [];
      try {
        for (let i = 0; i < DROP_ROUNDS && proxy.stats().dropped - before.dropped < 2; i++) {
          const logsBefore = await logLength();
          const acceptedBefore = proxy.stats().accepted;
          const droppedBefore = proxy.stats().dropped;
          proxy.cut();
          const cutAt = Date.now();
          // Created at once; each is Ready only once its controller's watches are back (its reconciles are held till then).
          const times = await createAndTime(`drop-${i}`, { message: 120_000, application: 120_000, ticket: 120_000 });
          const restarts = restartLines(await logsFrom(logsBefore));
          // Every line is logged when a watch fails, with the delay before its next attempt: the cut's
          // failures first, then the failures of reconnects whose dial was dropped, each at least 800 ms later.
          const at = restarts.map((l) => Date.parse(l.time));
          const first = Math.min(...at);
          const cutFailures = restarts.filter((_, j) => at[j]! < first + INITIAL_DELAY_MS);
          firstDelays.push(...cutFailures.map((l) => Number(l.delayMs)));
          const due = (k: Kind) =>
            Math.max(
              0,
              ...restarts
                .map((l, j) => ({ l, at: at[j]! }))
                .filter(({ l }) => WATCHED[k].includes(String(l.resource).split('.')[0]!))
                .map(({ l, at: a }) => a + Number(l.delayMs) - cutAt),
            );
          const s = proxy.stats();
          const bounds = boundsFrom((k) => due(k) + CUT_BOUND_MS);
          rounds.push(
            `cut ${i}: ${s.accepted - acceptedBefore} dials, ${s.dropped - droppedBefore} dropped, ${restarts.length} watch failures ` +
              `(the cut's ${cutFailures.length} reconnect after ${Math.min(...cutFailures.map((l) => Number(l.delayMs)))}–${Math.max(...cutFailures.map((l) => Number(l.delayMs)))} ms); ` +
              KINDS.map((k) => `${k} Ready ${fmt(times[k], bounds[k])} ms, reconnect due ${due(k).toFixed(0)} ms`).join(', '),
          );
          for (const k of KINDS)
            assert.ok(
              times[k] !== undefined && times[k] <= bounds[k],
              `the ${k} drop-${i} Ready within ${CUT_BOUND_MS} ms + its normal ${normal[k].toFixed(0)} ms of its watches' reconnect due at ${due(k).toFixed(0)} ms: ${rounds.at(-1)}`,
            );
          await new Promise((r) => setTimeout(r, HEALTHY_PAUSE_MS));
        }
      } finally {
        proxy.setDropRate(0);
        dropRandom = Math.random;
      }
      const s = proxy.stats();
      const metrics = await op.metrics();
      t.diagnostic(
        `seed ${DROP_SEED}: ${s.accepted - before.accepted} dials, ${s.dropped - before.dropped} dropped; ${rounds.join('; ')}; ` +
          `watch restarts ${JSON.stringify(grown(restartsBefore, counterBy(metrics, 'bosun_watch_restarts_total', 'reason')))}; ` +
          `reconcile errors ${JSON.stringify(grown(errorsBefore, counterBy(metrics, 'controller_runtime_reconcile_errors_total', 'controller')))}; ` +
          `work queue retries ${JSON.stringify(grown(retriesBefore, counterBy(metrics, 'workqueue_retries_total', 'name')))}`,
      );
      assert.ok(
        s.dropped - before.dropped >= 1,
        `seed ${DROP_SEED} dropped at least one of the operator's dials (with none, the scenario showed nothing; choose another FAULT_SEED)`,
      );
      // Before every cut each stream had been accepted and open ≥ 1 s: its failure resets the backoff,
      // however many failures came before (the earlier cuts, the dropped dials, 3a and 3b).
      assert.deepEqual(
        firstDelays.filter((d) => d > INITIAL_DELAY_MAX_MS),
        [],
        `every watch cut after a healthy stream reconnects after the initial ${INITIAL_DELAY_MS}–${INITIAL_DELAY_MAX_MS} ms`,
      );
    },
  );

  test('every object converged: one Pod / one Deployment and Service / one active booking each, no orphan, no leaked booking, no hot loop, the operator alive', async (t) => {
    const t0 = performance.now();
    const timeoutMs = 60_000;
    const [{ state }, , ticketEnd] = await Promise.all([
      waitConverged(cluster.client, ns, { since: t0, timeoutMs, expected }),
      waitApplicationsConverged(cluster.client, appNs, { since: t0, timeoutMs, expected: expectedApps }),
      waitTicketsConverged(cluster.client, ticketNs, booking, { live: tickets, deletedUids: new Set() }, { since: t0, timeoutMs }),
    ]);
    const report = await hotLoopReport(cluster.auditLog, { since, namespace: ns });
    const events = await readAudit(cluster.auditLog);
    const appWrites = applicationWrites(events, { since, namespace: appNs });
    const maxApp = maxApplicationWrites(appWrites);
    const tw = ticketWrites(events, { since, namespace: ticketNs });
    t.diagnostic(
      `${expected.size} Messages (${state.pods.length} Pods), ${expectedApps.size} Applications, ${tickets.size} FlightTickets; ` +
        `${ticketEnd.bookings.length} bookings in the booking database (${ticketEnd.bookings.filter((b) => b.state === 'active').length} active); ` +
        `operator requests on Messages: ${describeCounts(report.counts)}; writes to one Application and its children at most ${maxApp.writes} (${maxApp.name || 'none'}); ` +
        `ticket writes ${tw.total}, at most ${tw.max.writes} (${tw.max.name || 'none'}); after convergence (3 s): ${report.quiet.total} requests, ${report.quiet.writes} writes`,
    );
    assert.equal(op.exitedUnexpectedly(), undefined, 'the operator process is alive');
    assert.ok(op.alive(), 'the operator process is alive');
    assert.deepEqual(ticketEnd.violations, [], describeViolations(ticketEnd.violations));
    const hot = [
      ...hotLoopViolations(report, MAX_WRITES.message),
      ...applicationWriteViolations(appWrites, MAX_WRITES.application),
      ...(tw.max.writes > MAX_WRITES.ticket
        ? [`${tw.max.writes} writes to FlightTicket ${tw.max.name}, more than the bound ${MAX_WRITES.ticket}`]
        : []),
    ];
    assert.deepEqual(hot, [], describeViolations(hot));
  });
});
