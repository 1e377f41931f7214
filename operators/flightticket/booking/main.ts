// Runnable entry point for the booking service (`node --import tsx operators/flightticket/booking/main.ts`).
// Runs until SIGINT/SIGTERM, then closes the database cleanly.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import type { FaultConfig } from './types.js';

/** Flags of the `booking-service` command, as commander parses them. */
export interface BookingServiceFlags extends FaultConfig {
  port: number;
  host: string;
  dataDir: string;
  apiKey?: string;
  apiKeyFile?: string;
  logLevel: string;
}

/** No API key came from --api-key, --api-key-file or BOOKING_API_KEY. */
export class MissingApiKeyError extends Error {
  override name = 'MissingApiKeyError';
  constructor() {
    super('booking-service needs an API key: pass --api-key, --api-key-file <path>, or set BOOKING_API_KEY');
  }
}

function rate(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('must be a number between 0 and 1.');
  return n;
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a non-negative number.');
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number 0..65535.');
  return n;
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('must be an integer.');
  return n;
}

/** Resolves the API key: --api-key, then --api-key-file, then BOOKING_API_KEY. */
export async function resolveApiKey(flags: Pick<BookingServiceFlags, 'apiKey' | 'apiKeyFile'>, env = process.env): Promise<string> {
  if (flags.apiKey) return flags.apiKey;
  if (flags.apiKeyFile) {
    // Secrets mounted from Kubernetes usually end in a newline that is not part of the key.
    const key = (await readFile(flags.apiKeyFile, 'utf8')).trim();
    if (!key) throw new InvalidArgumentError(`--api-key-file ${flags.apiKeyFile} is empty.`);
    return key;
  }
  if (env.BOOKING_API_KEY) return env.BOOKING_API_KEY;
  throw new MissingApiKeyError();
}

function faultsFrom(flags: BookingServiceFlags): FaultConfig {
  const faults: FaultConfig = {};
  if (flags.errorRate !== undefined) faults.errorRate = flags.errorRate;
  if (flags.latencyMs !== undefined) faults.latencyMs = flags.latencyMs;
  if (flags.rateLimitRate !== undefined) faults.rateLimitRate = flags.rateLimitRate;
  if (flags.retryAfterSeconds !== undefined) faults.retryAfterSeconds = flags.retryAfterSeconds;
  if (flags.dropRate !== undefined) faults.dropRate = flags.dropRate;
  if (flags.dropAfterCommitRate !== undefined) faults.dropAfterCommitRate = flags.dropAfterCommitRate;
  if (flags.seed !== undefined) faults.seed = flags.seed;
  return faults;
}

/** The `booking-service` command: runs the flight booking service the FlightTicket operator books against. */
export function bookingServiceCommand(): Command {
  return new Command('booking-service')
    .description('Run the flight booking service that the FlightTicket operator books seats with')
    .option('--port <port>', 'port to listen on (0 picks a free port)', port, 8080)
    .option('--host <host>', 'interface to bind', '127.0.0.1')
    .option('--data-dir <dir>', 'directory for the booking database (kept across restarts)', '.bosun/booking')
    .option('--api-key <key>', 'API key clients must send as a Bearer token (prefer --api-key-file)')
    .option('--api-key-file <path>', 'file holding the API key (otherwise BOOKING_API_KEY is used)')
    .option('--error-rate <rate>', 'fraction of requests answered 503 before they take effect', rate)
    .option('--latency-ms <ms>', 'milliseconds of latency added to every request', nonNegative)
    .option('--rate-limit-rate <rate>', 'fraction of requests answered 429 with Retry-After', rate)
    .option('--retry-after-seconds <s>', 'Retry-After seconds on injected 429 responses', nonNegative)
    .option('--drop-rate <rate>', 'fraction of requests whose connection is dropped before they take effect', rate)
    .option('--drop-after-commit-rate <rate>', 'fraction of requests whose response is lost after the change committed', rate)
    .option('--seed <n>', 'seed for fault injection, for reproducible fault sequences', integer)
    .option('--log-level <level>', 'pino log level (trace, debug, info, warn, error, silent)', 'info')
    .action(async (flags: BookingServiceFlags) => {
      const logger = pino({ level: flags.logLevel });
      // The service (and its database) loads only when this command runs, not with every bosun command.
      const { startBookingService } = await import('./server.js');
      const service = await startBookingService({
        port: flags.port,
        host: flags.host,
        dataDir: resolve(flags.dataDir),
        apiKey: await resolveApiKey(flags),
        faults: faultsFrom(flags),
        logger,
      });
      // Closing the database on signal matters: PGlite flushes to the data directory on close.
      await new Promise<void>((done) => {
        const stop = (signal: NodeJS.Signals) => {
          logger.info({ signal }, 'booking service stopping');
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          service.close().then(done, (err: unknown) => {
            logger.error({ err }, 'booking service failed to close cleanly');
            process.exitCode = 1;
            done();
          });
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  bookingServiceCommand()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    });
}
