// Booking persistence on PGlite (Postgres compiled to WASM, persisted to a directory).
// The idempotency guarantee lives here, in a unique constraint, not in server memory:
// the service can crash between commit and response and a retry still finds the booking.
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { Booking, BookingRequest, BookingState, ErrorCode } from './types.js';

/** A request the store refuses for a reason the caller can act on (maps to a 4xx). */
export class BookingRejectedError extends Error {
  override name = 'BookingRejectedError';
  constructor(
    readonly code: Extract<ErrorCode, 'not_found' | 'idempotency_key_reuse' | 'booking_cancelled'>,
    message: string,
  ) {
    super(message);
  }
}

/** The data directory is already open in another live process or store. */
export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `booking data directory ${dataDir} is in use by process ${pid}; stop that booking service first ` +
        `or use listBookings(service) on the running instance`,
    );
  }
}

/** Filters for {@link BookingStore.list}. */
export interface ListFilter {
  state?: BookingState;
  idempotencyKey?: string;
  /** Only bookings whose idempotency key starts with this: every booking one client object made. */
  keyPrefix?: string;
}

/** The outcome of {@link BookingStore.book}: the booking and whether this call created it. */
export interface BookResult {
  booking: Booking;
  created: boolean;
}

interface Row {
  id: string;
  idempotency_key: string;
  origin: string;
  destination: string;
  requested_number: number;
  number: number;
  state: BookingState;
  created_at: Date;
  updated_at: Date;
  cancelled_at: Date | null;
}

// requested_number is kept apart from number so a replayed POST is compared with what was
// asked for originally, not with the seat count after later PATCHes.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS bookings (
  id               text PRIMARY KEY,
  idempotency_key  text NOT NULL UNIQUE,
  origin           text NOT NULL,
  destination      text NOT NULL,
  requested_number integer NOT NULL,
  number           integer NOT NULL CHECK (number BETWEEN 1 AND 10),
  state            text NOT NULL CHECK (state IN ('active', 'cancelled')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  cancelled_at     timestamptz
);
CREATE INDEX IF NOT EXISTS bookings_state ON bookings (state);
`;

const LOCK_FILE = 'booking-service.lock';

function toBooking(row: Row): Booking {
  const booking: Booking = {
    id: row.id,
    idempotencyKey: row.idempotency_key,
    from: row.origin,
    to: row.destination,
    number: row.number,
    state: row.state,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
  if (row.cancelled_at) booking.cancelledAt = row.cancelled_at.toISOString();
  return booking;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Two PGlite instances on one directory corrupt it, and nothing in PGlite prevents that,
// so a pid lock file guards the directory; a lock left by a dead process is taken over.
async function acquireLock(dataDir: string): Promise<string> {
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return path;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      // Same pid means another store in this process: still a conflict.
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) throw new DataDirLockedError(dataDir, pid);
      await rm(path, { force: true });
    }
  }
  throw new DataDirLockedError(dataDir, -1);
}

/** Bookings in a PGlite database under one data directory; one open store per directory. */
export class BookingStore {
  private constructor(
    private readonly db: PGlite,
    private readonly lockPath: string,
  ) {}

  /** Opens (creating on first use) the database under `dataDir`; the first open runs initdb, which takes seconds. */
  static async open(dataDir: string): Promise<BookingStore> {
    await mkdir(dataDir, { recursive: true });
    const lockPath = await acquireLock(dataDir);
    try {
      const db = await PGlite.create(join(dataDir, 'pgdata'));
      await db.exec(SCHEMA);
      return new BookingStore(db, lockPath);
    } catch (err) {
      await rm(lockPath, { force: true });
      throw err;
    }
  }

  /**
   * Creates the booking for `key`, or returns the one already made with it.
   * Throws `idempotency_key_reuse` when the key was used for a different request.
   */
  async book(key: string, req: BookingRequest): Promise<BookResult> {
    return this.db.transaction(async (tx) => {
      // ON CONFLICT DO NOTHING makes the unique constraint, not a read-then-write, decide the
      // winner, so concurrent duplicates cannot both insert even if transactions interleave.
      const inserted = await tx.query<Row>(
        `INSERT INTO bookings (id, idempotency_key, origin, destination, requested_number, number, state)
         VALUES ($1, $2, $3, $4, $5, $5, 'active')
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING *`,
        [`bk_${randomUUID().replaceAll('-', '')}`, key, req.from, req.to, req.number],
      );
      const row = inserted.rows[0];
      if (row) return { booking: toBooking(row), created: true };

      const existing = (await tx.query<Row>(`SELECT * FROM bookings WHERE idempotency_key = $1`, [key])).rows[0];
      if (!existing) throw new Error(`booking for idempotency key ${key} vanished during insert`);
      if (existing.origin !== req.from || existing.destination !== req.to || existing.requested_number !== req.number) {
        throw new BookingRejectedError(
          'idempotency_key_reuse',
          `Idempotency-Key ${JSON.stringify(key)} was already used for booking ${existing.id} ` +
            `(${existing.origin}->${existing.destination}, number ${existing.requested_number}); ` +
            `this request (${req.from}->${req.to}, number ${req.number}) differs — use a new key for a new booking`,
        );
      }
      return { booking: toBooking(existing), created: false };
    });
  }

  /** The booking with this id, or undefined. */
  async get(id: string): Promise<Booking | undefined> {
    const row = (await this.db.query<Row>(`SELECT * FROM bookings WHERE id = $1`, [id])).rows[0];
    return row && toBooking(row);
  }

  /** Bookings matching the filter, oldest first. */
  async list(filter: ListFilter = {}): Promise<Booking[]> {
    const where: string[] = [];
    const params: string[] = [];
    if (filter.state) {
      params.push(filter.state);
      where.push(`state = $${params.length}`);
    }
    if (filter.idempotencyKey !== undefined) {
      params.push(filter.idempotencyKey);
      where.push(`idempotency_key = $${params.length}`);
    }
    if (filter.keyPrefix !== undefined) {
      params.push(filter.keyPrefix);
      // starts_with, not LIKE: a key may contain % or _, which LIKE would read as wildcards.
      where.push(`starts_with(idempotency_key, $${params.length})`);
    }
    const sql = `SELECT * FROM bookings ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`;
    return (await this.db.query<Row>(sql, params)).rows.map(toBooking);
  }

  /** Sets the seat count of an active booking; setting the current count again is a no-op success. */
  async change(id: string, number: number): Promise<Booking> {
    return this.db.transaction(async (tx) => {
      const row = await this.lockRow(tx, id);
      if (row.state === 'cancelled') {
        throw new BookingRejectedError(
          'booking_cancelled',
          `booking ${id} is cancelled; its seats cannot be changed — make a new booking with a new Idempotency-Key`,
        );
      }
      if (row.number === number) return toBooking(row);
      const updated = await tx.query<Row>(`UPDATE bookings SET number = $2, updated_at = now() WHERE id = $1 RETURNING *`, [id, number]);
      return toBooking(updated.rows[0] as Row);
    });
  }

  /** Cancels a booking; cancelling a cancelled booking returns it unchanged. */
  async cancel(id: string): Promise<Booking> {
    return this.db.transaction(async (tx) => {
      const row = await this.lockRow(tx, id);
      if (row.state === 'cancelled') return toBooking(row);
      const updated = await tx.query<Row>(
        `UPDATE bookings SET state = 'cancelled', cancelled_at = now(), updated_at = now() WHERE id = $1 RETURNING *`,
        [id],
      );
      return toBooking(updated.rows[0] as Row);
    });
  }

  /** Flushes and closes the database and releases the directory lock. */
  async close(): Promise<void> {
    try {
      await this.db.close();
    } finally {
      await rm(this.lockPath, { force: true });
    }
  }

  private async lockRow(tx: Transaction, id: string): Promise<Row> {
    const row = (await tx.query<Row>(`SELECT * FROM bookings WHERE id = $1 FOR UPDATE`, [id])).rows[0];
    if (!row) throw new BookingRejectedError('not_found', `no booking with id ${JSON.stringify(id)}`);
    return row;
  }
}
