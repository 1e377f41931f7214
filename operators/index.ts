// This repository's project module (package.json's bosun.project): the operators `bosun run` knows by name, and
// what `bosun generate` makes config/crd and config/rbac from.
import {
  Secret,
  type AdmissionWebhook,
  type ApiVersions,
  type ControllerSpec,
  type CustomResource,
  type NamedRead,
  type OperatorEntry,
} from 'bosun';
import { ApplicationResource } from './application/resource.js';
import { applicationController } from './application/reconciler.js';
import { FlightTicketVersions } from './flightticket/conversion.js';
import { FlightTicketResource } from './flightticket/resource.js';
import { configFromEnv } from './flightticket/config.js';
import { flightTicketController } from './flightticket/reconciler.js';
import { flightTicketWebhooks } from './flightticket/webhooks.js';
import { MessageResource } from './message/resource.js';
import { messageHandlers } from './message/handlers.js';
import { messageController } from './message/reconciler.js';

/** The namespace the operator Deployment runs in (config/default sets it; overlays may change it). */
export const namespace = 'bosun-system';
/** The prefix of the operator's ServiceAccount, roles and bindings. */
export const prefix = 'bosun';
/** The Secret (in the operator namespace) holding the booking-service API key FlightTicket reads. */
export const FLIGHTTICKET_API_KEY_SECRET_NAME = 'flightticket-api-key';

/** Each runnable operator: its controllers and a one-line description for `bosun run --help`. */
export const operators: Record<string, OperatorEntry> = {
  message: { description: 'Message → one Pod printing its text (reconcile style)', controllers: () => [messageController] },
  'message-handlers': { description: 'the same Message operator in the kopf style (handlers)', controllers: () => [messageHandlers] },
  flightticket: {
    description: 'FlightTicket → one booking at the booking service ($FLIGHTTICKET_BOOKING_URL, key from $FLIGHTTICKET_API_KEY_SECRET)',
    controllers: () => [flightTicketController(configFromEnv())],
  },
  application: {
    description: 'Application → a Deployment and a ClusterIP Service, status mirrors readiness',
    controllers: () => [applicationController],
  },
};

/** Every custom resource the operators define: `bosun generate` writes their CRDs to config/crd. */
export const resources: readonly CustomResource[] = [MessageResource, ApplicationResource, FlightTicketResource];

/**
 * FlightTicket is served at v1 and v2 (the hub), stored at v1: one CRD with a conversion webhook, which
 * `bosun run flightticket` serves (and registers with a local API server) and config/webhook deploys.
 */
export const versions: readonly ApiVersions[] = [FlightTicketVersions];

/**
 * The admission webhooks, served by the process that runs the operator of their kind: FlightTicket's normaliser
 * and route check, configured from the environment at their first route lookup, as the controller is.
 */
export const webhooks: readonly AdmissionWebhook[] = flightTicketWebhooks(() => configFromEnv());

/**
 * The environment config/manager/manager.yaml gives the operators. The FlightTicket controller is built from the
 * environment; generation builds it with the values the Deployment uses, not the caller's shell.
 */
export const DEPLOYMENT_ENV: Readonly<Record<string, string>> = {
  FLIGHTTICKET_API_KEY_SECRET: `${namespace}/${FLIGHTTICKET_API_KEY_SECRET_NAME}`,
  FLIGHTTICKET_BOOKING_URL: `http://flightticket-booking.${namespace}.svc:8080`,
};

/** Every controller the deployed operator runs (RBAC is generated from what they declare), deduplicated. */
export const controllers: ControllerSpec[] = [
  ...new Set([
    messageController,
    messageHandlers,
    applicationController,
    flightTicketController(configFromEnv({ ...process.env, ...DEPLOYMENT_ENV })),
  ]),
];

/** The FlightTicket operator reads its API key by name, so a Role can name that one Secret. */
export const reads: NamedRead[] = [{ type: Secret, names: [FLIGHTTICKET_API_KEY_SECRET_NAME] }];
