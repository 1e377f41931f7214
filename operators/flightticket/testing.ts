// Helpers the FlightTicket tests share: a booking service that counts its requests, an in-process
// operator whose log lines are kept, and kubectl shorthands.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { runControllers, type RunningControllers, type TestEnv } from 'bosun/envtest';
import { startBookingService, type BookingService } from './booking/server.js';
import type { FlightTicketConfig } from './config.js';
import { flightTicketController } from './reconciler.js';
import type { FlightTicket } from './resource.js';

/** Collects newline-delimited log output. */
export function lineSink(lines: string[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l),
      );
      cb();
    },
  });
}

/** A booking service on a fresh data directory whose `/v1` requests are counted. */
export interface CountedBookingService {
  service: BookingService;
  /** `/v1` requests answered so far (faulted ones included). */
  requests(): number;
  close(): Promise<void>;
}

/** Starts a booking service on a temporary data directory; PGlite's initdb takes seconds, so one per test file. */
export async function startCountedBookingService(apiKey: string): Promise<CountedBookingService> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bosun-ft-booking-'));
  const lines: string[] = [];
  const service = await startBookingService({ dataDir, apiKey, logger: pino({ level: 'debug' }, lineSink(lines)) });
  return {
    service,
    requests: () => lines.filter((l) => l.includes('"msg":"booking service request"') && l.includes('"path":"/v1/')).length,
    async close() {
      await service.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** An operator running in this process. */
export type RunningOperator = RunningControllers;

/** Runs the FlightTicket controller in-process on one namespace. */
export function startOperator(env: TestEnv, ns: string, config: FlightTicketConfig): RunningOperator {
  return runControllers(env, [flightTicketController(config)], { namespaces: [ns] });
}

/** A FlightTicket manifest. */
export function ticketYaml(name: string, spec: { from?: string; to?: string; number?: number }): string {
  const lines = Object.entries(spec).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`);
  return `apiVersion: flights.com/v1\nkind: FlightTicket\nmetadata:\n  name: ${name}\nspec:\n${lines.join('\n')}\n`;
}

/** A Secret holding the booking API key. */
export function secretYaml(name: string, apiKey: string): string {
  return `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\nstringData:\n  apiKey: ${JSON.stringify(apiKey)}\n`;
}

/** The ticket, or undefined when it does not exist. */
export async function getTicket(env: TestEnv, ns: string, name: string): Promise<FlightTicket | undefined> {
  const r = await env.kubectl(['get', '-n', ns, 'flightticket', name, '-o', 'json']);
  return r.code === 0 ? (JSON.parse(r.stdout) as FlightTicket) : undefined;
}

/** Whether the ticket's status says its current spec is booked. */
export function isBooked(t: FlightTicket | undefined): boolean {
  const s = t?.status;
  return (
    !!t &&
    s?.state === 'Booked' &&
    s.observedGeneration === t.metadata.generation &&
    s.bookedFrom === t.spec?.from &&
    s.bookedTo === t.spec?.to &&
    s.bookedNumber === t.spec?.number
  );
}
