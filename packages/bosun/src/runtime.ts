/**
 * bosun/runtime: the machinery under a controller, usable on its own — a list-then-watch loop, an informer
 * and its read-only store, the work queue and its rate limiters, the worker loop, leader election, events,
 * metrics, logging and the webhook server. `bosun` composes these; reach for them here to build something it does not.
 */

// watch: list (or stream the state) then watch, relist on 410, reconnect with backoff.
export {
  runWatcher,
  clientListWatcher,
  Backoff,
  WatchStreamError,
  INITIAL_EVENTS_END,
  type ListWatcher,
  type WatchRequest,
  type SourcePage,
  type ClientListWatcherOptions,
  type WatcherEvent,
  type WatcherOptions,
  type WatcherHooks,
  type BackoffOptions,
  type RestartReason,
} from './watch/watcher.js';

// cache: a store per kind fed by a watcher, and the changes its informer emits.
export {
  Informer,
  CacheSet,
  CacheStartedError,
  labelSelectorOf,
  type InformerOptions,
  type ListWatcherFactory,
  type CacheSetOptions,
  type CacheScope,
  type CacheTransform,
  type WatchScope,
} from './cache/informer.js';
export {
  Store,
  OWNER_INDEX,
  CONTROLLER_INDEX,
  LABEL_INDEX,
  NAMESPACE_INDEX,
  UnknownIndexError,
  IndexerError,
  IndexConflictError,
  stripForCache,
  type IndexFunc,
} from './cache/store.js';
export { cacheReader, NotCachedError, type ReadSource } from './cache/reader.js';

// queue: per-key exclusive work queue and its rate limiters.
export { WorkQueue, type WorkQueueOptions, type QueueMetrics } from './queue/workqueue.js';
export {
  ItemExponentialRateLimiter,
  TokenBucketRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
  type RateLimiter,
  type ExponentialOptions,
  type TokenBucketOptions,
} from './queue/ratelimiter.js';
export { realClock, FakeClock, type Clock } from './queue/clock.js';

// controller: the worker loop and what a reconcile's outcome means for the queue.
export {
  Controller,
  DEFAULT_WORKERS,
  decide,
  type Decision,
  type ReconcileOutcome,
  type ReconcileObserver,
} from './controller/controller.js';

// Around it: leader election, events, metrics, logs.
export { LeaderElector, LeaderElectionConfigError, type LeaderElectorOptions, type LeaderElectionEnd } from './manager/lease.js';
export { EventRecorder, EventRecorderConfigError, type EventKind, type EventRecorderOptions } from './writes/events.js';
// One controller's own writes its cache may not show yet (the Manager keeps one per controller for its contexts).
export { OwnWrites } from './writes/own-writes.js';
export { Metrics, type MetricsOptions, type ReconcileResult } from './telemetry/metrics.js';
export { silentLogger } from './telemetry/logger.js';
export { parseRetryAfter } from './client/errors.js';

// webhooks: the HTTPS server answering admission and conversion reviews (the Manager runs it with `webhookServer`).
export {
  startWebhookServer,
  WebhookCertificateError,
  WebhookListenError,
  type WebhookServer,
  type WebhookServerOptions,
} from './webhook/server.js';
export { WebhookRequestError, WebhookTimeoutError, type ReviewResult } from './webhook/review.js';
// Certificates without cert-manager (the Manager runs the rotator with `webhookCerts`).
export {
  WebhookCertRotator,
  WebhookCertsConfigError,
  WebhookCertsSecretError,
  CaInjectionError,
  type WebhookCertsOptions,
  type WebhookCertRotatorOptions,
  type ObjectName,
} from './webhook/rotator.js';
