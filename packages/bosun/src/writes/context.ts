import type { KubeClient } from '../client/client.js';
import { ApiError, isConflict, isNotFound } from '../client/errors.js';
import { apiVersionOf, type KubeObject, type ResourceType } from '../client/types.js';
import type { Logger } from '../telemetry/logger.js';
import { PermanentError } from '../controller/request.js';
import { setCondition, type ConditionInput } from './conditions.js';
import { jsonContains, jsonHash, jsonSubsetEqual } from './equal.js';
import type { Condition } from '../resource/conditions.js';
import { childNamespace, controllerRef, isControlledBy } from './owner.js';
import type { CacheReader } from '../cache/reader.js';
import { bosunError } from '../errors.js';
import { OwnWrites } from './own-writes.js';

/** Read access to the shared caches (the object type comes from the handle); reconcilers read here, never from the API server. */
export type { CacheReader };

/** Records Kubernetes Events about objects; best effort, never throws. */
export interface EventSink {
  normal(obj: KubeObject, reason: string, message: string): void;
  warning(obj: KubeObject, reason: string, message: string): void;
}

/** Names the object a reconcile is about: its type and key. */
export interface PrimaryRef {
  /** The type the controller reconciles (its `for` type). */
  type: ResourceType;
  /** Namespace, or undefined for cluster-scoped objects. */
  namespace?: string;
  name: string;
}

/**
 * The annotation on a child holding the fingerprint of what `fieldManager` last applied to it, so
 * a converged child costs no request and a changed desired state (a field dropped) is applied.
 */
export function appliedAnnotation(fieldManager: string): string {
  const name = fieldManager.replace(/[^A-Za-z0-9_.-]+/g, '.').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  if (name.length > 0 && name.length <= 63) return `applied.bosun.dev/${name}`;
  // Annotation names stop at 63 characters: a longer manager keeps a readable start and a hash.
  const start = name.slice(0, 46).replace(/[^A-Za-z0-9]+$/, '');
  return `applied.bosun.dev/${start ? `${start}.` : ''}${jsonHash(fieldManager)}`;
}

/** Raised when a child is written through a context that cannot name its owner. */
export class NoOwnerError extends bosunError('BOSUN_NO_OWNER') {
  override name = 'NoOwnerError';
}

/** The reason on the owner's Ready condition, and of its Warning Event, when the API server refuses a child. */
export const CHILD_INVALID = 'ChildInvalid';

/**
 * Thrown by `applyChild` when the API server refuses the child as invalid (422), after the owner's
 * status and Events say so: a permanent failure, not retried until the owner changes.
 */
export class ChildInvalidError extends bosunError('BOSUN_CHILD_INVALID', PermanentError) {
  override name = 'ChildInvalidError';

  constructor(message: string, options?: ErrorOptions) {
    super(CHILD_INVALID, message, options);
  }
}

/** Raised when a status write cannot be made conditional on the version it was computed from. */
export class StatusPreconditionError extends bosunError('BOSUN_STATUS_PRECONDITION') {
  override name = 'StatusPreconditionError';
}

/** Status fields a reconciler may set with the standard ones filled in. */
export interface StatusUpdate {
  /** Fields to set on status (others are left as they are). */
  fields?: Record<string, unknown>;
  /** Conditions to set (by type); transition times are kept when the status does not change. */
  conditions?: ConditionInput[];
}

/**
 * What a reconcile gets: the cache to read, the client to write, a logger and an event sink
 * bound to the object, and helpers for the writes every operator makes.
 */
export class ReconcileContext {
  constructor(
    /** The controller's name. */
    readonly controller: string,
    /** The API client, for writes. */
    readonly client: KubeClient,
    /** The shared caches, for reads. */
    readonly cache: CacheReader,
    /** A logger carrying the object's namespace and name. */
    readonly log: Logger,
    /** Kubernetes Events. */
    readonly events: EventSink,
    /** The server-side-apply field manager of this operator. */
    readonly fieldManager: string,
    /** Aborted when the manager shuts down or loses leadership; every write helper passes it on, so its writes abort. */
    readonly signal: AbortSignal,
    /** The object being reconciled: the owner of the children `applyChild` writes. */
    readonly primary?: PrimaryRef,
    /** The controller's own recent writes to its primary objects (shared by its reconciles); default: this reconcile's alone. */
    private readonly ownWrites: OwnWrites = new OwnWrites(),
  ) {}

  /**
   * Records a write to the object this reconcile is about: `base` the version it was made from, `written`
   * what the API server returned. Until the cache shows it, status writes build on `written` and the next
   * reconcile of the object waits for it. The status and finalizer helpers call this themselves.
   */
  wrote(base: KubeObject, written: KubeObject | undefined): void {
    this.ownWrites.remember(base, written);
  }

  /**
   * Throws unless this process may act now: the reconcile was not aborted, and under leader election this
   * replica's term has not run out by its own clock (after a freeze it may resume before it learns it lost
   * the Lease). The API client checks that before each write by itself; call this right before each action
   * outside the cluster (a booking, a payment, a DNS change), which no gate of the client can see. `action`
   * names it in the error.
   */
  assertMayAct(action: string): void {
    this.signal.throwIfAborted();
    const p = this.primary;
    this.client.checkWrite({ verb: action, kind: p?.type.kind, namespace: p?.namespace, name: p?.name });
  }

  /**
   * The field manager of one controller of a manager whose field manager is `base`: one per
   * controller, so two controllers applying one object do not remove each other's fields.
   */
  static fieldManagerFor(base: string, controller: string): string {
    const name = `${base}/${controller}`;
    // The API server refuses field managers longer than 128 characters.
    return name.length <= 128 ? name : `${name.slice(0, 111)}-${jsonHash(name)}`;
  }

  /**
   * The object this reconcile is about, as the cache holds it now: the owner of the children
   * `applyChild` writes. Undefined when the context has no primary or the object is gone.
   */
  get owner(): KubeObject | undefined {
    const p = this.primary;
    return p ? this.cache.get(p.type, p.type.namespaced ? p.namespace : undefined, p.name) : undefined;
  }

  /**
   * The one way to write a child: makes the child of `childType` match `desired` with server-side
   * apply under this controller's field manager, controller-owned by the object being reconciled
   * (`owner`) so garbage collection deletes it with its owner; a field an earlier apply set and
   * `desired` no longer sets is removed. Writes only when it must (the cached child is missing, not
   * controlled by the owner, applied from another desired state, or edited since), so converged
   * children cost no request and restarts make no writes. Returns true when it wrote.
   */
  async applyChild(childType: ResourceType, desired: KubeObject): Promise<boolean> {
    this.signal.throwIfAborted();
    const p = this.primary;
    if (!p)
      throw new NoOwnerError(
        `applyChild(${childType.kind} ${desired.metadata.name ?? ''}): this context reconciles no object, so the child has no owner; construct the ReconcileContext with its primary object, or write with ctx.client.apply and controllerRef()`,
      );
    const owner = this.owner;
    if (!owner)
      throw new NoOwnerError(
        `applyChild(${childType.kind} ${desired.metadata.name ?? ''}): the owner ${p.type.kind} ${p.namespace ? `${p.namespace}/` : ''}${p.name} is not in the cache (deleted meanwhile?); return and let its next event reconcile it`,
      );
    const namespace = childNamespace(childType, desired, p.type, owner);
    const body: KubeObject = {
      ...desired,
      apiVersion: apiVersionOf(childType),
      kind: childType.kind,
      metadata: { ...desired.metadata, namespace, ownerReferences: [controllerRef(p.type, owner)] },
    };
    // The fingerprint of what we apply, kept on the child: a child holding every field we set may
    // still hold one we no longer set, and only a new apply lets the server prune it.
    const annotation = appliedAnnotation(this.fieldManager);
    const fingerprint = jsonHash(body);
    const annotations = { ...desired.metadata.annotations, [annotation]: fingerprint };
    body.metadata.annotations = annotations;
    const current = this.cache.get(childType, namespace, desired.metadata.name ?? '');
    if (
      current &&
      current.metadata.annotations?.[annotation] === fingerprint &&
      isControlledBy(current, owner) &&
      // Fields someone else changed since (a hand edit) are taken back.
      jsonContains({ ...desired, metadata: { labels: desired.metadata.labels, annotations } }, current)
    ) {
      return false;
    }
    try {
      // The answer is not read: its metadata is all the API server has to encode.
      await this.client.apply(childType, body, { fieldManager: this.fieldManager, force: true, signal: this.signal, metadataOnly: true });
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) throw await this.childRefused(childType, body, owner, err);
      throw err;
    }
    return true;
  }

  /**
   * Shows a child the API server refused as invalid on its owner (Ready=False ChildInvalid with the
   * server's message, and a Warning Event) and returns the error to throw: the same child would be
   * refused again, so the owner waits for a change instead of a retry.
   */
  private async childRefused(childType: ResourceType, child: KubeObject, owner: KubeObject, err: ApiError): Promise<ChildInvalidError> {
    const { namespace, name = '' } = child.metadata;
    const message =
      `the API server refused ${childType.kind} ${namespace ? `${namespace}/` : ''}${name}: ${err.body?.message ?? err.message}`.slice(
        0,
        32768,
      );
    let report = true;
    try {
      // An unchanged condition means it was reported before: no second Event.
      report = await this.updateStatus(this.primary!.type, owner, {
        conditions: [{ type: 'Ready', status: 'False', reason: CHILD_INVALID, message }],
      });
    } catch (statusErr) {
      // A stale owner: the retry, from the fresher cache, reports it.
      if (isConflict(statusErr)) throw statusErr;
      this.log.warn(
        { err: statusErr instanceof Error ? statusErr.message : String(statusErr) },
        'could not write the refused child into the owner status',
      );
    }
    if (report) this.events.warning(owner, CHILD_INVALID, message);
    return new ChildInvalidError(message, { cause: err });
  }

  /** Deletes an object; an object already gone is success (deletes are idempotent). */
  async deleteIfExists(type: ResourceType, obj: KubeObject, opts: { preconditionUid?: boolean } = {}): Promise<void> {
    this.signal.throwIfAborted();
    try {
      await this.client.delete(type, obj.metadata.namespace, obj.metadata.name ?? '', {
        ...(opts.preconditionUid && obj.metadata.uid ? { preconditions: { uid: obj.metadata.uid } } : {}),
        signal: this.signal,
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * Writes status through the status subresource: the given fields, conditions and
   * `observedGeneration`; fields and conditions it is not given are left as they are, whoever set
   * them. Skips the write when the status already says the same, so a converged object costs
   * nothing to reconcile again. The write is conditional on `obj`'s resourceVersion: the
   * conditions list is written whole, so a write computed from a stale read would erase a
   * condition another writer added since; instead it fails with a 409 Conflict, which the
   * controller retries quietly from the fresher cache. Calling it again with the same `obj` in one
   * reconcile builds on the previous write.
   */
  async updateStatus(type: ResourceType, obj: KubeObject, update: StatusUpdate): Promise<boolean> {
    this.signal.throwIfAborted();
    const base = this.ownWrites.latest(obj);
    const have = (base.status ?? {}) as Record<string, unknown> & { conditions?: Condition[] };
    const generation = base.metadata.generation;
    let conditions = have.conditions;
    for (const c of update.conditions ?? []) conditions = setCondition(conditions, c, generation);
    const want: Record<string, unknown> = {
      ...update.fields,
      observedGeneration: generation,
      ...(update.conditions?.length ? { conditions } : {}),
    };
    if (jsonSubsetEqual(want, have)) return false;
    const { namespace, name = '', resourceVersion } = base.metadata;
    if (!resourceVersion) {
      throw new StatusPreconditionError(
        `updateStatus(${type.kind} ${namespace ? `${namespace}/` : ''}${name}): the object has no metadata.resourceVersion, so the write cannot be made conditional on the status it was computed from; pass the object as read from the cache or the API`,
      );
    }
    const written = await this.client.patch<KubeObject>(type, namespace, name, { metadata: { resourceVersion }, status: want }, 'merge', {
      subresource: 'status',
      fieldManager: this.fieldManager,
      signal: this.signal,
    });
    this.ownWrites.remember(base, written);
    return true;
  }
}
