import { Type, type Static } from '@sinclair/typebox';
import { ConditionsSchema, cel, defineResource, type ObjectOf } from 'bosun';

/** Schema of FlightTicket.spec: the route and the number of seats. */
export const FlightTicketSpecSchema = Type.Object(
  {
    from: Type.String({ minLength: 1, description: 'Departure airport or city of the flight.' }),
    to: Type.String({ minLength: 1, description: 'Arrival airport or city of the flight; must differ from from.' }),
    number: Type.Integer({ minimum: 1, maximum: 10, description: 'Number of seats to book (1 to 10).' }),
  },
  {
    description: 'The ticket to book.',
    // A cross-field rule: only CEL can express it in a CRD, and the API server then enforces it for every client.
    'x-kubernetes-validations': [cel('self.from != self.to', 'spec.from and spec.to must differ')],
  },
);

/** Schema of FlightTicket.status: the booking and what it was made for. */
export const FlightTicketStatusSchema = Type.Object(
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
    bookedNumber: Type.Optional(Type.Integer({ description: 'Number of seats the current booking holds.' })),
    bookedFrom: Type.Optional(Type.String({ description: 'Departure of the current booking.' })),
    bookedTo: Type.Optional(Type.String({ description: 'Arrival of the current booking.' })),
  },
  { description: 'Observed state of the FlightTicket, written by the operator.' },
);

/** The FlightTicket custom resource (flighttickets.flights.com/v1): a seat booking kept in sync with a booking service. */
export const FlightTicketResource = defineResource({
  group: 'flights.com',
  version: 'v1',
  kind: 'FlightTicket',
  plural: 'flighttickets',
  shortNames: ['ft'],
  scope: 'Namespaced',
  description: 'FlightTicket books seats on a flight and keeps the booking in line with the spec.',
  spec: FlightTicketSpecSchema,
  status: FlightTicketStatusSchema,
  printerColumns: [
    { name: 'From', jsonPath: '.spec.from' },
    { name: 'To', jsonPath: '.spec.to' },
    { name: 'Number', jsonPath: '.spec.number' },
    { name: 'State', jsonPath: '.status.state' },
    { name: 'Booking', jsonPath: '.status.bookingId' },
  ],
});

/** FlightTicket.spec as a TypeScript type. */
export type FlightTicketSpec = Static<typeof FlightTicketSpecSchema>;
/** FlightTicket.status as a TypeScript type. */
export type FlightTicketStatus = Static<typeof FlightTicketStatusSchema>;
/** A FlightTicket object, as `ctx.cache.get(FlightTicketResource, ns, name)` returns it. */
export type FlightTicket = ObjectOf<typeof FlightTicketResource>;
