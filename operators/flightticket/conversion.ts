// FlightTicket v1 ↔ v2 through the hub (v2). v1 holds a route and a seat count; v2 adds who sits in the
// seats and the cabin. What v1 cannot hold travels in one annotation on the v1 object, so a ticket
// written in either version reads back unchanged in that version after a trip through the other.
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { defineVersions, spoke, type ObjectMeta } from 'bosun';
import { FlightTicketResource, type FlightTicket, type FlightTicketSpec, type FlightTicketStatus } from './resource.js';
import {
  CABINS,
  DEFAULT_CABIN,
  FlightTicketV2,
  MAX_PASSENGERS,
  type Cabin,
  type FlightTicketV2Object,
  type FlightTicketV2Spec,
  type FlightTicketV2Status,
  type Passenger,
} from './v2.js';

/**
 * The annotation on a v1 ticket holding its v2-only fields, JSON `{"passengers":[{"name":…}],"cabin":…}`.
 * Written by the conversion to v1 only when those fields say more than v1 implies (named passengers or a
 * cabin other than economy) and removed again on the way to v2. Owned by the conversion: on a v2 ticket it has
 * no place (the validating webhook refuses it there), and text under it the conversion did not write is carried
 * through both ways untouched.
 */
export const V2_FIELDS_ANNOTATION = 'flights.com/v2-fields';

/**
 * The name of passenger `index` (from 0) of a ticket booked through v1, which names nobody: "Passenger 1",
 * "Passenger 2", …, so a v1 ticket of `number: 3` reads in v2 as three passengers to be named.
 */
export function placeholderName(index: number): string {
  return `Passenger ${index + 1}`;
}

const V2FieldsSchema = Type.Object(
  {
    passengers: Type.Array(Type.Object({ name: Type.String({ minLength: 1 }) }, { additionalProperties: false }), {
      minItems: 1,
      maxItems: MAX_PASSENGERS,
    }),
    cabin: Type.Union(CABINS.map((c) => Type.Literal(c))),
  },
  { additionalProperties: false },
);
type V2Fields = Static<typeof V2FieldsSchema>;

// One spelling for one content: the annotation is only consumed when it is byte for byte what this writes,
// so anything else (hand-written, reformatted) is carried through untouched and still reads back as written.
function encode(fields: V2Fields): string {
  return JSON.stringify({ passengers: fields.passengers.map((p) => ({ name: p.name })), cabin: fields.cabin });
}

function decode(value: string | undefined): V2Fields | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (!Value.Check(V2FieldsSchema, parsed)) return undefined;
  return encode(parsed) === value ? parsed : undefined;
}

/** Whether v2's passengers and cabin say nothing v1's seat count does not: then no annotation is needed. */
function impliedByV1(passengers: readonly Passenger[], cabin: Cabin): boolean {
  return cabin === DEFAULT_CABIN && passengers.every((p, i) => p.name === placeholderName(i));
}

function withAnnotation(meta: ObjectMeta, value: string | undefined): ObjectMeta {
  const annotations = { ...meta.annotations };
  if (value === undefined) delete annotations[V2_FIELDS_ANNOTATION];
  else annotations[V2_FIELDS_ANNOTATION] = value;
  const out: ObjectMeta = { ...meta, annotations };
  // The API server stores no empty map, so a valid object never has `annotations: {}`.
  if (Object.keys(annotations).length === 0) delete out.annotations;
  return out;
}

/**
 * v1 → v2. `number` seats become that many passengers: named from the annotation when it holds them (its
 * first `number`, then placeholders, should a v1 client have changed `number` since), otherwise
 * "Passenger 1" … "Passenger n"; the cabin comes from the annotation, else economy. An annotation this
 * module did not write is left on the object as it is, so it reaches v1 again unchanged.
 */
export function v1ToV2(ticket: FlightTicket): FlightTicketV2Object {
  const { spec, status, ...rest } = ticket;
  // Without a spec there is nothing to put the fields into: the annotation then stays where it is.
  const fields = spec ? decode(ticket.metadata.annotations?.[V2_FIELDS_ANNOTATION]) : undefined;
  const out: FlightTicketV2Object = { ...rest, metadata: fields ? withAnnotation(ticket.metadata, undefined) : ticket.metadata };
  if (spec) out.spec = specToV2(spec, fields);
  if (status) out.status = statusToV2(status);
  return out;
}

/**
 * v2 → v1. The passengers become `number`, the route `from` and `to`; passenger names and the cabin go into
 * the V2_FIELDS_ANNOTATION unless v1's seat count implies them (placeholders only, economy).
 */
export function v2ToV1(ticket: FlightTicketV2Object): FlightTicket {
  const { spec, status, ...rest } = ticket;
  const out: FlightTicket = { ...rest };
  if (spec) {
    const { route, passengers, cabin, ...unknown } = spec;
    out.spec = { ...unknown, from: route.from, to: route.to, number: passengers.length };
    // Absent when implied: a v1 ticket that never saw v2 gets no annotation on its way back.
    if (!impliedByV1(passengers, cabin)) out.metadata = withAnnotation(ticket.metadata, encode({ passengers, cabin }));
  }
  if (status) out.status = statusToV1(status);
  return out;
}

function specToV2(spec: FlightTicketSpec, fields: V2Fields | undefined): FlightTicketV2Spec {
  const { from, to, number, ...unknown } = spec;
  // Clamped only so a malformed object cannot make a huge array; the v1 schema keeps number in 1..10.
  const seats = Math.max(0, Math.min(MAX_PASSENGERS, Math.trunc(number)));
  const named = fields?.passengers ?? [];
  const passengers = Array.from({ length: seats }, (_, i) => ({ name: named[i]?.name ?? placeholderName(i) }));
  return { ...unknown, route: { from, to }, passengers, cabin: fields?.cabin ?? DEFAULT_CABIN };
}

// The status maps field for field (`bookedFrom/To/Number` ↔ `booked.from/to/seats`) and never through the
// annotation: status writes go through the status subresource, which ignores metadata.
function statusToV2(status: FlightTicketStatus): FlightTicketV2Status {
  const { bookedFrom, bookedTo, bookedNumber, ...same } = status;
  const out: FlightTicketV2Status = { ...same };
  const booked: NonNullable<FlightTicketV2Status['booked']> = {};
  if (bookedFrom !== undefined) booked.from = bookedFrom;
  if (bookedTo !== undefined) booked.to = bookedTo;
  if (bookedNumber !== undefined) booked.seats = bookedNumber;
  if (Object.keys(booked).length > 0) out.booked = booked;
  return out;
}

function statusToV1(status: FlightTicketV2Status): FlightTicketStatus {
  const { booked, ...same } = status;
  const out: FlightTicketStatus = { ...same };
  if (booked?.from !== undefined) out.bookedFrom = booked.from;
  if (booked?.to !== undefined) out.bookedTo = booked.to;
  if (booked?.seats !== undefined) out.bookedNumber = booked.seats;
  return out;
}

/**
 * The served versions of flighttickets.flights.com: v2 is the hub, v1 its one spoke, and v1 stays the
 * storage version (the controller reads v1; moving storage to v2 later needs `bosun crd migrate`).
 */
export const FlightTicketVersions = defineVersions(FlightTicketV2, {
  spokes: [spoke(FlightTicketV2, { resource: FlightTicketResource, toHub: v1ToV2, fromHub: v2ToV1 })],
  storage: FlightTicketResource,
});
