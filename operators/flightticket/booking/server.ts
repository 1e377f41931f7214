// The flight booking service the FlightTicket operator talks to: a small HTTP JSON API over
// PGlite, with idempotency keys (Stripe semantics) and fault injection, so the operator can be
// tested against the failures that make idempotency necessary.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { FaultInjector, InvalidFaultConfigError, parseFaultConfig } from './faults.js';
import { BookingRejectedError, BookingStore } from './store.js';
import {
  MAX_SEATS,
  MIN_SEATS,
  ROUTES,
  isKnownRoute,
  type ApiErrorBody,
  type Booking,
  type BookingRequest,
  type BookingState,
  type ErrorCode,
  type FaultConfig,
} from './types.js';

/** Options for {@link startBookingService}. */
export interface BookingServiceOptions {
  /** Port to listen on; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to bind; defaults to loopback. */
  host?: string;
  /** Directory holding the PGlite database; bookings survive restarts on the same directory. */
  dataDir: string;
  /** The bearer token every `/v1` and `/admin` request must present. */
  apiKey: string;
  /** Faults in force from the start. */
  faults?: FaultConfig;
  /** Where request and lifecycle logs go; silent by default. */
  logger?: Logger;
}

/** A running booking service. */
export interface BookingService {
  /** Base URL, e.g. `http://127.0.0.1:40123`, without trailing slash. */
  readonly url: string;
  /** The port actually bound. */
  readonly port: number;
  /** The data directory the database lives in. */
  readonly dataDir: string;
  /** Replaces the fault configuration; `{}` turns all faults off. */
  setFaults(faults: FaultConfig): void;
  /** The fault configuration in force. */
  faults(): FaultConfig;
  /** Stops accepting connections, waits for in-flight requests, and closes the database. */
  close(): Promise<void>;
}

/** A failure answered with a JSON error body; thrown by handlers, rendered by the dispatcher. */
class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const MAX_BODY_BYTES = 64 * 1024;
const MAX_KEY_LENGTH = 255;
const REJECTION_STATUS: Record<BookingRejectedError['code'], number> = {
  not_found: 404,
  idempotency_key_reuse: 409,
  booking_cancelled: 409,
};

// Lets listBookings(service) reach the store without putting the database on the public handle.
const stores = new WeakMap<BookingService, BookingStore>();

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

function sendError(res: ServerResponse, status: number, code: ErrorCode, message: string, headers?: Record<string, string>): void {
  const body: ApiErrorBody = { error: code, message };
  sendJson(res, status, body, headers);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'payload_too_large', `request body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'invalid_request', 'request body is empty; send a JSON object');
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_request', 'request body is not valid JSON');
  }
}

function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'invalid_request', 'request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

function checkNumber(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_SEATS || value > MAX_SEATS) {
    throw new HttpError(422, 'invalid_number', `number must be an integer in ${MIN_SEATS}..${MAX_SEATS}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function parseBookingRequest(value: unknown): BookingRequest {
  const body = asObject(value);
  const { from, to } = body;
  for (const [field, v] of [
    ['from', from],
    ['to', to],
  ] as const) {
    if (typeof v !== 'string' || v === '') {
      throw new HttpError(400, 'invalid_request', `${field} must be a non-empty airport code string, got ${JSON.stringify(v)}`);
    }
  }
  if (body.number === undefined) throw new HttpError(400, 'invalid_request', 'number is required (seats, 1..10)');
  const number = checkNumber(body.number);
  const req = { from: from as string, to: to as string, number };
  if (!isKnownRoute(req.from, req.to)) {
    throw new HttpError(
      422,
      'no_such_route',
      `no flights from ${req.from} to ${req.to}; routes flown: ${ROUTES.map(([f, t]) => `${f}-${t}`).join(', ')}`,
    );
  }
  return req;
}

function idempotencyKey(req: IncomingMessage): string {
  const key = req.headers['idempotency-key'];
  if (typeof key !== 'string' || key.trim() === '') {
    throw new HttpError(
      400,
      'missing_idempotency_key',
      'POST /v1/bookings requires an Idempotency-Key header; reuse the same key when retrying the same booking',
    );
  }
  if (key.length > MAX_KEY_LENGTH) {
    throw new HttpError(400, 'invalid_request', `Idempotency-Key is longer than ${MAX_KEY_LENGTH} characters`);
  }
  return key;
}

// Comparing digests keeps the comparison constant-time even when the lengths differ.
function sameSecret(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

function checkAuth(req: IncomingMessage, apiKey: string): void {
  const header = req.headers.authorization;
  if (!header) {
    throw new HttpError(401, 'unauthorized', 'missing Authorization header; send "Authorization: Bearer <api key>"');
  }
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (!match?.[1] || !sameSecret(match[1].trim(), apiKey)) {
    throw new HttpError(401, 'unauthorized', 'the API key in the Authorization header is not valid for this booking service');
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Starts the booking service on a PGlite database under `opts.dataDir`. */
export async function startBookingService(opts: BookingServiceOptions): Promise<BookingService> {
  if (!opts.apiKey) throw new Error('startBookingService: apiKey must be a non-empty string');
  const log = opts.logger ?? pino({ level: 'silent' });
  const faults = new FaultInjector(opts.faults);
  const store = await BookingStore.open(opts.dataDir);
  const inflight = new Set<Promise<void>>();

  type Reply = { status: number; body: unknown; headers?: Record<string, string> };

  async function handleV1(req: IncomingMessage, method: string, path: string, query: URLSearchParams): Promise<Reply> {
    if (path === '/v1/routes') {
      if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', `${method} ${path} is not supported; use GET`);
      return { status: 200, body: { items: ROUTES.map(([from, to]) => ({ from, to })) } };
    }
    if (path === '/v1/bookings') {
      if (method === 'POST') {
        const key = idempotencyKey(req);
        const booking = parseBookingRequest(await readJson(req));
        const result = await store.book(key, booking);
        return {
          status: result.created ? 201 : 200,
          body: result.booking,
          headers: result.created ? {} : { 'idempotent-replayed': 'true' },
        };
      }
      if (method === 'GET') {
        const state = query.get('state');
        if (state !== null && state !== 'active' && state !== 'cancelled') {
          throw new HttpError(400, 'invalid_request', `state must be "active" or "cancelled", got ${JSON.stringify(state)}`);
        }
        const key = query.get('key');
        const keyPrefix = query.get('keyPrefix');
        if (keyPrefix === '') throw new HttpError(400, 'invalid_request', 'keyPrefix must not be empty; omit it to list every booking');
        const items: Booking[] = await store.list({
          ...(state ? { state: state as BookingState } : {}),
          ...(key !== null ? { idempotencyKey: key } : {}),
          ...(keyPrefix !== null ? { keyPrefix } : {}),
        });
        return { status: 200, body: { items } };
      }
      throw new HttpError(405, 'method_not_allowed', `${method} ${path} is not supported; use GET or POST`);
    }
    const m = /^\/v1\/bookings\/([^/]+)$/.exec(path);
    if (m?.[1]) {
      const id = decodeURIComponent(m[1]);
      if (method === 'GET') {
        const booking = await store.get(id);
        if (!booking) throw new HttpError(404, 'not_found', `no booking with id ${JSON.stringify(id)}`);
        return { status: 200, body: booking };
      }
      if (method === 'PATCH') {
        const body = asObject(await readJson(req));
        const unknown = Object.keys(body).filter((k) => k !== 'number');
        if (unknown.length) {
          throw new HttpError(400, 'invalid_request', `only number can be changed on a booking; got ${unknown.join(', ')}`);
        }
        if (body.number === undefined) return { status: 200, body: await getOr404(id) };
        return { status: 200, body: await store.change(id, checkNumber(body.number)) };
      }
      if (method === 'DELETE') return { status: 200, body: await store.cancel(id) };
      throw new HttpError(405, 'method_not_allowed', `${method} ${path} is not supported; use GET, PATCH or DELETE`);
    }
    throw new HttpError(404, 'not_found', `no route ${method} ${path}`);
  }

  async function getOr404(id: string): Promise<Booking> {
    const booking = await store.get(id);
    if (!booking) throw new HttpError(404, 'not_found', `no booking with id ${JSON.stringify(id)}`);
    return booking;
  }

  async function handleAdmin(req: IncomingMessage, method: string, path: string): Promise<Reply> {
    if (path === '/admin/bookings') {
      // What a test judges by: without faults or latency, and apart from the /v1 calls it counts.
      if (method === 'GET') return { status: 200, body: { items: await store.list() } };
      throw new HttpError(405, 'method_not_allowed', `${method} ${path} is not supported; use GET`);
    }
    if (path !== '/admin/faults') throw new HttpError(404, 'not_found', `no route ${method} ${path}`);
    if (method === 'GET') return { status: 200, body: faults.get() };
    if (method === 'PUT') {
      try {
        faults.set(parseFaultConfig(await readJson(req)));
      } catch (err) {
        if (err instanceof InvalidFaultConfigError) throw new HttpError(400, 'invalid_request', err.message);
        throw err;
      }
      log.info({ faults: faults.get() }, 'booking service faults changed');
      return { status: 200, body: faults.get() };
    }
    throw new HttpError(405, 'method_not_allowed', `${method} ${path} is not supported; use GET or PUT`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://booking.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    try {
      if (path === '/healthz') {
        sendJson(res, 200, { status: 'ok' });
        return;
      }
      if (path.startsWith('/admin/')) {
        // Admin is exempt from faults: a test must always be able to turn them off again.
        checkAuth(req, opts.apiKey);
        const reply = await handleAdmin(req, method, path);
        sendJson(res, reply.status, reply.body, reply.headers);
        return;
      }
      if (!path.startsWith('/v1/')) throw new HttpError(404, 'not_found', `no route ${method} ${path}`);

      const latency = faults.latencyMs();
      if (latency > 0) await sleep(latency);
      const fault = faults.before();
      switch (fault.kind) {
        case 'drop':
          log.debug({ method, path }, 'fault: dropping connection before handling');
          req.socket.destroy();
          return;
        case 'error':
          sendError(res, 503, 'service_unavailable', 'injected fault: the booking service is temporarily unavailable; retry');
          return;
        case 'rateLimit':
          sendError(res, 429, 'rate_limited', `injected fault: too many requests; retry after ${fault.retryAfterSeconds}s`, {
            'retry-after': String(Math.ceil(fault.retryAfterSeconds)),
          });
          return;
        case 'none':
          break;
      }
      checkAuth(req, opts.apiKey);
      const reply = await handleV1(req, method, path, url.searchParams);
      if (faults.dropAfterCommit()) {
        log.debug({ method, path, status: reply.status }, 'fault: dropping connection after commit');
        req.socket.destroy();
        return;
      }
      sendJson(res, reply.status, reply.body, reply.headers);
    } catch (err) {
      if (err instanceof HttpError) {
        sendError(res, err.status, err.code, err.message);
      } else if (err instanceof BookingRejectedError) {
        sendError(res, REJECTION_STATUS[err.code], err.code, err.message);
      } else {
        log.error({ err, method, path }, 'booking service request failed');
        if (!res.headersSent) sendError(res, 500, 'internal', 'internal error in the booking service; retry');
        else res.destroy();
      }
    } finally {
      log.debug({ method, path, status: res.statusCode }, 'booking service request');
    }
  }

  const server: Server = createServer((req, res) => {
    // handle() answers its own errors; this catch is for a failure while answering one.
    const p = handle(req, res)
      .catch((err: unknown) => {
        log.error({ err }, 'booking service failed to answer a request');
        res.destroy();
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const host = opts.host ?? '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url, dataDir: opts.dataDir }, 'booking service listening');

  let closing: Promise<void> | undefined;
  const service: BookingService = {
    url,
    port,
    dataDir: opts.dataDir,
    setFaults: (f) => faults.set(f),
    faults: () => faults.get(),
    close: () => {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        // Let requests already inside a transaction finish before the database goes away.
        await Promise.allSettled([...inflight]);
        server.closeAllConnections();
        await closed;
        await store.close();
        log.info({ url }, 'booking service closed');
      })();
      return closing;
    },
  };
  stores.set(service, store);
  return service;
}

/** A booking as stored, for tests that check the service's database directly. */
export type StoredBooking = Booking;

/**
 * Every booking (all states, oldest first) with its idempotency key: from a running service, or
 * from a data directory no service has open — for end-to-end checks such as
 * "every live ticket has exactly one active booking".
 */
export async function listBookings(source: BookingService | string): Promise<StoredBooking[]> {
  if (typeof source !== 'string') {
    const store = stores.get(source);
    if (!store) throw new Error('listBookings: the service handle did not come from startBookingService');
    return store.list();
  }
  const store = await BookingStore.open(source);
  try {
    return await store.list();
  } finally {
    await store.close();
  }
}
