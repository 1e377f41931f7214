// End-to-end under chaos: 200 tickets created, some changed (number, or from/to), then half
// deleted, while the booking service fails 30% of calls and the operator process is SIGKILLed
// twice. The booking service's own database is the judge: every live ticket has exactly one
// active booking matching its spec, and every deleted ticket none.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { eventually, startTestEnv, type TestEnv } from 'bosun/envtest';
import { listBookings } from './booking/server.js';
import { ROUTES } from './booking/types.js';
import { ticketKeyPrefix } from './keys.js';
import type { FlightTicket } from './resource.js';
import { isBooked, secretYaml, startCountedBookingService, ticketYaml, type CountedBookingService } from './testing.js';

const API_KEY = 'chaos-key-91c3';
const TICKETS = 200;
// 30% of booking calls fail, in every way a network and a service can fail.
const FAULTS = { errorRate: 0.12, dropRate: 0.08, dropAfterCommitRate: 0.1, seed: 42 };

interface OperatorProcess {
  child: ChildProcess;
  exited: Promise<void>;
}

describe('FlightTicket operator under chaos', () => {
  let env: TestEnv;
  let ns: string;
  let booking: CountedBookingService;
  const logs: string[] = [];
  let op: OperatorProcess | undefined;

  function spawnOperator(): OperatorProcess {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'packages/bosun/src/tooling/cli/run-main.ts',
        'run',
        'flightticket',
        '--kubeconfig',
        env.kubeconfig,
        '--standalone',
        '--metrics-addr',
        '0',
        '--health-addr',
        '0',
        '-n',
        ns,
      ],
      {
        env: { ...process.env, FLIGHTTICKET_BOOKING_URL: booking.service.url, FLIGHTTICKET_API_KEY_SECRET: `${ns}/booking-api` },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let buf = '';
    const collect = (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      logs.push(...lines.filter((l) => l));
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    return { child, exited };
  }

  async function kill(): Promise<void> {
    op!.child.kill('SIGKILL');
    await op!.exited;
  }

  const list = async (): Promise<FlightTicket[]> =>
    (JSON.parse(await env.kubectlOk(['get', 'flighttickets', '-n', ns, '-o', 'json'])) as { items: FlightTicket[] }).items;

  before(async () => {
    [env, booking] = await Promise.all([
      startTestEnv({ crds: ['config/crd/flighttickets.flights.com.yaml'] }),
      startCountedBookingService(API_KEY),
    ]);
    ns = await env.namespace('ft-chaos');
    await env.kubectlOk(['apply', '-n', ns, '-f', '-'], secretYaml('booking-api', API_KEY));
  });
  after(async () => {
    booking?.service.setFaults({});
    if (op && op.child.exitCode === null) {
      // Let the operator cancel what is left while it runs, so no finalizer outlives it.
      await env.kubectl(['delete', 'flighttickets', '--all', '-n', ns, '--wait=false']);
      await eventually('the tickets to be gone', async () => ((await list()).length === 0 ? true : undefined), 30_000, 250).catch(
        () => undefined,
      );
      op.child.kill('SIGTERM');
      await op.exited;
    }
    // Whatever still has the finalizer (a failed run) would keep the namespace from going.
    for (const t of await list().catch(() => []))
      await env.kubectl(['patch', '-n', ns, 'flightticket', t.metadata.name!, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
    await env?.cleanup();
    await booking?.close();
  });

  test(
    '200 tickets, changes and deletes, 30% booking failures, two SIGKILLs: one active booking per live ticket, none per deleted',
    { timeout: 240_000 },
    async () => {
      const t0 = Date.now();
      booking.service.setFaults(FAULTS);
      op = spawnOperator();
      const route = (i: number) => ROUTES[i % ROUTES.length]!;
      const name = (i: number) => `t${String(i).padStart(3, '0')}`;
      const docs = Array.from({ length: TICKETS }, (_, i) =>
        ticketYaml(name(i), { from: route(i)[0], to: route(i)[1], number: 1 + (i % 10) }),
      );
      await env.kubectlOk(['apply', '-n', ns, '-f', '-'], docs.join('---\n'));

      // Kill 1: in the middle of the first bookings.
      await eventually(
        'a third of the tickets booked',
        async () => ((await list()).filter(isBooked).length >= TICKETS / 3 ? true : undefined),
        90_000,
        250,
      );
      await kill();
      const kill1 = { atMs: Date.now() - t0, booked: (await list()).filter(isBooked).length };
      op = spawnOperator();

      // Changes: 40 change only number, 40 change from/to (to the reverse route), one apply.
      const changes: string[] = [];
      for (let i = 0; i < 80; i++) {
        const [from, to] = route(i);
        changes.push(
          i % 2 === 0
            ? ticketYaml(name(i), { from, to, number: 1 + ((i + 3) % 10) })
            : ticketYaml(name(i), { from: to, to: from, number: 1 + (i % 10) }),
        );
      }
      await env.kubectlOk(['apply', '-n', ns, '-f', '-'], changes.join('---\n'));

      // Kill 2: while changes (rebooks, cancels) are in flight.
      await new Promise((r) => setTimeout(r, 1500));
      await kill();
      const kill2AtMs = Date.now() - t0;
      op = spawnOperator();

      // Deletes: every other ticket, changed and unchanged alike.
      const deleted = Array.from({ length: TICKETS }, (_, i) => i)
        .filter((i) => i % 2 === 1)
        .map(name);
      const uids = new Map((await list()).map((t) => [t.metadata.name!, t.metadata.uid!]));
      await env.kubectlOk(['delete', 'flighttickets', '-n', ns, '--wait=false', ...deleted]);

      const live = await eventually(
        'every live ticket Booked for its spec and every deleted ticket gone',
        async () => {
          const items = await list();
          return items.length === TICKETS - deleted.length && items.every(isBooked) ? items : undefined;
        },
        150_000,
        500,
      );
      const convergedMs = Date.now() - t0;
      booking.service.setFaults({});

      // The judge: the booking service's database.
      const all = await listBookings(booking.service);
      for (const t of live) {
        const mine = all.filter((b) => b.idempotencyKey.startsWith(ticketKeyPrefix(t.metadata.uid!)) && b.state === 'active');
        assert.equal(mine.length, 1, `${t.metadata.name} has exactly one active booking (has ${mine.length})`);
        assert.deepEqual(
          [mine[0]!.id, mine[0]!.from, mine[0]!.to, mine[0]!.number],
          [t.status!.bookingId, t.spec!.from, t.spec!.to, t.spec!.number],
          `${t.metadata.name}'s booking matches its spec`,
        );
      }
      for (const n of deleted) {
        const active = all.filter((b) => b.idempotencyKey.startsWith(ticketKeyPrefix(uids.get(n)!)) && b.state === 'active');
        assert.equal(active.length, 0, `deleted ${n} has no active booking`);
      }
      const active = all.filter((b) => b.state === 'active');
      assert.equal(active.length, live.length, 'no active booking belongs to no live ticket');
      const restarts = logs.filter((l) => l.includes('"msg":"starting"')).length;
      assert.equal(restarts, 3, 'the operator ran three times (two SIGKILLs)');

      const report = {
        tickets: TICKETS,
        changedNumber: 40,
        changedRoute: 40,
        deleted: deleted.length,
        kill1,
        kill2AtMs,
        convergedMs,
        bookingRequests: booking.requests(),
        bookingsTotal: all.length,
        bookingsActive: active.length,
        bookingsCancelled: all.length - active.length,
        reconcileErrorsLogged: logs.filter((l) => l.includes('reconcile failed; retrying')).length,
      };
      process.stderr.write(`chaos: ${JSON.stringify(report)}\n`);
    },
  );
});
