/**
 * bosun: write Kubernetes operators in TypeScript.
 *
 * This entry point is what an operator author uses: declare a resource, build a controller (a reconciler,
 * or kopf-style handlers) and run it in a Manager. The machinery underneath (watcher, informer, store, work
 * queue, rate limiters) is `bosun/runtime`; CRD generation is `bosun/crd`; the test harness is `bosun/envtest`.
 */

// Objects and the kinds they belong to.
export type { KubeObject, ObjectMeta, OwnerReference, ResourceType, ObjectOf } from './client/types.js';
export { apiVersionOf, keyOf } from './client/types.js';
// Each built-in kind is a value (the handle) and a type (the object) of one name.
export { Pod, Event, Deployment, Service, Secret, ConfigMap, Lease, Namespace, CustomResourceDefinition } from './client/resources.js';
export type {
  LabelSelector,
  ObjectCondition,
  Container,
  ContainerState,
  ContainerStatus,
  PodSpec,
  PodStatus,
  ObjectReference,
  DeploymentSpec,
  DeploymentStatus,
  ServicePort,
  ServiceSpec,
  LeaseSpec,
  CustomResourceDefinitionVersion,
  CustomResourceDefinitionSpec,
  CustomResourceDefinitionStatus,
} from './client/resources.js';

// Custom resources declared in TypeScript (their CRD manifests: bosun/crd).
export { defineResource, assertValidSpec, cel, intOrString, SpecValidationError, ResourceDefinitionError } from './resource/resource.js';
export type { CustomResource, CustomObject, ResourceDefinition, SpecOf, StatusOf, PrinterColumn, FieldError } from './resource/resource.js';
export { ConditionSchema, ConditionsSchema, conditionsSchema, type Condition } from './resource/conditions.js';
export type { ValidationRule } from './resource/structural.js';

// Admission webhooks and API versions, declared beside the resource; the Manager serves them.
export {
  validatingWebhook,
  mutatingWebhook,
  defineVersions,
  spoke,
  allow,
  deny,
  WebhookDefinitionError,
  type AdmissionWebhook,
  type ValidatingWebhook,
  type MutatingWebhook,
  type ValidatingWebhookOptions,
  type MutatingWebhookOptions,
  type AdmissionRequest,
  type AdmissionVerdict,
  type AdmissionOperation,
  type AdmissionUser,
  type FailurePolicy,
  type WebhookPolicy,
  type ApiVersions,
  type Spoke,
  type VersionsOptions,
} from './webhook/declare.js';

// The client.
export { KubeClient, type KubeClientConfig, type RawRequest } from './client/client.js';
export type { TransportKind } from './client/transport.js';
export {
  ApiError,
  TransportError,
  RequestTimeoutError,
  DeadConnectionError,
  KubeConfigError,
  ObjectNameRequiredError,
  ClientClosedError,
  Http2RefusedError,
  TransportConfigError,
  statusOf,
  isNotFound,
  isConflict,
  isAlreadyExists,
  isGone,
  isTooManyRequests,
  type Status,
  type RequestTarget,
} from './client/errors.js';

// Controllers: what to watch, what a reconcile is asked and what it answers.
export {
  controller,
  type ControllerBuilder,
  type ControllerSpec,
  type Reconciler,
  type OwnsOptions,
  type WatchesOptions,
} from './controller/builder.js';
export { requestFor, requestFromKey, PermanentError, TemporaryError, type Request, type Result } from './controller/request.js';
export type { WatchChange } from './cache/change.js';
export { generationChanged, hasLabels, custom, type Predicate } from './controller/predicate.js';
export { enqueueObject, enqueueOwner, enqueueMapped, type EnqueueFn } from './controller/enqueue.js';

// What a reconcile works with: the context, its children, status and finalizers.
export {
  ReconcileContext,
  ChildInvalidError,
  NoOwnerError,
  StatusPreconditionError,
  CHILD_INVALID,
  type CacheReader,
  type EventSink,
  type PrimaryRef,
  type StatusUpdate,
} from './writes/context.js';
export { controllerRef, isControlledBy, childNamespace, OwnerScopeError } from './writes/owner.js';
export { ControllerDeclarationError, OwnerMetadataError } from './writes/errors.js';
export { setCondition, findCondition, isConditionTrue, type ConditionInput } from './writes/conditions.js';
export { withFinalizer, hasFinalizer, FinalizerTargetError, type FinalizerContext, type FinalizerHandlers } from './writes/finalizer.js';

// The kopf style: one handler per cause, on the same controller.
export { handlers, type HandlersBuilder, type HandlerArgs, type UpdateArgs, type OwnedArgs, type Handler } from './causes/handlers.js';

// Running it.
export {
  Manager,
  LeaderElectionLostError,
  CacheSyncTimeoutError,
  ShutdownTimeoutError,
  DuplicateControllerError,
  type ManagerOptions,
  type LeaderElectionOptions,
  type UnsyncedKind,
} from './manager/manager.js';
// A project module: what `bosun run` and `bosun generate` read (package.json's bosun.project, or --from).
export type { ProjectModule, OperatorEntry } from './tooling/cli/project.js';
export type { NamedRead } from './tooling/generate/rbac.js';
export {
  createLogger,
  objectLogger,
  InvalidLogLevelError,
  InvalidLogFormatError,
  type Logger,
  type LoggerOptions,
  type LogLevel,
} from './telemetry/logger.js';
export type { LogFormat } from './telemetry/format.js';

// Every error above is a BosunError with a stable code (docs/errors.md).
export { BosunError, ERROR_CODES, codeOf, type BosunErrorCode } from './errors.js';
