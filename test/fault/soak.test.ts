// Fault scenario 10, the soak (long form only): 60 minutes of churn (create, change, delete at 5/s)
// over Messages, Applications and FlightTickets, with a fault every 5 minutes in rotation: an
// operator process SIGKILLed (and started again), kube-apiserver SIGKILLed (and started again),
// every operator connection cut at the fault proxy. At the end every invariant holds and the RSS
// of the operator process in the last 5 minutes is within 10% of its RSS in the 5 minutes after the
// first 10 (medians of the 30 s samples of each window): no leak.
//
// Two operator processes run the three operators, each on namespaces of its own: the "steady" one
// is never killed, so its RSS is one process's over the whole run (a restarted process's RSS says
// nothing of a leak); the "killed" one takes the operator SIGKILLs. Both go through the proxy and
// live through the API server kills. FAULT_SOAK_MINUTES=<n> scales the run: a fault every n/12
// minutes (at least 1), the RSS baseline at n/6 minutes (at least 2).
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { KubeClient } from '../../packages/bosun/src/client/client.js';
import { isAlreadyExists, isNotFound } from '../../packages/bosun/src/client/errors.js';
import type { ResourceType } from '../../packages/bosun/src/client/types.js';
import { startFaultProxy, writeProxyKubeconfig, type FaultProxy } from '../../packages/bosun/src/tooling/envtest/faultproxy.js';
import { ApplicationResource } from '../../operators/application/resource.js';
import { FlightTicketResource, type FlightTicketSpec } from '../../operators/flightticket/resource.js';
import { MessageResource } from '../../operators/message/resource.js';
import { applicationObject, waitApplicationsConverged, type AppSpec, type ExpectedApps } from './lib/applications.js';
import { countRequests, describeCounts, OPERATOR_USER_AGENT, readAudit } from './lib/audit.js';
import { startFaultCluster, type FaultCluster } from './lib/cluster.js';
import { programCommand, startProgram, type ProgramCommand } from './lib/restart.js';
import { pidAlive } from '../../packages/bosun/src/tooling/cluster/binaries.js';
import {
  bookingProcess,
  BOOKING_SECRET,
  BOOKING_API_KEY,
  flightTicketEnv,
  installFlightTickets,
  isTicketBooked,
  readTickets,
  ticketSpec,
  ticketViolations,
  type BookingProcess,
} from './lib/flighttickets.js';
import { describeViolations, hotLoopReport, waitConverged } from './lib/invariants.js';
import { operatorProcess, windowMedian, type OperatorProcess } from './lib/operator.js';
import { Secret } from '../../packages/bosun/src/client/resources.js';
import { mulberry32 } from '../../operators/flightticket/booking/faults.js';

const LONG = process.env.FAULT_LONG === '1';
const MINUTES = process.env.FAULT_SOAK_MINUTES ? Number(process.env.FAULT_SOAK_MINUTES) : LONG ? 60 : 0;
const SKIP =
  MINUTES > 0
    ? false
    : 'scenario 10 (the soak) runs for 60 minutes: long form only (FAULT_LONG=1, make test-fault), or FAULT_SOAK_MINUTES=<n> for a shorter run';
/** The run's length in minutes, also when skipped (for the title). */
const RUN_MINUTES = MINUTES || 60;
const RUN_MS = RUN_MINUTES * 60_000;
/** A fault every 5 minutes of 60. */
const FAULT_EVERY_MS = Math.max(1, RUN_MINUTES / 12) * 60_000;
/** The RSS the end is compared with: after the first 10 minutes of 60, once the heap has grown to its working size. */
const BASELINE_MS = Math.max(2, RUN_MINUTES / 6) * 60_000;
/**
 * The RSS of a window is the median of its 30 s samples: one sample swings ±10% within a minute as the GC runs (a
 * 60-minute run went 130.7 → 114.0 MiB in 30 s), so a bound of 10% on single samples passes or fails by chance. A
 * window is one fault period, so the baseline's and the end's each hold the same mix of calm and recovery.
 */
const WINDOW_MS = FAULT_EVERY_MS;
/** The leak bound: RSS at the end at most 10% above the baseline (a leak grows; a smaller RSS at the end is the GC returning memory, reported). */
const RSS_BOUND = 0.1;
const OPS_PER_SECOND = 5;
/** Ops in flight at most; a tick that finds this many is counted late, not queued (the rate is the test's, not the cluster's). */
const MAX_IN_FLIGHT = 16;
/** Live objects per lane the churn keeps around: creations below half of it, deletions above one and a half times. */
const TARGET = { message: 60, application: 10, ticket: 10 } as const;
/** How long the end state may take to converge after the churn stops: the last fault's retries plus garbage collection. */
const CONVERGE_MS = 300_000;

type Kind = keyof typeof TARGET;
type Action = 'create' | 'change' | 'delete';

/** One operator process and the objects of its namespaces, as the churn last wrote them. */
interface Lane {
  name: 'steady' | 'killed';
  op: OperatorProcess;
  ns: Record<Kind, string>;
  messages: Map<string, string>;
  apps: ExpectedApps;
  tickets: Map<string, FlightTicketSpec>;
  ticketUids: Map<string, string>;
  deletedTicketUids: Set<string>;
  /** Objects an op is in flight on: never two ops on one object at once, so the expectation stays exact. */
  busy: Set<string>;
}

/**
 * Runs `fn` until it succeeds: the API server may be down for a fault, and an answer lost in a
 * fault must not leave the expectation unknown, so every op is one that can be sent again
 * (create answered AlreadyExists counts as done, delete answered 404 too, a merge patch is idempotent).
 */
async function untilDone<T>(what: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (performance.now() > until)
        throw new Error(`soak churn: ${what} still failing after ${timeoutMs} ms: ${(err as Error).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function createOrGet(
  client: KubeClient,
  type: ResourceType,
  obj: { metadata: { name?: string; namespace?: string } },
): Promise<string> {
  return untilDone(`create ${type.kind} ${obj.metadata.namespace}/${obj.metadata.name}`, async () => {
    try {
      return (await client.create(type, obj as never)).metadata.uid!;
    } catch (err) {
      // A create whose answer a fault lost: it took effect.
      if (isAlreadyExists(err)) return (await client.get(type, obj.metadata.namespace, obj.metadata.name!)).metadata.uid!;
      throw err;
    }
  });
}

async function deleteGone(client: KubeClient, type: ResourceType, namespace: string, name: string): Promise<void> {
  await untilDone(`delete ${type.kind} ${namespace}/${name}`, async () => {
    try {
      await client.delete(type, namespace, name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  });
}

describe(
  `the soak: ${RUN_MINUTES} minutes of churn at ${OPS_PER_SECOND}/s with a fault every ${FAULT_EVERY_MS / 60_000} minutes`,
  { skip: SKIP },
  () => {
    let cluster: FaultCluster;
    let proxy: FaultProxy;
    let booking: BookingProcess;
    const lanes: Lane[] = [];
    /**
     * kube-scheduler exits by design when it finds its cache corrupted ("Pod updated on a different
     * node than previously added to"), which an API server restart can cause; in a real cluster its
     * static Pod or unit is restarted. The fault cluster has no supervisor, so the scenario is one.
     */
    let scheduler: ProgramCommand;
    const schedulerRestarts: string[] = [];
    let watchdog: NodeJS.Timeout | undefined;

    before(async () => {
      cluster = await startFaultCluster({ prefix: 'fault-soak' });
      proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: cluster.state.ports.apiserver } });
      const kubeconfig = await writeProxyKubeconfig(cluster.kubeconfig, proxy.url, join(cluster.dir, 'config', 'operator.kubeconfig'));
      scheduler = await programCommand(cluster.dir, 'kube-scheduler');
      let restarting = false;
      watchdog = setInterval(() => {
        if (restarting || pidAlive(scheduler.pid)) return;
        restarting = true;
        void startProgram(cluster.dir, 'kube-scheduler', scheduler)
          .then((pid) => {
            schedulerRestarts.push(new Date().toISOString());
            scheduler = { ...scheduler, pid };
          })
          .finally(() => (restarting = false));
      }, 1_000);
      booking = bookingProcess({ dir: cluster.dir, faults: {} });
      await booking.start();
      for (const name of ['steady', 'killed'] as const) {
        const ns = { message: `soak-${name}-msg`, application: `soak-${name}-app`, ticket: `soak-${name}-tix` };
        for (const n of Object.values(ns)) await cluster.namespace(n);
        if (lanes.length === 0) await installFlightTickets(cluster, ns.ticket);
        else
          await cluster.client.create(Secret, {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name: BOOKING_SECRET, namespace: ns.ticket },
            stringData: { apiKey: BOOKING_API_KEY },
          });
        const op = operatorProcess({
          kubeconfig,
          namespace: Object.values(ns),
          operator: ['message', 'application', 'flightticket'],
          env: flightTicketEnv(booking, ns.ticket),
          logFile: join(cluster.dir, 'logs', `operator-${name}.log`),
        });
        await op.start();
        lanes.push({
          name,
          op,
          ns,
          messages: new Map(),
          apps: new Map(),
          tickets: new Map(),
          ticketUids: new Map(),
          deletedTicketUids: new Set(),
          busy: new Set(),
        });
      }
    });

    after(async () => {
      clearInterval(watchdog);
      for (const l of lanes) await l.op.stop();
      await booking?.stop();
      await proxy?.close();
      await cluster?.destroy();
    });

    test(
      'every invariant holds after the churn and the faults; the operator RSS at the end at most 10% above the baseline',
      { timeout: RUN_MS + 20 * 60_000 },
      async (t) => {
        const seed = process.env.FAULT_SEED ? Number(process.env.FAULT_SEED) : Math.floor(Math.random() * 2 ** 31);
        const random = mulberry32(seed);
        t.diagnostic(`seed ${seed} (FAULT_SEED=${seed} replays the churn's choices)`);
        const client = cluster.client;
        const since = new Date();
        const t0 = performance.now();
        let serial = 0;
        const done: Record<`${Kind} ${Action}`, number> = {} as never;
        let late = 0;
        let inFlight = 0;
        let failed: Error | undefined;
        let paused: Promise<void> | undefined;
        // Set when the scenario ends early (a fault that could not be made): the churn and the sampler stop too.
        let stopped = false;

        const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;
        const idle = (lane: Lane, names: Iterable<string>) => [...names].filter((n) => !lane.busy.has(n));

        async function churnOne(): Promise<void> {
          const lane = pick(lanes);
          const r = random();
          const kind: Kind = r < 0.6 ? 'message' : r < 0.8 ? 'application' : 'ticket';
          const live = kind === 'message' ? lane.messages : kind === 'application' ? lane.apps : lane.tickets;
          const free = idle(lane, live.keys());
          const target = TARGET[kind];
          let action: Action =
            live.size < target / 2 ? 'create' : live.size > target * 1.5 ? 'delete' : pick(['create', 'change', 'delete'] as Action[]);
          if (action !== 'create' && free.length === 0) action = 'create';
          const name = action === 'create' ? `${kind.slice(0, 3)}-${String(serial++).padStart(5, '0')}` : pick(free);
          const ns = lane.ns[kind];
          lane.busy.add(name);
          try {
            if (kind === 'message') {
              const text = `soak ${name} ${serial}`;
              if (action === 'create')
                await createOrGet(client, MessageResource, {
                  apiVersion: 'myorg.dev/v1',
                  kind: 'Message',
                  metadata: { name, namespace: ns },
                  spec: { text },
                } as never);
              if (action === 'change')
                await untilDone(`edit Message ${ns}/${name}`, () => client.patch(MessageResource, ns, name, { spec: { text } }));
              if (action === 'delete') await deleteGone(client, MessageResource, ns, name);
              if (action === 'delete') lane.messages.delete(name);
              else lane.messages.set(name, text);
            } else if (kind === 'application') {
              const spec: AppSpec = action === 'create' ? { image: 'nginx:1.27', replicas: 1, port: 8080 } : { ...lane.apps.get(name)! };
              if (action === 'change') {
                if (random() < 0.5) spec.replicas = (spec.replicas + 1) % 3;
                else spec.port = spec.port === 8080 ? 9090 : 8080;
              }
              if (action === 'create') await createOrGet(client, ApplicationResource, applicationObject(ns, name, spec));
              if (action === 'change')
                await untilDone(`change Application ${ns}/${name}`, () => client.patch(ApplicationResource, ns, name, { spec }));
              if (action === 'delete') await deleteGone(client, ApplicationResource, ns, name);
              if (action === 'delete') lane.apps.delete(name);
              else lane.apps.set(name, spec);
            } else {
              const spec: FlightTicketSpec =
                action === 'create' ? ticketSpec(serial) : { ...lane.tickets.get(name)!, number: 1 + Math.floor(random() * 10) };
              if (action === 'create')
                lane.ticketUids.set(
                  name,
                  await createOrGet(client, FlightTicketResource, {
                    apiVersion: 'flights.com/v1',
                    kind: 'FlightTicket',
                    metadata: { name, namespace: ns },
                    spec,
                  } as never),
                );
              if (action === 'change')
                await untilDone(`change FlightTicket ${ns}/${name}`, () => client.patch(FlightTicketResource, ns, name, { spec }));
              if (action === 'delete') {
                await deleteGone(client, FlightTicketResource, ns, name);
                lane.tickets.delete(name);
                lane.deletedTicketUids.add(lane.ticketUids.get(name)!);
              } else lane.tickets.set(name, spec);
            }
            done[`${kind} ${action}`] = (done[`${kind} ${action}`] ?? 0) + 1;
          } finally {
            lane.busy.delete(name);
          }
        }

        // The churn: one op every 1/OPS_PER_SECOND s, on its own clock.
        const churn = (async () => {
          for (let i = 0; performance.now() - t0 < RUN_MS && !failed && !stopped; i++) {
            const due = t0 + (i * 1000) / OPS_PER_SECOND;
            await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
            if (paused) await paused;
            if (inFlight >= MAX_IN_FLIGHT) {
              late++;
              continue;
            }
            inFlight++;
            void churnOne()
              .catch((err: Error) => (failed ??= err))
              .finally(() => inFlight--);
          }
          while (inFlight > 0) await new Promise((r) => setTimeout(r, 50));
        })();

        // The RSS of the steady process, every 30 s.
        const steady = lanes.find((l) => l.name === 'steady')!;
        const killed = lanes.find((l) => l.name === 'killed')!;
        const rss: { atMs: number; bytes: number }[] = [];
        const sampler = (async () => {
          for (let i = 1; performance.now() - t0 + 30_000 <= RUN_MS && !stopped; i++) {
            await new Promise((r) => setTimeout(r, Math.max(0, t0 + i * 30_000 - performance.now())));
            if (!steady.op.alive()) break;
            const at = performance.now() - t0;
            const bytes = await steady.op.rss();
            rss.push({ atMs: at, bytes });
          }
        })().catch((err: Error) => (failed ??= err));

        // The faults, in rotation.
        const faults: string[] = [];
        try {
          for (let i = 0; ; i++) {
            const due = t0 + (i + 1) * FAULT_EVERY_MS;
            if (due >= t0 + RUN_MS) break;
            await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
            if (failed) break;
            const at = ((performance.now() - t0) / 60_000).toFixed(1);
            const kind = i % 3;
            if (kind === 0) {
              await killed.op.signal('SIGKILL');
              const ms = await killed.op.start();
              faults.push(`+${at} min operator SIGKILLed, restarted and synced in ${ms.toFixed(0)} ms`);
            } else if (kind === 1) {
              // The churn waits while the API server is down: the fault is the operators', and the churn's own writes are retried anyway.
              let resume!: () => void;
              paused = new Promise((r) => (resume = r));
              const restart = await cluster.restartApiserver({ signal: 'SIGKILL', pauseMs: 2_000 });
              paused = undefined;
              resume();
              faults.push(`+${at} min kube-apiserver SIGKILLed, down ${restart.downMs.toFixed(0)} ms`);
            } else {
              const open = proxy.connections();
              proxy.cut('rst');
              faults.push(`+${at} min ${open} operator connections cut (RST) at the proxy`);
            }
          }
        } catch (err) {
          stopped = true;
          throw err;
        }
        await churn;
        await sampler;
        if (failed) throw failed;
        stopped = true;
        const churnEnd = performance.now();
        const rssAtChurnEnd = await steady.op.rss();

        // The tickets of both lanes are judged together: their bookings share one booking database.
        const liveTickets = new Map(lanes.flatMap((l) => [...l.tickets]));
        const deletedTickets = new Set(lanes.flatMap((l) => [...l.deletedTicketUids]));
        const ticketsConverged = async (): Promise<string> => {
          const until = performance.now() + CONVERGE_MS;
          for (;;) {
            const tickets = (await Promise.all(lanes.map((l) => readTickets(client, l.ns.ticket)))).flat();
            if ((tickets.length === liveTickets.size && tickets.every(isTicketBooked)) || performance.now() > until) {
              const bookings = await booking.bookings();
              const v = ticketViolations(tickets, bookings, { live: liveTickets, deletedUids: deletedTickets });
              if (v.length === 0)
                return `FlightTickets ${liveTickets.size} (${deletedTickets.size} deleted; ${bookings.length} bookings made, ${bookings.filter((b) => b.state === 'active').length} active) in ${(performance.now() - churnEnd).toFixed(0)} ms`;
              if (performance.now() > until)
                throw new Error(`FlightTickets not converged ${CONVERGE_MS} ms after the churn: ${describeViolations(v)}`);
            }
            await new Promise((r) => setTimeout(r, 1_000));
          }
        };
        const settled = await Promise.allSettled([
          ...lanes.flatMap((l) => [
            waitConverged(client, l.ns.message, { since: churnEnd, timeoutMs: CONVERGE_MS, expected: l.messages }).then(
              (r) => `${l.name} Messages ${l.messages.size} in ${r.ms.toFixed(0)} ms`,
            ),
            waitApplicationsConverged(client, l.ns.application, { since: churnEnd, timeoutMs: CONVERGE_MS, expected: l.apps }).then(
              (r) => `${l.name} Applications ${l.apps.size} in ${r.ms.toFixed(0)} ms`,
            ),
          ]),
          ticketsConverged(),
        ]);
        const converged = settled.map((r) => (r.status === 'fulfilled' ? r.value : `FAILED: ${(r.reason as Error).message}`));
        const rssEnd = await steady.op.rss();
        const baseline = windowMedian(rss, BASELINE_MS, BASELINE_MS + WINDOW_MS);
        const endWindow = windowMedian(rss, RUN_MS - WINDOW_MS, RUN_MS + 1);
        const firstAfterBaseline = rss.find((s) => s.atMs >= BASELINE_MS)?.bytes;
        const report = await hotLoopReport(cluster.auditLog, { since, namespace: steady.ns.message });
        const all = countRequests(await readAudit(cluster.auditLog), { userAgent: OPERATOR_USER_AGENT, since });
        const ops = Object.values(done).reduce((a, b) => a + b, 0);
        const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

        t.diagnostic(
          `churn: ${ops} ops in ${((churnEnd - t0) / 1000).toFixed(0)} s (${(ops / ((churnEnd - t0) / 1000)).toFixed(2)}/s; ${late} ticks skipped with ${MAX_IN_FLIGHT} ops in flight): ${JSON.stringify(done)}`,
        );
        t.diagnostic(`faults: ${faults.join('; ')}`);
        t.diagnostic(
          `kube-scheduler exited and was started again by the scenario: ${schedulerRestarts.length ? schedulerRestarts.join(', ') : 'never'}`,
        );
        t.diagnostic(`converged after the churn stopped: ${converged.join('; ')}`);
        t.diagnostic(
          `steady operator RSS: ${rss.map((s) => `${(s.atMs / 60_000).toFixed(1)} min ${mb(s.bytes)}`).join(', ')}; at the churn's end ${mb(rssAtChurnEnd)}; after convergence ${mb(rssEnd)}`,
        );
        t.diagnostic(
          `RSS, medians of ${WINDOW_MS / 60_000}-minute windows: ${baseline === undefined ? 'no baseline' : mb(baseline)} from ${BASELINE_MS / 60_000} min, ${endWindow === undefined ? 'no end window' : mb(endWindow)} in the last ${WINDOW_MS / 60_000} min: ${baseline === undefined || endWindow === undefined ? '' : `${(((endWindow - baseline) / baseline) * 100).toFixed(1)}%`} (bound +${RSS_BOUND * 100}%); single samples: ${firstAfterBaseline === undefined ? '-' : mb(firstAfterBaseline)} at ${BASELINE_MS / 60_000} min, ${mb(rssEnd)} after convergence`,
        );
        t.diagnostic(
          `operator requests (both processes, all ${killed.op.starts + steady.op.starts} starts): ${describeCounts(all)}; ${(all.total / Math.max(1, ops)).toFixed(1)} per churn op; in the 3 s after convergence: ${report.quiet.total} requests, ${report.quiet.writes} writes`,
        );

        assert.deepEqual(
          converged.filter((c) => c.startsWith('FAILED')),
          [],
          'every invariant holds at the end',
        );
        assert.equal(steady.op.starts, 1, 'the steady process was never restarted');
        assert.equal(steady.op.exitedUnexpectedly(), undefined, 'the steady operator process is alive');
        assert.equal(killed.op.exitedUnexpectedly(), undefined, 'the killed operator process (restarted by the scenario) is alive');
        assert.equal(
          report.quiet.writes,
          0,
          `${report.quiet.writes} writes by the operators after convergence (${JSON.stringify(report.quiet.byKind)}): a hot loop`,
        );
        assert.ok(baseline !== undefined && endWindow !== undefined, `RSS samples in the baseline window and the last window`);
        assert.ok(
          endWindow <= (1 + RSS_BOUND) * baseline,
          `steady operator RSS ${mb(endWindow)} in the last ${WINDOW_MS / 60_000} min against ${mb(baseline)} from ${BASELINE_MS / 60_000} min (medians): more than ${RSS_BOUND * 100}% above it (a leak)`,
        );
      },
    );
  },
);
