/**
 * The one base of every error bosun throws, and the registry of their codes. A code names the kind of
 * error for good: messages may be reworded, a code is not (as Node's `ERR_*` and fastify's `FST_ERR_*`).
 * docs/errors.md says, per code, what it means and how to fix it.
 */

/**
 * Every code, with the class that carries it. A class declares its code with `extends bosunError(code)`,
 * which only accepts a key of this table: a code cannot be used without being registered here.
 */
export const ERROR_CODES = {
  // The client.
  BOSUN_API_STATUS: 'ApiError',
  BOSUN_TRANSPORT: 'TransportError',
  BOSUN_REQUEST_TIMEOUT: 'RequestTimeoutError',
  BOSUN_DEAD_CONNECTION: 'DeadConnectionError',
  BOSUN_KUBECONFIG: 'KubeConfigError',
  BOSUN_TRANSPORT_CONFIG: 'TransportConfigError',
  BOSUN_CLIENT_CLOSED: 'ClientClosedError',
  BOSUN_HTTP2_REFUSED: 'Http2RefusedError',
  BOSUN_OBJECT_NAME_REQUIRED: 'ObjectNameRequiredError',
  // Watch and cache.
  BOSUN_WATCH_STREAM: 'WatchStreamError',
  BOSUN_NOT_CACHED: 'NotCachedError',
  BOSUN_UNKNOWN_INDEX: 'UnknownIndexError',
  BOSUN_INDEXER: 'IndexerError',
  BOSUN_INDEX_CONFLICT: 'IndexConflictError',
  BOSUN_CACHE_STARTED: 'CacheStartedError',
  // Controllers and reconciles.
  BOSUN_PERMANENT: 'PermanentError',
  BOSUN_TEMPORARY: 'TemporaryError',
  BOSUN_CONTROLLER_DECLARATION: 'ControllerDeclarationError',
  BOSUN_NO_OWNER: 'NoOwnerError',
  BOSUN_CHILD_INVALID: 'ChildInvalidError',
  BOSUN_STATUS_PRECONDITION: 'StatusPreconditionError',
  BOSUN_OWNER_SCOPE: 'OwnerScopeError',
  BOSUN_OWNER_METADATA: 'OwnerMetadataError',
  BOSUN_FINALIZER_TARGET: 'FinalizerTargetError',
  BOSUN_EVENT_RECORDER_CONFIG: 'EventRecorderConfigError',
  // The manager.
  BOSUN_DUPLICATE_CONTROLLER: 'DuplicateControllerError',
  BOSUN_CACHE_SYNC_TIMEOUT: 'CacheSyncTimeoutError',
  BOSUN_SERVER_UNREACHABLE: 'ServerUnreachableError',
  BOSUN_LEADERSHIP_LOST: 'LeaderElectionLostError',
  BOSUN_LEADER_ELECTION_CONFIG: 'LeaderElectionConfigError',
  BOSUN_SHUTDOWN_TIMEOUT: 'ShutdownTimeoutError',
  BOSUN_LOG_LEVEL: 'InvalidLogLevelError',
  BOSUN_LOG_FORMAT: 'InvalidLogFormatError',
  BOSUN_ADDRESS: 'InvalidAddressError',
  BOSUN_HEALTH_CHECK_NAME: 'HealthCheckNameError',
  // Resources, CRDs and RBAC.
  BOSUN_RESOURCE_DEFINITION: 'ResourceDefinitionError',
  // Webhooks and API versions.
  BOSUN_WEBHOOK_DEFINITION: 'WebhookDefinitionError',
  BOSUN_WEBHOOK_REQUEST: 'WebhookRequestError',
  BOSUN_WEBHOOK_TIMEOUT: 'WebhookTimeoutError',
  BOSUN_WEBHOOK_CERTIFICATE: 'WebhookCertificateError',
  BOSUN_WEBHOOK_LISTEN: 'WebhookListenError',
  BOSUN_WEBHOOK_REGISTRATION: 'WebhookRegistrationError',
  BOSUN_WEBHOOK_CERTS_CONFIG: 'WebhookCertsConfigError',
  BOSUN_WEBHOOK_CERTS_SECRET: 'WebhookCertsSecretError',
  BOSUN_CA_INJECTION: 'CaInjectionError',
  BOSUN_SPEC_INVALID: 'SpecValidationError',
  BOSUN_PRINTER_COLUMN: 'PrinterColumnError',
  BOSUN_STRUCTURAL_SCHEMA: 'StructuralSchemaError',
  BOSUN_RBAC_DECLARATION: 'RbacDeclarationError',
  BOSUN_RBAC_WILDCARD: 'RbacWildcardError',
  // Tooling: CLI, scaffolding, the local cluster, the test harness.
  BOSUN_PROJECT_MODULE: 'ProjectModuleError',
  BOSUN_SCAFFOLD: 'ScaffoldError',
  BOSUN_LEARN: 'LearnError',
  BOSUN_CLUSTER: 'ClusterError',
  BOSUN_BINARY: 'BinaryError',
  BOSUN_TESTENV: 'TestEnvError',
  BOSUN_CLUSTER_METRICS: 'ClusterMetricsError',
  BOSUN_FAULT_PROXY: 'FaultProxyError',
  // Schema evolution and storage-version migration.
  BOSUN_RELEASE_REF: 'ReleaseRefError',
  BOSUN_CRD_MIGRATION: 'CrdMigrationError',
  BOSUN_MIGRATION_INTERRUPTED: 'MigrationInterruptedError',
} as const;

/** A registered error code, e.g. 'BOSUN_CHILD_INVALID'. */
export type BosunErrorCode = keyof typeof ERROR_CODES;

/**
 * The base of every error bosun throws: `instanceof BosunError` tells bosun's errors from others, and
 * `code` (one of ERROR_CODES) tells which kind it is, in code and in logs. Subclasses extend
 * `bosunError(code)` (or `bosunError(code, SomeBosunError)`) rather than this class itself.
 */
export abstract class BosunError extends Error {
  /** The stable code of this kind of error (see docs/errors.md). */
  abstract readonly code: BosunErrorCode;
}

// TypeScript's mixin pattern requires a rest parameter of type any[] in the base's constructor type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type BosunErrorClass = abstract new (...args: any[]) => BosunError;

/**
 * The base class an error kind extends to carry `code`: on every instance (so logs and `util.inspect`
 * show it) and on the class (`static code`, readable without an instance). `base` is the error it
 * specialises; a subclass of a subclass gets its own code this way.
 */
export function bosunError<B extends BosunErrorClass = typeof BosunError>(code: BosunErrorCode, base?: B) {
  abstract class Coded extends ((base ?? BosunError) as BosunErrorClass) {
    /** The code of this error class (see docs/errors.md). */
    static readonly code: BosunErrorCode = code;
    override readonly code: BosunErrorCode = code;
  }
  return Coded as unknown as B & typeof Coded;
}

/** The code of an error class, or undefined for a class that is not a registered bosun error. */
export function codeOf(errorClass: unknown): BosunErrorCode | undefined {
  if (typeof errorClass !== 'function' || !(errorClass.prototype instanceof BosunError)) return undefined;
  const code = (errorClass as { code?: unknown }).code;
  return typeof code === 'string' && code in ERROR_CODES ? (code as BosunErrorCode) : undefined;
}
