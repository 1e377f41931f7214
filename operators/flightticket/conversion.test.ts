// FlightTicket v1 ↔ v2: examples of each conversion rule, and round trips over 1,000 seeded random valid
// objects of each version (a failure prints the seed and the object, so it replays).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mulberry32 } from './booking/faults.js';
import { ROUTES } from './booking/types.js';
import { FlightTicketVersions, V2_FIELDS_ANNOTATION, placeholderName, v1ToV2, v2ToV1 } from './conversion.js';
import { FlightTicketResource, type FlightTicket, type FlightTicketStatus } from './resource.js';
import { CABINS, FlightTicketV2, MAX_PASSENGERS, type FlightTicketV2Object, type FlightTicketV2Status } from './v2.js';

const meta = { name: 't', namespace: 'ns', uid: '0b0e6f0c-1', resourceVersion: '42', generation: 3 };
const v1 = (spec: FlightTicket['spec'], extra: Partial<FlightTicket> = {}): FlightTicket => ({
  apiVersion: 'flights.com/v1',
  kind: 'FlightTicket',
  metadata: { ...meta },
  spec,
  ...extra,
});
const v2 = (spec: FlightTicketV2Object['spec'], extra: Partial<FlightTicketV2Object> = {}): FlightTicketV2Object => ({
  apiVersion: 'flights.com/v2',
  kind: 'FlightTicket',
  metadata: { ...meta },
  spec,
  ...extra,
});

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

void describe('FlightTicketVersions', () => {
  void test('v2 is the hub, v1 the one spoke and the storage version', () => {
    assert.equal(FlightTicketVersions.hub, FlightTicketV2);
    assert.equal(FlightTicketVersions.storage, FlightTicketResource);
    assert.deepEqual(
      FlightTicketVersions.versions.map((v) => v.version),
      ['v2', 'v1'],
    );
    assert.equal(FlightTicketVersions.path, '/convert/flighttickets.flights.com');
  });
});

void describe('v1 ↔ v2 examples', () => {
  void test('a v1 ticket from before the upgrade reads as placeholder passengers in economy, and back unchanged', () => {
    const old = deepFreeze(v1({ from: 'ICN', to: 'NRT', number: 3 }));
    const hub = v1ToV2(old);
    assert.deepEqual(hub.spec, {
      route: { from: 'ICN', to: 'NRT' },
      passengers: [{ name: 'Passenger 1' }, { name: 'Passenger 2' }, { name: 'Passenger 3' }],
      cabin: 'economy',
    });
    assert.equal(hub.metadata.annotations, undefined);
    assert.deepEqual(FlightTicketV2.validateSpec(hub), []);
    assert.deepEqual(v2ToV1(hub), old);
  });

  void test('names and cabin v1 cannot hold go into the annotation, exactly, and come out of it again', () => {
    const ticket = deepFreeze(
      v2(
        { route: { from: 'ICN', to: 'JFK' }, passengers: [{ name: 'Ada Lovelace' }, { name: 'Kim Min-jun' }], cabin: 'business' },
        { metadata: { ...meta, annotations: { note: 'keep me' } } },
      ),
    );
    const down = v2ToV1(ticket);
    assert.deepEqual(down.spec, { from: 'ICN', to: 'JFK', number: 2 });
    assert.deepEqual(down.metadata.annotations, {
      note: 'keep me',
      [V2_FIELDS_ANNOTATION]: '{"passengers":[{"name":"Ada Lovelace"},{"name":"Kim Min-jun"}],"cabin":"business"}',
    });
    assert.deepEqual(FlightTicketResource.validateSpec(down), []);
    assert.deepEqual(v1ToV2(down), ticket);
  });

  void test('placeholders in economy need no annotation; one named passenger or another cabin does', () => {
    const placeholders = [{ name: placeholderName(0) }, { name: placeholderName(1) }];
    const implied = v2ToV1(v2({ route: { from: 'GMP', to: 'CJU' }, passengers: placeholders, cabin: 'economy' }));
    assert.equal(implied.metadata.annotations, undefined);
    const first = v2ToV1(v2({ route: { from: 'GMP', to: 'CJU' }, passengers: placeholders, cabin: 'first' }));
    assert.ok(first.metadata.annotations?.[V2_FIELDS_ANNOTATION]);
    // "Passenger 2" first is a name, not the placeholder of seat 1.
    const swapped = v2ToV1(v2({ route: { from: 'GMP', to: 'CJU' }, passengers: [...placeholders].reverse(), cabin: 'economy' }));
    assert.ok(swapped.metadata.annotations?.[V2_FIELDS_ANNOTATION]);
  });

  void test('a v1 client that changed number after the annotation was written: the first names stay, new seats get placeholders', () => {
    const named = v2ToV1(
      v2({ route: { from: 'ICN', to: 'LAX' }, passengers: [{ name: 'A' }, { name: 'B' }, { name: 'C' }], cabin: 'premiumEconomy' }),
    );
    const fewer = v1ToV2({ ...named, spec: { ...named.spec!, number: 2 } });
    assert.deepEqual(fewer.spec?.passengers, [{ name: 'A' }, { name: 'B' }]);
    assert.equal(fewer.spec?.cabin, 'premiumEconomy');
    const more = v1ToV2({ ...named, spec: { ...named.spec!, number: 4 } });
    assert.deepEqual(more.spec?.passengers, [{ name: 'A' }, { name: 'B' }, { name: 'C' }, { name: 'Passenger 4' }]);
    // The change applied, the annotation is rewritten for it on the way back, and is stable from then on.
    assert.deepEqual(v1ToV2(v2ToV1(fewer)), fewer);
  });

  void test('an annotation the conversion did not write (not JSON, wrong shape, reformatted) travels through v2 untouched', () => {
    for (const value of [
      'not json',
      '{"passengers":[],"cabin":"economy"}',
      '{"passengers":[{"name":"A"}],"cabin":"steerage"}',
      '{"cabin":"business","passengers":[{"name":"A"}]}',
      '{ "passengers": [{"name":"A"}], "cabin": "business" }',
    ]) {
      const ticket = deepFreeze(
        v1({ from: 'ICN', to: 'NRT', number: 1 }, { metadata: { ...meta, annotations: { [V2_FIELDS_ANNOTATION]: value } } }),
      );
      const hub = v1ToV2(ticket);
      assert.equal(hub.metadata.annotations?.[V2_FIELDS_ANNOTATION], value);
      assert.deepEqual(hub.spec?.passengers, [{ name: 'Passenger 1' }]);
      assert.deepEqual(v2ToV1(hub), ticket);
    }
  });

  void test('the status maps field for field: bookedFrom/To/Number ↔ booked.from/to/seats, the rest as is', () => {
    const status: FlightTicketStatus = {
      state: 'Booked',
      bookingId: 'bk_1',
      observedGeneration: 3,
      bookedFrom: 'ICN',
      bookedTo: 'NRT',
      bookedNumber: 2,
      conditions: [{ type: 'Ready', status: 'True', reason: 'Booked', message: 'ok', lastTransitionTime: '2025-01-01T00:00:00Z' }],
    };
    const hub = v1ToV2(v1({ from: 'ICN', to: 'NRT', number: 2 }, { status }));
    assert.deepEqual(hub.status, {
      state: 'Booked',
      bookingId: 'bk_1',
      observedGeneration: 3,
      booked: { from: 'ICN', to: 'NRT', seats: 2 },
      conditions: status.conditions,
    });
    assert.deepEqual(v1ToV2(v1({ from: 'ICN', to: 'NRT', number: 2 }, { status: { state: 'Pending' } })).status, { state: 'Pending' });
  });
});

// ---- random valid objects ----

type Rand = () => number;
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const chance = (r: Rand, p: number) => r() < p;
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const NAME_CHARS = ['a', 'e', 'k', 'Z', 'é', 'ß', '김', '민', 'ж', '-', "'", '.', ' ', '  '];

function iata(r: Rand): string {
  return chance(r, 0.5) ? pick(r, ROUTES)[int(r, 0, 1)]! : Array.from({ length: 3 }, () => pick(r, [...LETTERS])).join('');
}
/** A name the v2 schema accepts: 1–100 characters, no blank at either end. */
function personName(r: Rand): string {
  const inner = Array.from({ length: int(r, 0, 20) }, () => pick(r, NAME_CHARS)).join('');
  return `${pick(r, ['A', 'é', '김', 'O'])}${inner}${pick(r, ['n', 'ß', '민', '.'])}`.slice(0, 100);
}
/** Whatever v1 accepted before v2 existed: codes, lower case, city names. */
function v1Place(r: Rand): string {
  return pick(r, [iata, (x: Rand) => iata(x).toLowerCase(), personName, () => ' ICN '])(r);
}
function otherMeta(r: Rand): FlightTicket['metadata'] {
  const m: FlightTicket['metadata'] = {
    name: `t-${int(r, 0, 1e6)}`,
    namespace: 'ns',
    uid: `uid-${int(r, 0, 1e9)}`,
    generation: int(r, 1, 9),
  };
  if (chance(r, 0.4)) m.labels = { team: pick(r, ['a', 'b']) };
  if (chance(r, 0.4)) m.annotations = { 'example.com/note': personName(r) };
  if (chance(r, 0.2)) m.finalizers = ['flights.com/cancel-booking'];
  return m;
}
function randomStatusV1(r: Rand): FlightTicketStatus | undefined {
  if (chance(r, 0.3)) return undefined;
  const s: FlightTicketStatus = {};
  if (chance(r, 0.6)) s.state = pick(r, ['Pending', 'Booked', 'Failed', 'Cancelling'] as const);
  if (chance(r, 0.5)) s.bookingId = `bk_${int(r, 0, 1e6)}`;
  if (chance(r, 0.5)) s.observedGeneration = int(r, 1, 9);
  if (chance(r, 0.5)) s.bookedFrom = iata(r);
  if (chance(r, 0.5)) s.bookedTo = iata(r);
  if (chance(r, 0.5)) s.bookedNumber = int(r, 1, 10);
  if (chance(r, 0.3))
    s.conditions = [{ type: 'Ready', status: 'False', reason: 'Booking', message: 'm', lastTransitionTime: '2025-01-01T00:00:00Z' }];
  return s;
}
function randomStatusV2(r: Rand): FlightTicketV2Status | undefined {
  const s1 = randomStatusV1(r);
  if (!s1) return undefined;
  const { bookedFrom, bookedTo, bookedNumber, ...s } = s1;
  const booked = {
    ...(bookedFrom !== undefined ? { from: bookedFrom } : {}),
    ...(bookedTo !== undefined ? { to: bookedTo } : {}),
    ...(bookedNumber !== undefined ? { seats: bookedNumber } : {}),
  };
  return Object.keys(booked).length ? { ...s, booked } : s;
}

/** A valid v2 ticket: never with the conversion's annotation, which the validating webhook refuses on v2. */
function randomV2(r: Rand): FlightTicketV2Object {
  const from = iata(r);
  let to = iata(r);
  while (to === from) to = iata(r);
  const allPlaceholders = chance(r, 0.3);
  const passengers = Array.from({ length: int(r, 1, MAX_PASSENGERS) }, (_, i) => ({
    name: allPlaceholders || chance(r, 0.2) ? placeholderName(chance(r, 0.9) ? i : i + 1) : personName(r),
  }));
  const cabin = chance(r, 0.5) ? 'economy' : pick(r, CABINS);
  const t: FlightTicketV2Object = {
    apiVersion: 'flights.com/v2',
    kind: 'FlightTicket',
    metadata: otherMeta(r),
    spec: { route: { from, to }, passengers, cabin },
  };
  const status = randomStatusV2(r);
  if (status) t.status = status;
  return t;
}

/** A valid v1 ticket: as written before v2 (no annotation), as v2 left it, or with foreign text under the key. */
function randomV1(r: Rand): FlightTicket {
  const kind = r();
  if (kind < 0.3) {
    // Written through v2 and read back as v1, then maybe edited by a v1 client without touching number.
    const t = v2ToV1(randomV2(r));
    if (chance(r, 0.5)) t.metadata = { ...t.metadata, labels: { edited: 'yes' } };
    if (chance(r, 0.5)) t.spec = { ...t.spec!, from: v1Place(r) };
    if (t.spec!.from === t.spec!.to) t.spec = { ...t.spec!, from: `${t.spec!.to}X` };
    return t;
  }
  const from = v1Place(r);
  let to = v1Place(r);
  while (to === from) to = v1Place(r);
  const t: FlightTicket = {
    apiVersion: 'flights.com/v1',
    kind: 'FlightTicket',
    metadata: otherMeta(r),
    spec: { from, to, number: int(r, 1, 10) },
  };
  if (kind > 0.9) t.metadata.annotations = { ...t.metadata.annotations, [V2_FIELDS_ANNOTATION]: pick(r, ['{}', 'x', '{"cabin":"first"}']) };
  const status = randomStatusV1(r);
  if (status) t.status = status;
  return t;
}

const SEED = 20251;
const N = 1000;

void describe('v1 ↔ v2 round trips (seeded, 1,000 objects each)', () => {
  void test('v1 → v2 → v1 is the identity for every generated valid v1 ticket', () => {
    const r = mulberry32(SEED);
    for (let i = 0; i < N; i++) {
      const ticket = deepFreeze(randomV1(r));
      assert.deepEqual(FlightTicketResource.validateSpec(ticket), [], `seed ${SEED} #${i}: the generator made an invalid v1 ticket`);
      const hub = v1ToV2(ticket);
      assert.deepEqual(v2ToV1(hub), ticket, `seed ${SEED} #${i}: ${JSON.stringify(ticket)}`);
      // Whatever v1 held, v2 sees it as passengers of a valid count and a valid cabin.
      assert.equal(hub.spec?.passengers.length, ticket.spec?.number);
      assert.ok(CABINS.includes(hub.spec!.cabin));
    }
  });

  void test('v2 → v1 → v2 is the identity for every generated valid v2 ticket, and v1 is always valid', () => {
    const r = mulberry32(SEED + 1);
    for (let i = 0; i < N; i++) {
      const ticket = deepFreeze(randomV2(r));
      assert.deepEqual(FlightTicketV2.validateSpec(ticket), [], `seed ${SEED + 1} #${i}: the generator made an invalid v2 ticket`);
      const down = v2ToV1(ticket);
      assert.deepEqual(FlightTicketResource.validateSpec(down), [], `seed ${SEED + 1} #${i}: v1 form invalid: ${JSON.stringify(down)}`);
      assert.deepEqual(v1ToV2(down), ticket, `seed ${SEED + 1} #${i}: ${JSON.stringify(ticket)}`);
    }
  });
});
