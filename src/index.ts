/**
 * bosun: write Kubernetes operators in TypeScript.
 *
 * The data path, in the order the folders read: client → watcher → cache → queue → controller
 * (reconcile or kopf-style handlers) → writes through the client; a manager runs it all.
 */
export * from './client/types.js';
export * from './client/errors.js';
export { KubeClient, type KubeClientConfig } from './client/client.js';
// Each built-in kind is a value (the handle) and a type (the object) of one name. Listed here, not re-exported with *,
// so this CustomResourceDefinition (the object read from the API) wins over src/crd's generated-manifest type.
export { Pod, Event, Deployment, Service, Secret, ConfigMap, Lease, Namespace, CustomResourceDefinition } from './client/resources.js';
export type {
  LabelSelector, ObjectCondition, Container, ContainerState, ContainerStatus, PodSpec, PodStatus, ObjectReference,
  DeploymentSpec, DeploymentStatus, ServicePort, ServiceSpec, LeaseSpec,
  CustomResourceDefinitionVersion, CustomResourceDefinitionSpec, CustomResourceDefinitionStatus,
} from './client/resources.js';
export { CacheSet, Informer } from './cache/informer.js';
export { Store } from './cache/store.js';
export { WorkQueue } from './queue/workqueue.js';
export * from './queue/ratelimiter.js';
export * from './reconcile/types.js';
export * from './predicate/predicate.js';
export * from './handler/enqueue.js';
export { Controller, DEFAULT_WORKERS, decide, type Decision, type ReconcileOutcome, type ReconcileObserver } from './controller/controller.js';
export { controller, ControllerBuilder, type ControllerSpec, type Reconciler, type OwnsOptions, type WatchesOptions } from './controller/builder.js';
export { ReconcileContext, ChildInvalidError, NoOwnerError, StatusPreconditionError, CHILD_INVALID, appliedAnnotation, type CacheReader, type EventSink, type PrimaryRef, type StatusUpdate } from './controller/context.js';
export { controllerRef, isControlledBy, childNamespace, OwnerScopeError } from './controller/owner.js';
export * from './causes/handlers.js';
export * from './finalizer/finalizer.js';
export * from './status/conditions.js';
export { jsonEqual } from './status/equal.js';
export { Manager, LeaderElectionLostError, CacheSyncTimeoutError, ShutdownTimeoutError, type ManagerOptions, type LeaderElectionOptions, type UnsyncedKind } from './manager/manager.js';
export { createLogger, objectLogger, type Logger } from './log/logger.js';
export { Metrics } from './metrics/metrics.js';
export * from './crd/index.js';
