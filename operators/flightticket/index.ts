// The FlightTicket operator package's entry: the resource in both versions, their conversion, the controller
// and the admission webhooks, each built from the same booking-service configuration.
export { FlightTicketResource, type FlightTicket, type FlightTicketSpec, type FlightTicketStatus } from './resource.js';
export {
  FlightTicketV2,
  CABINS,
  DEFAULT_CABIN,
  type Cabin,
  type Passenger,
  type FlightTicketV2Object,
  type FlightTicketV2Spec,
  type FlightTicketV2Status,
} from './v2.js';
export { FlightTicketVersions, V2_FIELDS_ANNOTATION, placeholderName, v1ToV2, v2ToV1 } from './conversion.js';
export {
  flightTicketWebhooks,
  validateTicket,
  normalizeTicket,
  CachedRoutes,
  ROUTE_WEBHOOK_NAME,
  NORMALIZE_WEBHOOK_NAME,
  type RouteSource,
  type FlightTicketWebhooksOptions,
} from './webhooks.js';
export { flightTicketController, FINALIZER } from './reconciler.js';
export { configFromEnv, FlightTicketConfigError, type FlightTicketConfig } from './config.js';
