// FlightTickets in a fault scenario: the booking service as a process of its own (so a scenario
// can kill and restart it, with the chaos test's fault injection), the FlightTicket CRD and API-key
// Secret on a fault cluster, and the invariants judged from the booking service's own database.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createServer as createHttpServer, request as httpRequest, Agent as HttpAgent } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeClient } from '../../../packages/bosun/src/client/client.js';
import { Secret } from '../../../packages/bosun/src/client/resources.js';
import { BookingClient } from '../../../operators/flightticket/booking/client.js';
import { listBookings } from '../../../operators/flightticket/booking/server.js';
import { ROUTES, type Booking, type FaultConfig } from '../../../operators/flightticket/booking/types.js';
import { ticketKeyPrefix } from '../../../operators/flightticket/keys.js';
import { FINALIZER } from '../../../operators/flightticket/reconciler.js';
import { FlightTicketResource, type FlightTicket, type FlightTicketSpec } from '../../../operators/flightticket/resource.js';
import { OPERATOR_USER_AGENT, type AuditEvent } from './audit.js';
import type { FaultCluster } from './cluster.js';

/** The repository root: the booking service runs from source there. */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Raised when the booking service process cannot be started, reached or stopped; names its log. */
export class BookingProcessError extends Error {
  override name = 'BookingProcessError';
}

/**
 * The booking service's faults in the fault suite: the chaos test's 30% of failed calls (12% answered
 * 503, 8% connections dropped before the call has an effect, 10% responses lost after it committed)
 * and 2 s of latency on every call, which is what makes a killed operator's requests land late.
 */
export const BOOKING_FAULTS: FaultConfig = { errorRate: 0.12, dropRate: 0.08, dropAfterCommitRate: 0.1, latencyMs: 2_000 };

/** The API key the suite's booking service and Secret share. */
export const BOOKING_API_KEY = 'fault-suite-booking-key';
/** The Secret (in the tickets' namespace) the operator reads the API key from. */
export const BOOKING_SECRET = 'booking-api';

/** Options of `bookingProcess`. */
export interface BookingProcessOptions {
  /** Directory for the database (`<dir>/data`) and the log (`<dir>/booking.log`), e.g. the fault cluster's directory. */
  dir: string;
  /** Faults from the start of every process; default BOOKING_FAULTS. */
  faults?: FaultConfig;
  /** Seed of the fault dice (each restart continues with seed + its start count). */
  seed?: number;
}

/** One request the booking service answered (from its log). */
export interface BookingRequestLine {
  /** When it was answered (ms since the epoch). */
  time: number;
  method: string;
  path: string;
  status: number;
}

/** The booking service as a process, and the ones started after it on the same port and database. */
export interface BookingProcess {
  /** Base URL; the same across restarts. */
  readonly url: string;
  /** Where its database lives. */
  readonly dataDir: string;
  /** Its log file (JSON lines of every process). */
  readonly logFile: string;
  /** How many processes were started so far. */
  readonly starts: number;
  /** Starts a process (the previous must be gone); resolves when /healthz answers, with the ms it took. */
  start(): Promise<number>;
  /** Stops the current process with `signal` (default SIGTERM: it finishes the requests it holds and closes the database), then starts a new one; resolves the ms it was down. */
  restart(opts?: { signal?: NodeJS.Signals }): Promise<{ downMs: number }>;
  /** Whether the current process runs. */
  alive(): boolean;
  /** The exit of the current process, if it exited by itself. */
  exitedUnexpectedly(): string | undefined;
  /** Replaces the faults of the running process (`{}` turns them off). */
  setFaults(faults: FaultConfig): Promise<void>;
  /**
   * Every booking (any state) as its database has them, through the running process's `GET /admin/bookings`: no
   * fault or latency applies to it and it is not one of the `/v1` calls `requests` counts, so a read that ends as a
   * quiet window starts is not taken for the operator's. Asked again while the service restarts.
   */
  bookings(): Promise<Booking[]>;
  /** Every booking read from the database files themselves; only once the service is stopped. */
  bookingsOnDisk(): Promise<Booking[]>;
  /** The `/v1` requests every process answered, from the log; `since` in ms since the epoch. */
  requests(since?: number): Promise<BookingRequestLine[]>;
  /** Stops the current process (SIGTERM, SIGKILL after 15 s). */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

const FAULT_FLAGS: Record<keyof FaultConfig, string> = {
  errorRate: '--error-rate',
  latencyMs: '--latency-ms',
  rateLimitRate: '--rate-limit-rate',
  retryAfterSeconds: '--retry-after-seconds',
  dropRate: '--drop-rate',
  dropAfterCommitRate: '--drop-after-commit-rate',
  seed: '--seed',
};

/** A handle on the booking service as a process (`operators/flightticket/booking/main.ts`); nothing runs until `start()`. */
export function bookingProcess(opts: BookingProcessOptions): BookingProcess {
  const dataDir = join(opts.dir, 'booking-data');
  const logFile = join(opts.dir, 'booking.log');
  let port = 0;
  let child: ChildProcess | undefined;
  let exit: string | undefined;
  let expected = false;
  let starts = 0;
  let exited: Promise<void> = Promise.resolve();
  const alive = () => child !== undefined && exit === undefined;
  const url = () => `http://127.0.0.1:${port}`;
  const admin = () => new BookingClient({ baseUrl: url(), apiKey: BOOKING_API_KEY, timeoutMs: 30_000 });

  async function signalAndWait(sig: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
    if (!alive() || child?.pid === undefined) return true;
    expected = true;
    process.kill(child.pid, sig);
    await Promise.race([exited, new Promise((r) => setTimeout(r, timeoutMs))]);
    return !alive();
  }

  const handle: BookingProcess = {
    get url() {
      return url();
    },
    dataDir,
    logFile,
    get starts() {
      return starts;
    },
    async start() {
      if (alive()) throw new BookingProcessError(`booking service pid ${child?.pid} still runs; stop it first`);
      const t0 = performance.now();
      // The same port for every process: the operator is configured with one URL.
      port ||= await freePort();
      await mkdir(dataDir, { recursive: true });
      const faults: FaultConfig = { ...(opts.faults ?? BOOKING_FAULTS), ...(opts.seed !== undefined ? { seed: opts.seed + starts } : {}) };
      const args = [
        '--import',
        'tsx',
        join(REPO, 'operators/flightticket/booking/main.ts'),
        '--port',
        String(port),
        '--data-dir',
        dataDir,
        '--api-key',
        BOOKING_API_KEY,
        '--log-level',
        'debug',
      ];
      for (const [k, v] of Object.entries(faults)) if (v !== undefined) args.push(FAULT_FLAGS[k as keyof FaultConfig], String(v));
      const fd = openSync(logFile, 'a');
      const c = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', fd, fd] });
      closeSync(fd);
      child = c;
      exit = undefined;
      expected = false;
      starts++;
      exited = new Promise<void>((res) => {
        c.once('exit', (code, sig) => {
          if (child === c) exit = sig ?? `code ${code ?? '?'}`;
          res();
        });
      });
      for (;;) {
        if (exit !== undefined) throw new BookingProcessError(`the booking service exited (${exit}) while starting; see ${logFile}`);
        const ok = await fetch(`${url()}/healthz`).then(
          (r) => r.status === 200,
          () => false,
        );
        if (ok) return performance.now() - t0;
        // PGlite's first initdb takes seconds, more on a loaded machine.
        if (performance.now() - t0 > 90_000)
          throw new BookingProcessError(`the booking service did not answer /healthz 90 s after its start; see ${logFile}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async restart(o = {}) {
      const t0 = performance.now();
      if (!(await signalAndWait(o.signal ?? 'SIGTERM', 30_000)))
        throw new BookingProcessError(`booking service pid ${child?.pid} still runs 30 s after ${o.signal ?? 'SIGTERM'}; see ${logFile}`);
      await handle.start();
      return { downMs: performance.now() - t0 };
    },
    alive,
    exitedUnexpectedly: () => (exit !== undefined && !expected ? exit : undefined),
    async setFaults(faults) {
      await admin().setFaults(faults);
    },
    async bookings() {
      const deadline = performance.now() + 120_000;
      for (;;) {
        try {
          return await admin().allBookings();
        } catch (err) {
          if (performance.now() > deadline)
            throw new BookingProcessError(`could not list the bookings of ${url()} for 120 s: ${(err as Error).message}; see ${logFile}`);
          // A refused connection fails at once: do not spin while the service restarts.
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    },
    async bookingsOnDisk() {
      if (alive())
        throw new BookingProcessError(
          `the booking service (pid ${child?.pid}) has ${dataDir} open; stop it before reading the database files`,
        );
      return listBookings(dataDir);
    },
    async requests(since = 0) {
      const text = await readFile(logFile, 'utf8').catch(() => '');
      const out: BookingRequestLine[] = [];
      for (const line of text.split('\n')) {
        if (!line.includes('"msg":"booking service request"')) continue;
        try {
          const l = JSON.parse(line) as { time: number; method: string; path: string; status: number };
          if (l.path.startsWith('/v1/') && l.time >= since) out.push({ time: l.time, method: l.method, path: l.path, status: l.status });
        } catch {
          /* a line cut short by a SIGKILL */
        }
      }
      return out;
    },
    async stop() {
      if (await signalAndWait('SIGTERM', 15_000)) return;
      await signalAndWait('SIGKILL', 10_000);
    },
  };
  return handle;
}

/** The environment `bosun run flightticket` needs to book with `booking` and read the key from `namespace`'s Secret. */
export function flightTicketEnv(booking: BookingProcess, namespace: string): Record<string, string> {
  return { FLIGHTTICKET_BOOKING_URL: booking.url, FLIGHTTICKET_API_KEY_SECRET: `${namespace}/${BOOKING_SECRET}` };
}

/** Installs the FlightTicket CRD on the fault cluster (idempotent) and the API-key Secret in `namespace`. */
export async function installFlightTickets(cluster: FaultCluster, namespace: string): Promise<void> {
  const crd = 'config/crd/flighttickets.flights.com.yaml';
  await cluster.kubectlOk(['apply', '--server-side', '-f', crd]);
  await cluster.kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', '-f', crd]);
  await cluster.client.create(Secret, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: BOOKING_SECRET, namespace },
    stringData: { apiKey: BOOKING_API_KEY },
  });
}

/** A spec the booking service can book: route i of its table, 1..10 seats. */
export function ticketSpec(i: number): FlightTicketSpec {
  const [from, to] = ROUTES[i % ROUTES.length]!;
  return { from, to, number: 1 + (i % 10) };
}

/** Creates FlightTickets `names` with `spec(name)` in `namespace`, `concurrency` at a time; resolves their uids by name. */
export async function createTickets(
  client: KubeClient,
  namespace: string,
  names: string[],
  spec: (name: string) => FlightTicketSpec,
  concurrency = 16,
): Promise<Map<string, string>> {
  const uids = new Map<string, string>();
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++]!;
      const created = await client.create<FlightTicket>(FlightTicketResource, {
        apiVersion: 'flights.com/v1',
        kind: 'FlightTicket',
        metadata: { name, namespace },
        spec: spec(name),
      } as FlightTicket);
      uids.set(name, created.metadata.uid!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  return uids;
}

/** Every FlightTicket of `namespace`, from the API server. */
export async function readTickets(client: KubeClient, namespace: string): Promise<FlightTicket[]> {
  return (await client.list<FlightTicket>(FlightTicketResource, { namespace })).items;
}

/** Whether the ticket is Ready=True and its status says its current generation and spec are booked. */
export function isTicketBooked(t: FlightTicket): boolean {
  const s = t.status;
  const ready = s?.conditions?.find((c) => c.type === 'Ready');
  return (
    ready?.status === 'True' &&
    s?.state === 'Booked' &&
    !!s.bookingId &&
    s.observedGeneration === t.metadata.generation &&
    s.bookedFrom === t.spec?.from &&
    s.bookedTo === t.spec?.to &&
    s.bookedNumber === t.spec?.number
  );
}

/** The ticket uid a booking was made for (its idempotency key is `ft.<uid>.…`), or undefined for a booking the operator did not make. */
export function bookingTicketUid(b: Booking): string | undefined {
  return /^ft\.([^.]+)\./.exec(b.idempotencyKey)?.[1];
}

/** What the tickets of a namespace must be at the end. */
export interface TicketExpectation {
  /** Live tickets: name → the spec last written. */
  live: Map<string, FlightTicketSpec>;
  /** Uids of the tickets deleted (their bookings must all be cancelled). */
  deletedUids: Set<string>;
  /** The most bookings (any state) a ticket may have had made for it, by uid: 1 + its route changes; default 1. */
  maxBookings?: (uid: string) => number;
}

/**
 * Every broken FlightTicket invariant, judged from the booking service's own database `bookings`
 * (empty when all hold):
 * - each live ticket is Ready=True and Booked for its current generation and spec, keeps the finalizer,
 *   and has exactly one active booking, whose id is status.bookingId and whose route and seats are the spec's;
 * - no deleted ticket has an active booking (no leak); no active booking belongs to no live ticket;
 * - no ticket had more bookings made than `maxBookings` allows (no booking made twice);
 * - the tickets are exactly the expected live ones (no creation or deletion lost).
 */
export function ticketViolations(tickets: FlightTicket[], bookings: Booking[], expected: TicketExpectation): string[] {
  const out: string[] = [];
  const byUid = new Map<string, Booking[]>();
  for (const b of bookings) {
    const uid = bookingTicketUid(b);
    if (uid !== undefined) byUid.set(uid, [...(byUid.get(uid) ?? []), b]);
  }
  const liveUids = new Set<string>();
  for (const t of tickets) {
    const name = t.metadata.name!;
    const uid = t.metadata.uid!;
    liveUids.add(uid);
    const want = expected.live.get(name);
    if (!want) {
      out.push(
        `FlightTicket ${name} exists but was deleted (a deletion lost)${t.metadata.deletionTimestamp ? '; it is still being deleted' : ''}`,
      );
      continue;
    }
    if (t.spec?.from !== want.from || t.spec.to !== want.to || t.spec.number !== want.number)
      out.push(`FlightTicket ${name}: spec is not the spec last written`);
    if (!isTicketBooked(t)) {
      const ready = t.status?.conditions?.find((c) => c.type === 'Ready');
      out.push(
        `FlightTicket ${name}: not Booked for generation ${t.metadata.generation} (state ${t.status?.state ?? 'absent'}, Ready=${ready?.status ?? 'absent'} ${ready?.reason ?? ''}, observedGeneration ${t.status?.observedGeneration ?? 'absent'})`,
      );
    }
    if (!t.metadata.finalizers?.includes(FINALIZER)) out.push(`FlightTicket ${name}: no ${FINALIZER} finalizer`);
    const mine = byUid.get(uid) ?? [];
    const active = mine.filter((b) => b.state === 'active');
    if (active.length !== 1)
      out.push(`FlightTicket ${name}: ${active.length} active bookings (${active.map((b) => b.id).join(', ') || 'none'}); want exactly 1`);
    const b = active.find((x) => x.id === t.status?.bookingId);
    if (!b)
      out.push(
        `FlightTicket ${name}: status.bookingId ${t.status?.bookingId ?? 'absent'} is no active booking of this ticket in the database`,
      );
    else if (b.from !== t.spec?.from || b.to !== t.spec.to || b.number !== t.spec.number)
      out.push(
        `FlightTicket ${name}: booking ${b.id} is ${b.number} seats ${b.from}→${b.to}, spec says ${t.spec?.number} ${t.spec?.from}→${t.spec?.to}`,
      );
    const max = expected.maxBookings?.(uid) ?? 1;
    if (mine.length > max)
      out.push(
        `FlightTicket ${name}: ${mine.length} bookings were made for it (${mine.map((x) => `${x.id} ${x.state}`).join(', ')}); at most ${max} expected (a booking made twice)`,
      );
  }
  for (const name of expected.live.keys())
    if (!tickets.some((t) => t.metadata.name === name)) out.push(`FlightTicket ${name} is missing (a creation lost)`);
  for (const uid of expected.deletedUids) {
    const mine = byUid.get(uid) ?? [];
    const active = mine.filter((b) => b.state === 'active');
    if (active.length)
      out.push(`deleted ticket uid ${uid}: ${active.length} active bookings (${active.map((b) => b.id).join(', ')}): leaked`);
    const max = expected.maxBookings?.(uid) ?? 1;
    if (mine.length > max)
      out.push(`deleted ticket uid ${uid}: ${mine.length} bookings were made for it; at most ${max} expected (a booking made twice)`);
  }
  for (const b of bookings) {
    if (b.state !== 'active') continue;
    const uid = bookingTicketUid(b);
    if (uid === undefined || (!liveUids.has(uid) && !expected.deletedUids.has(uid)))
      out.push(`active booking ${b.id} (key ${b.idempotencyKey}) belongs to no live ticket: leaked`);
  }
  return out;
}

/**
 * Polls until every ticket invariant holds (tickets from the API server, bookings from the booking
 * service's database); resolves the ms from `since` (a performance.now() value) at which they
 * first did. At `timeoutMs` it resolves the violations still present instead of throwing, so a
 * scenario can report them with its figures.
 */
export async function waitTicketsConverged(
  client: KubeClient,
  namespace: string,
  booking: BookingProcess,
  expected: TicketExpectation,
  opts: { since: number; timeoutMs: number; intervalMs?: number },
): Promise<{ ms: number; tickets: FlightTicket[]; bookings: Booking[]; violations: string[] }> {
  const until = performance.now() + opts.timeoutMs;
  for (;;) {
    const tickets = await readTickets(client, namespace).catch(() => undefined);
    // The tickets first: reading the bookings costs the service's latency, so only once the API server says Booked.
    const ready = tickets !== undefined && tickets.length === expected.live.size && tickets.every(isTicketBooked);
    if (ready || performance.now() > until) {
      const bookings = await booking.bookings();
      const v = tickets ? ticketViolations(tickets, bookings, expected) : [`could not read the FlightTickets of ${namespace}`];
      if (v.length === 0 || performance.now() > until)
        return { ms: performance.now() - opts.since, tickets: tickets ?? [], bookings, violations: v };
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
  }
}

/** The operator's writes to FlightTickets (the object and its status), from the audit log. */
export interface TicketWrites {
  total: number;
  /** Writes per ticket name. */
  perTicket: Map<string, number>;
  max: { name: string; writes: number };
  /** When the last one was received. */
  lastAt: Date | undefined;
}

/** Counts the operator's writes to FlightTickets in `namespace` received at or after `since`. */
export function ticketWrites(events: AuditEvent[], opts: { since: Date; namespace: string; userAgent?: string }): TicketWrites {
  const ua = opts.userAgent ?? OPERATOR_USER_AGENT;
  const out: TicketWrites = { total: 0, perTicket: new Map(), max: { name: '', writes: 0 }, lastAt: undefined };
  for (const e of events) {
    if (
      e.stage !== 'RequestReceived' ||
      e.userAgent !== ua ||
      e.objectRef?.resource !== 'flighttickets' ||
      e.objectRef.namespace !== opts.namespace
    )
      continue;
    if (!['create', 'update', 'patch', 'delete'].includes(e.verb)) continue;
    const at = new Date(e.requestReceivedTimestamp);
    if (at < opts.since) continue;
    out.total++;
    const name = e.objectRef.name ?? '';
    const n = (out.perTicket.get(name) ?? 0) + 1;
    out.perTicket.set(name, n);
    if (n > out.max.writes) out.max = { name, writes: n };
    if (!out.lastAt || at > out.lastAt) out.lastAt = at;
  }
  return out;
}

/** Bookings of one ticket uid, oldest first. */
export function bookingsOf(bookings: Booking[], uid: string): Booking[] {
  return bookings.filter((b) => b.idempotencyKey.startsWith(ticketKeyPrefix(uid)));
}

/** One booking-service call that passed through a BookingTap. */
export interface TappedCall {
  /** Date.now() when the tap received the request from the operator. */
  start: number;
  /** Date.now() when the answer (or the failure) went back; undefined while in flight. */
  end?: number;
  method: string;
  path: string;
  /** The service's status, or 0 when it gave none (dropped, or the tap could not reach it). */
  status?: number;
}

/**
 * An HTTP proxy in front of the booking service for one operator process: the service's own log
 * does not say which process called it, and two replicas share one service (one database, judged
 * for double bookings). A request is forwarded even when its caller goes away meanwhile, as the
 * service itself would go on with a request it had received.
 */
export interface BookingTap {
  /** The URL to give the operator (FLIGHTTICKET_BOOKING_URL). */
  readonly url: string;
  /** Every /v1 call received so far, in arrival order. */
  readonly calls: readonly TappedCall[];
  /** The calls still waiting for their answer. */
  inFlight(): TappedCall[];
  close(): Promise<void>;
}

/** Starts a BookingTap in front of `booking` on a free port of 127.0.0.1. */
export async function bookingTap(booking: BookingProcess): Promise<BookingTap> {
  const calls: TappedCall[] = [];
  const target = new URL(booking.url);
  const agent = new HttpAgent({ keepAlive: true });
  const server = createHttpServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const call: TappedCall | undefined = path.startsWith('/v1/')
      ? { start: Date.now(), method: req.method ?? 'GET', path: req.url ?? '/' }
      : undefined;
    if (call) calls.push(call);
    const done = (status: number) => {
      if (call && call.end === undefined) Object.assign(call, { end: Date.now(), status });
    };
    const up = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        done(answer.statusCode ?? 0);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    up.on('error', () => {
      done(0);
      res.destroy();
    });
    req.pipe(up);
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => res());
  });
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    inFlight: () => calls.filter((c) => c.end === undefined),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((res) => server.close(() => res()));
      agent.destroy();
    },
  };
}
