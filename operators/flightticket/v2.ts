// FlightTicket v2: the ticket as an airline's booking API models it, a route between two IATA airports,
// the passengers by name and a cabin class. Served beside v1 and converted through it (conversion.ts);
// v1 stays the storage version and the one the controller reads this round.
import { Type, type Static } from '@sinclair/typebox';
import { ConditionsSchema, cel, defineResource, type ObjectOf } from 'bosun';

/** The cabin classes a ticket can be booked in, cheapest first. */
export const CABINS = ['economy', 'premiumEconomy', 'business', 'first'] as const;
/** A FlightTicket's cabin class. */
export type Cabin = (typeof CABINS)[number];
/** The cabin of a ticket that names none, and of every ticket booked through v1. */
export const DEFAULT_CABIN: Cabin = 'economy';

/** Fewest passengers one ticket books (the booking service's fewest seats, v1's spec.number minimum). */
export const MIN_PASSENGERS = 1;
/** Most passengers one ticket books (the booking service's most seats, v1's spec.number maximum). */
export const MAX_PASSENGERS = 10;

// Upper case only: the booking service compares codes exactly, and the mutating webhook (webhooks.ts)
// upper-cases what clients write, so the pattern only refuses what normalising could not fix.
const IATA_PATTERN = '^[A-Z]{3}$';

const airport = (what: string) =>
  Type.String({ pattern: IATA_PATTERN, description: `IATA code of the ${what} airport, three upper-case letters, e.g. ICN.` });

/** Schema of FlightTicket.spec.route: where the flight goes. */
export const RouteSchema = Type.Object(
  { from: airport('departure'), to: airport('arrival') },
  {
    description: 'The flight: departure and arrival airport; the booking service must fly it.',
    'x-kubernetes-validations': [cel('self.from != self.to', 'spec.route.from and spec.route.to must differ')],
  },
);

/** Schema of one passenger. */
export const PassengerSchema = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 100,
      // No leading or trailing blank: the name printed on the ticket is the one stored.
      pattern: '^\\S(.*\\S)?$',
      description: 'Full name as in the travel document. Tickets booked through v1 carry "Passenger 1" … "Passenger n" until named.',
    }),
  },
  { description: 'One passenger, one seat.' },
);

/** Schema of FlightTicket.spec (v2): route, passengers, cabin. */
export const FlightTicketV2SpecSchema = Type.Object(
  {
    route: RouteSchema,
    passengers: Type.Array(PassengerSchema, {
      minItems: MIN_PASSENGERS,
      maxItems: MAX_PASSENGERS,
      description: `The passengers, one seat each (${MIN_PASSENGERS} to ${MAX_PASSENGERS}).`,
    }),
    // Required with a default: the API server fills it in when a client leaves it out, so every stored
    // ticket names its cabin and readers never have to guess what an absent cabin means.
    cabin: Type.Union(
      CABINS.map((c) => Type.Literal(c)),
      { default: DEFAULT_CABIN, description: `Cabin class: ${CABINS.join(', ')} (default ${DEFAULT_CABIN}).` },
    ),
  },
  { description: 'The ticket to book.' },
);

/** Schema of FlightTicket.status.booked: what the current booking holds. */
export const BookedSchema = Type.Object(
  {
    from: Type.Optional(Type.String({ description: 'Departure of the current booking.' })),
    to: Type.Optional(Type.String({ description: 'Arrival of the current booking.' })),
    seats: Type.Optional(Type.Integer({ description: 'Seats the current booking holds.' })),
  },
  // Absent, not empty, when nothing is booked: v1 spells it as three absent fields, and both spellings must map one to one.
  { minProperties: 1, description: 'What the current booking holds; absent until something is booked.' },
);

/** Schema of FlightTicket.status (v2): v1's, with the booking's route and seats grouped under `booked`. */
export const FlightTicketV2StatusSchema = Type.Object(
  {
    bookingId: Type.Optional(Type.String({ description: 'Identifier of the booking at the booking service.' })),
    state: Type.Optional(
      Type.Union([Type.Literal('Pending'), Type.Literal('Booked'), Type.Literal('Failed'), Type.Literal('Cancelling')], {
        description: 'State of the booking: Pending, Booked, Failed or Cancelling.',
      }),
    ),
    conditions: Type.Optional(ConditionsSchema),
    observedGeneration: Type.Optional(
      Type.Integer({ format: 'int64', description: 'The .metadata.generation this status was computed from.' }),
    ),
    booked: Type.Optional(BookedSchema),
  },
  { description: 'Observed state of the FlightTicket, written by the operator.' },
);

/** The FlightTicket custom resource at version v2 (flighttickets.flights.com/v2), the hub of its versions. */
export const FlightTicketV2 = defineResource({
  group: 'flights.com',
  version: 'v2',
  kind: 'FlightTicket',
  plural: 'flighttickets',
  shortNames: ['ft'],
  scope: 'Namespaced',
  description: 'FlightTicket books seats on a flight for named passengers and keeps the booking in line with the spec.',
  spec: FlightTicketV2SpecSchema,
  status: FlightTicketV2StatusSchema,
  printerColumns: [
    { name: 'From', jsonPath: '.spec.route.from' },
    { name: 'To', jsonPath: '.spec.route.to' },
    { name: 'Cabin', jsonPath: '.spec.cabin' },
    { name: 'State', jsonPath: '.status.state' },
    { name: 'Booking', jsonPath: '.status.bookingId' },
  ],
});

/** FlightTicket.spec at v2 as a TypeScript type. */
export type FlightTicketV2Spec = Static<typeof FlightTicketV2SpecSchema>;
/** FlightTicket.status at v2 as a TypeScript type. */
export type FlightTicketV2Status = Static<typeof FlightTicketV2StatusSchema>;
/** One passenger of a v2 ticket. */
export type Passenger = Static<typeof PassengerSchema>;
/** A FlightTicket object at v2. */
export type FlightTicketV2Object = ObjectOf<typeof FlightTicketV2>;
