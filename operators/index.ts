// The operators `bosun run` knows, by name.
import type { ControllerSpec, CustomResource } from 'bosun';
import { ApplicationResource } from './application/resource.js';
import { applicationController } from './application/reconciler.js';
import { FlightTicketResource } from './flightticket/resource.js';
import { configFromEnv } from './flightticket/config.js';
import { flightTicketController } from './flightticket/reconciler.js';
import { MessageResource } from './message/resource.js';
import { messageHandlers } from './message/handlers.js';
import { messageController } from './message/reconciler.js';

/** Each runnable operator: its controllers and a one-line description for `bosun run --help`. */
export const OPERATORS: Record<string, { description: string; controllers: () => ControllerSpec[] }> = {
  message: { description: 'Message → one Pod printing its text (reconcile style)', controllers: () => [messageController] },
  'message-handlers': { description: 'the same Message operator in the kopf style (handlers)', controllers: () => [messageHandlers] },
  flightticket: { description: 'FlightTicket → one booking at the booking service ($FLIGHTTICKET_BOOKING_URL, key from $FLIGHTTICKET_API_KEY_SECRET)', controllers: () => [flightTicketController(configFromEnv())] },
  application: { description: 'Application → a Deployment and a ClusterIP Service, status mirrors readiness', controllers: () => [applicationController] },
};

/** Every custom resource the operators define: `bosun generate` writes their CRDs to config/crd. */
export const RESOURCES: readonly CustomResource[] = [MessageResource, ApplicationResource, FlightTicketResource];
